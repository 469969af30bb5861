"""Whole-document mode over a tiny random checkpoint: when it is chosen and why not, the saved
state (same tokens as reading afresh), progress while reading, stopping a read, quotes checked
against the document, and removal purging the saved states."""

import threading

import pytest

from app.extractive import SENTENCE_VECTORS
from app.generated import REMOVED_QUOTE
from app.qa import WHOLE_NEEDS_ONE_DOCUMENT, WHOLE_NEEDS_RUNTIME, Assistant
from app.whole import STATES_FOLDER, Reading, WholeSettings
from ingest import Store, ingest_paths
from tests.app.runtime import Runtime, Scripted
from tests.app.texts import CONTRACT

pytestmark = pytest.mark.usefixtures("one_thread")

QUESTION = "How much notice does Customer need to terminate for convenience?"


@pytest.fixture(scope="module")
def runtime(model_dir) -> Runtime:
    return Runtime(model_dir)


def states(store: Store, doc_id: str) -> list:
    return sorted((store.path / STATES_FOLDER / doc_id).glob("*.safetensors"))


def test_auto_reads_the_only_document_whole_and_verifies_its_quotes(one_doc, runtime, monkeypatch):
    script = Scripted(['Customer may terminate on "ninety (90) days\' written notice" [1], as ',
                       '"the moon may cancel the contract at will" says.'])
    monkeypatch.setattr(runtime, "generator", script)
    answer = Assistant(one_doc, runtime).ask(QUESTION)
    assert answer.mode == "whole" and answer.covered
    assert answer.text.startswith('Customer may terminate on "ninety (90) days\' written notice" [1], as ')
    assert REMOVED_QUOTE in answer.text and "moon" not in answer.text
    assert any("moon may cancel" in w for w in answer.warnings)
    (citation,) = answer.citations
    text = one_doc.document_text(citation.doc_id)
    assert citation.quote == text[citation.start:citation.end] and "ninety (90) days" in citation.quote
    assert citation.pages[0] == one_doc.page_at(citation.doc_id, citation.start).number
    assert "12.1 Termination for Convenience" in citation.section
    call = script.calls[-1]
    assert call["messages"][-1] == {"role": "user", "content": QUESTION}
    assert call["state"].length == len(runtime.tokenizer.encode_chat(call["messages"][:1], add_generation_prompt=False))
    assert any("read the whole document" in note for note in answer.notes)


def test_declined_beyond_the_context_budget_with_the_reason(one_doc, model_dir):
    small = Runtime(model_dir, context_budget=2000)
    small.generator = Scripted(["The documents do not cover this."])  # the passages would not fit either
    answer = Assistant(one_doc, small).ask(QUESTION, mode="whole")
    assert answer.mode == "retrieval"
    assert "exceeds the model's context budget of 2,000 tokens" in answer.notes[0]


def test_auto_declines_a_slow_read_but_whole_reads_anyway(library, msa, runtime, monkeypatch):
    monkeypatch.setattr(runtime, "generator", Scripted(["The document does not cover this."]))
    patient = Assistant(library, runtime, whole=WholeSettings(max_read_s=0.0))
    slow = patient.route("auto", msa)
    assert slow.mode == "retrieval" and "would take about" in slow.notes[0]
    assert patient.ask(QUESTION, doc_id=msa, mode="whole").mode == "whole"
    assert patient.route("auto", msa).mode == "whole"  # the state is saved now: no read to wait for
    assert patient.route("auto").notes == ()  # two documents, no scope: retrieval goes without saying
    assert patient.route("whole").notes == (WHOLE_NEEDS_ONE_DOCUMENT,)


def test_other_chat_models_answer_from_retrieved_passages(library, msa):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    assistant = Assistant(library, FakeListChatModel(responses=["The documents do not cover this."]))
    assert assistant.route("whole", msa).notes == (WHOLE_NEEDS_RUNTIME,)
    assert assistant.route("auto", msa).notes == ()


def test_saved_state_gives_the_same_greedy_tokens(one_doc, runtime):
    """fp32, greedy: the answer continued from the cached state (built now, then reloaded from
    disk by a fresh assistant) is token for token the answer to the whole prompt read afresh."""
    doc_id = one_doc.documents()[0].doc_id
    messages = Assistant(one_doc, runtime).reader.prefix(doc_id) + [{"role": "user", "content": QUESTION}]
    fresh = runtime.generator.generate(messages, max_new_tokens=12).token_ids

    def via_cache() -> tuple[int, ...]:
        reader = Assistant(one_doc, runtime).reader
        state = _drain(reader.read(doc_id))
        stream = runtime.generator.stream(messages, state=state, max_new_tokens=12)
        for _ in stream:
            pass
        assert stream.result.cached_tokens == state.length
        return stream.result.token_ids

    assert via_cache() == fresh
    assert states(one_doc, doc_id)  # saved: the next reader loads it from disk
    assert via_cache() == fresh


def test_progress_while_reading_and_stopping_mid_read(library, msa, runtime, monkeypatch, tmp_path):
    # ~90 pieces of a short contract: the read is still going when the test stops it after the first
    monkeypatch.setattr(runtime.model, "prefill_chunk", 32)
    monkeypatch.setattr(runtime, "generator", Scripted(["Not covered."]))
    assistant = Assistant(library, runtime)
    assistant.reader.cache.folder = tmp_path / "stopped"
    parts = assistant.stream(QUESTION, doc_id=msa, mode="whole")
    first = next(p for p in parts if isinstance(p, Reading) and p.tokens_read > 0)
    assert 0 < first.tokens_read < first.tokens_total and first.tokens_per_s > 0 and first.eta_s > 0
    parts.close()
    assert not any(t.name.startswith("read-") for t in threading.enumerate())
    assert not list((tmp_path / "stopped").glob("*/*.safetensors"))  # nothing half-read was saved

    assistant.reader.cache.folder = tmp_path / "finished"
    parts = list(assistant.stream(QUESTION, doc_id=msa, mode="whole"))
    readings = [p for p in parts if isinstance(p, Reading)]
    assert readings[0].tokens_read == 0 and readings[0].eta_s is not None  # the estimate, before reading
    done = [r.tokens_read for r in readings[1:]]
    assert done == sorted(done) and done[-1] == readings[-1].tokens_total > 32
    assert parts[-1].mode == "whole"


def test_removing_a_document_purges_its_saved_states(tmp_path, runtime, monkeypatch):
    from app.cli import main

    (tmp_path / "a.txt").write_text(CONTRACT)
    (tmp_path / "b.txt").write_text(CONTRACT.replace("Acme Corp.", "Zenith Inc."))
    store = Store(tmp_path / "store", lock_timeout_s=5)
    assert ingest_paths([tmp_path / "a.txt", tmp_path / "b.txt"], store).failed == []
    a, b = store.resolve("a.txt"), store.resolve("b.txt")
    monkeypatch.setattr(runtime, "generator", Scripted(["Not covered."]))
    assistant = Assistant(store, runtime)
    for doc_id in (a, b):
        assistant.ask(QUESTION, doc_id=doc_id, mode="whole")
        assert states(store, doc_id)
    store.delete(a)  # the UI deletes through the store its assistant watches
    assert not (store.path / STATES_FOLDER / a).exists()
    store.close()
    vectors = store.path / SENTENCE_VECTORS / f"{b}.npz"  # as `tome serve` saves them
    vectors.parent.mkdir(exist_ok=True)
    vectors.write_bytes(b"saved")
    assert main(["rm", b, "--store", str(tmp_path / "store")]) == 0
    assert not (tmp_path / "store" / STATES_FOLDER / b).exists() and not vectors.exists()


def _drain(gen):
    try:
        while True:
            next(gen)
    except StopIteration as done:
        return done.value


def test_tome_ask_reads_the_whole_document_with_chat_granite(one_doc, model_dir, capsys):
    from app.cli import main

    status = main(["ask", QUESTION, "--doc", "msa.txt", "--mode", "whole", "--model", str(model_dir),
                   "--store", str(one_doc.path)])
    out, err = capsys.readouterr()
    assert status == 0 and "mode: whole" in out and "read the whole document" in err
