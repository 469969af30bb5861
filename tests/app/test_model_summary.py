"""Summaries by the built-in runtime over a tiny random checkpoint: one pass through the
document cache, the hierarchical method beyond the context budget, and when each is declined."""

import pytest

from app.prompts import MODEL_CONTRACT_FIELDS, NOT_FOUND, UNSUPPORTED
from app.qa import Assistant
from app.summarize import stream_summary, summarize
from app.whole import Reading, WholeSettings
from tests.app.runtime import Runtime, Scripted

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = [name for name, _ in MODEL_CONTRACT_FIELDS]


def reply(messages) -> list[str]:
    """Quotes for two fields (one invented), "not found" for the rest; a combined answer quotes both parties."""
    asked = messages[-1]["content"]
    if asked.startswith("These notes answer") and "Who are the parties" in asked:
        return ['Customer is "Acme Corp., a Delaware corporation" and Supplier ', '"Widget Ltd., an English company".']
    if "Who are the parties" in asked:
        return ['Customer is "Acme Corp., a Delaware corporation".']
    if "Which law governs" in asked:
        return ['"governed by the laws of the State of New York" and "disputes go to the moon court".']
    return [NOT_FOUND]


def test_one_pass_reads_once_and_asks_each_field(one_doc, model_dir):
    runtime = Runtime(model_dir)
    runtime.generator = script = Scripted(reply)
    doc_id = one_doc.documents()[0].doc_id
    parts = list(stream_summary(one_doc, doc_id, llm=runtime, mode="whole"))
    summary = parts[-1]
    assert (summary.mode, summary.method, summary.kind) == ("whole", "one pass", "contract")
    assert [f.name for f in summary.fields] == NAMES
    assert sum(isinstance(p, str) for p in parts) == len(NAMES)  # one piece per field, as it is written
    parties, law = summary.fields[0], summary.fields[NAMES.index("Governing law and disputes")]
    assert parties.found and parties.citations[0].quote == "Acme Corp., a Delaware corporation"
    assert "[unverified quote removed]" in law.text and len(law.citations) == 1
    assert not summary.fields[NAMES.index("Payment")].found
    assert [c.number for c in summary.citations] == [1, 2]
    states = {id(call["state"]) for call in script.calls}
    assert len(states) == 1 and len(script.calls) == len(NAMES)  # read once, then only the questions
    assert "one pass" in summary.notes[0]


def test_hierarchical_beyond_the_context_budget(one_doc, model_dir):
    runtime = Runtime(model_dir, context_budget=1600)
    runtime.generator = script = Scripted(reply)
    doc_id = one_doc.documents()[0].doc_id
    parts = list(stream_summary(one_doc, doc_id, llm=runtime, mode="whole"))
    summary = parts[-1]
    assert (summary.mode, summary.method) == ("whole", "hierarchical")
    readings = [p for p in parts if isinstance(p, Reading)]
    assert readings[-1].tokens_read == readings[-1].tokens_total
    read = [call for call in script.calls if call["state"] is not None]
    pieces = {id(call["state"]): call["state"].length for call in read}
    assert len(pieces) >= 2 and max(pieces.values()) <= 1600 - 512 and len(read) == len(pieces) * len(NAMES)
    combined = [call["messages"][-1]["content"] for call in script.calls if call["state"] is None]
    assert len(combined) == 2 and all("Part 2:" in asked for asked in combined)  # the two fields found
    parties = summary.fields[0]
    assert [c.quote for c in parties.citations] == ["Acme Corp., a Delaware corporation", "Widget Ltd., an English company"]
    assert f"read in {len(pieces)} parts" in summary.notes[0]


def test_auto_summarises_from_passages_when_reading_parts_would_be_slow(one_doc, model_dir):
    runtime = Runtime(model_dir, context_budget=1600)
    runtime.generator = Scripted(["The documents do not cover this."])
    assistant = Assistant(one_doc, runtime, whole=WholeSettings(max_read_s=0.0))
    summary = summarize(one_doc, one_doc.documents()[0].doc_id, llm=runtime, assistant=assistant)
    assert (summary.mode, summary.method) == ("retrieval", "retrieval")
    assert "parts would take about" in summary.notes[0] and "from retrieved passages" in summary.notes[0]


def test_one_pass_with_the_real_generator(one_doc, model_dir):
    """Random weights write nonsense, but the whole path runs: every field is verified or not found."""
    summary = summarize(one_doc, one_doc.documents()[0].doc_id, llm=Runtime(model_dir, max_tokens=8), mode="whole")
    assert summary.method == "one pass" and [f.name for f in summary.fields] == NAMES
    assert all(f.text == NOT_FOUND or f.citations or f.text.endswith(UNSUPPORTED) for f in summary.fields)


def test_combining_many_parts_stays_within_the_budget(one_doc, model_dir):
    """Part answers are combined as many at a time as fit one prompt, then with the next ones."""
    from app.answer import Draft
    from app.model_summary import _combine_request, _tokens, combine

    runtime = Runtime(model_dir)
    runtime.generator = script = Scripted(['Customer is "Acme Corp., a Delaware corporation".'])
    question = "Who are the parties to this agreement?"
    drafts = [Draft(f'Note {n}: "Acme Corp., a Delaware corporation" [1]', (), covered=True) for n in range(3)]
    two = _tokens(Assistant(one_doc, runtime).reader, [_combine_request(question, drafts[:2])])
    room = WholeSettings(reply_tokens=runtime.model.config.context_budget - two)  # two notes fit, three do not
    merged = combine(Assistant(one_doc, runtime, whole=room).reader, question, drafts, one_doc.documents()[0].doc_id)
    asked = [call["messages"][-1]["content"] for call in script.calls]
    assert len(asked) == 2 and "Note 0" in asked[0] and "Note 2" not in asked[0] and "Note 2" in asked[1]
    assert merged.covered and merged.citations[0].quote == "Acme Corp., a Delaware corporation"
