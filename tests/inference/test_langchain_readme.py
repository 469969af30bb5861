"""The README's LangChain example runs as written: store in `.tome`, model in `models/...`
(here a small ingested contract and the tiny random checkpoint, in a scratch folder)."""

import re

from ingest import Store, ingest_paths
from inference.langchain import ChatGranite
from tests.conftest import REPO

CONTRACT = """MASTER SERVICES AGREEMENT

1. TERM
This Agreement starts on 1 March 2024 and continues for two (2) years.

2. TERMINATION
Either party may terminate this Agreement for convenience on ninety (90) days' written notice.
"""


def readme_example() -> str:
    """The first python block of README's "### LangChain" section."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### LangChain\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(model_folder, tmp_path, monkeypatch, capsys):
    code = readme_example()
    model_path = re.search(r'ChatGranite\(model_path="([^"]+)"\)', code).group(1)
    (tmp_path / "msa.txt").write_text(CONTRACT, encoding="utf-8")
    (tmp_path / model_path).parent.mkdir(parents=True)
    (tmp_path / model_path).symlink_to(model_folder)
    monkeypatch.chdir(tmp_path)
    with Store(".tome") as store:
        assert ingest_paths(["msa.txt"], store).failed == []

    names: dict = {}
    exec(compile(code, "README.md", "exec"), names)

    question = re.search(r'chain\.invoke\("([^"]+)"\)', code).group(1)
    context = names["passages"].invoke(question)
    assert "[p. 1]" in context and "ninety (90) days" in context
    expected = ChatGranite(model_path=model_path).invoke(names["prompt"].invoke({"context": context, "question": question}))
    assert capsys.readouterr().out == expected.content + "\n"
    names["retriever"].store.close()
