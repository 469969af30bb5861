"""The installed project: console script, package names, and no clash with transformers."""

import subprocess
import sys
from pathlib import Path


def test_console_script_lists_commands():
    tome = Path(sys.executable).with_name("tome")
    result = subprocess.run([tome, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: tome" in result.stdout


def test_transformers_does_not_take_our_kernels_for_its_hub_library():
    # transformers probes `import kernels` and the version of the distribution providing it;
    # ours must read as unavailable, or transformers would try to load hub kernels through it.
    from transformers.utils import is_kernels_available

    assert not is_kernels_available()


def test_make_run_ingests_the_sample_documents_and_not_their_readme():
    # sample_docs/ also holds the README, generator and qa.jsonl beside the four documents.
    repo = Path(__file__).resolve().parents[1]
    dry_run = subprocess.run(["make", "-n", "run"], cwd=repo, capture_output=True, text=True, timeout=60)
    assert dry_run.returncode == 0, dry_run.stderr
    ingest = next(line.split() for line in dry_run.stdout.splitlines() if " ingest " in line)
    named = {arg for arg in ingest[2:] if arg.startswith("sample_docs/")}
    assert named == {f"sample_docs/{p.name}" for p in (repo / "sample_docs").glob("*.pdf")}
    assert len(named) == 4
