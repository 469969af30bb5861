"""The assistant end to end on a small contract and manual: extractive answers with verified
citations, "not covered", follow-ups, definitions and cross-references, and a scripted chat
model whose invented quote must be caught."""

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from app.answer import Answer
from app.errors import AppError
from app.generated import REMOVED_QUOTE
from app.prompts import NOT_COVERED
from app.qa import Assistant


def check_citations(store, answer: Answer) -> None:
    """Every quote is the stored text at its offsets, on the pages those offsets fall on."""
    for citation in answer.citations:
        text = store.document_text(citation.doc_id)
        assert text[citation.start:citation.end] == citation.quote
        assert store.page_at(citation.doc_id, citation.start).number == citation.pages[0]


def test_extractive_answer_quotes_the_clause(assistant, library, msa):
    answer = assistant.ask("How much notice does Customer need to terminate for convenience?")
    assert answer.mode == "extractive" and answer.covered
    assert "ninety (90) days' written notice" in answer.text
    first = answer.citations[0]
    assert first.doc_id == msa and first.title == "MASTER SERVICES AGREEMENT"
    assert "12.1 Termination for Convenience" in first.section
    assert f"[{first.number}]" in answer.text
    check_citations(library, answer)


def test_unrelated_question_is_not_covered(assistant):
    answer = assistant.ask("What colour is the company's delivery van?")
    assert not answer.covered and answer.text == NOT_COVERED and answer.citations == ()


def test_yes_no_verdicts(assistant):
    yes = assistant.ask("Does the agreement contain a cap on liability?", doc_id="msa.txt")
    assert yes.verdict == "yes" and yes.text.startswith("Yes") and "shall not exceed" in yes.text
    wrong_state = assistant.ask("Is the agreement governed by the laws of California?", doc_id="msa.txt")
    assert wrong_state.verdict == "no" and "New York" in wrong_state.text


def test_parties_and_title_come_from_the_opening(assistant, msa):
    parties = assistant.ask("Who are the parties to this agreement?", doc_id=msa)
    assert "Acme Corp." in parties.text and "Widget Ltd." in parties.text
    title = assistant.ask("What is the name of this agreement?", doc_id=msa)
    assert title.citations[0].quote == "MASTER SERVICES AGREEMENT" and title.citations[0].start == 0


def test_follow_up_is_rewritten_and_answered(assistant, msa):
    first = assistant.ask("When does the agreement expire?", doc_id=msa)
    follow = assistant.ask("And can it be renewed?", history=[first], doc_id=msa)
    assert follow.standalone_question == "Can the agreement be renewed?"
    assert "successive one (1) year periods" in follow.text
    as_dicts = [{"role": "user", "content": "When does the agreement expire?"},
                {"role": "assistant", "content": first.text}]
    assert assistant.ask("And can it be renewed?", history=as_dicts, doc_id=msa).standalone_question == \
        "Can the agreement be renewed?"


def test_definitions_and_cross_references_join_the_context(assistant, msa):
    sources = assistant.sources("What must Customer pay when it terminates for convenience?", msa)
    pulled = {(s.kind, s.label) for s in sources if s.kind != "retrieved"}
    assert ("definition", "Termination Fee") in pulled
    definition = next(s for s in sources if s.label == "Termination Fee")
    assert definition.text.startswith('1.3 "Termination Fee" means')
    exclusions = assistant.sources("Which breaches are excluded from the cap on liability?", msa)
    referenced = [s for s in exclusions if s.kind == "section"]
    assert any(s.text.startswith("10.1 Cap.") for s in referenced) or any(
        "10.1 Cap." in s.text for s in exclusions if s.kind == "retrieved")


def test_stream_yields_text_then_the_answer(assistant):
    parts = list(assistant.stream("What is the monthly fee?"))
    assert all(isinstance(p, str) for p in parts[:-1]) and isinstance(parts[-1], Answer)
    assert "".join(parts[:-1]) == parts[-1].text and "USD 12,000" in parts[-1].text


def test_bad_input_is_a_clear_error(assistant):
    with pytest.raises(AppError, match="empty question"):
        assistant.ask("  ")
    with pytest.raises(AppError, match="no document matches"):
        assistant.ask("What is the fee?", doc_id="nonexistent.pdf")
    with pytest.raises(AppError, match="mode"):
        assistant.ask("What is the fee?", mode="fast")
    with pytest.raises(AppError, match="history item"):
        assistant.ask("What is the fee?", history=[42])
    with pytest.raises(AppError, match="needs a model"):
        assistant.ask("What is the fee?", mode="whole")


def test_model_answer_citations_are_verified(library, msa):
    reply = (
        "Customer may terminate on \"ninety (90) days' written notice\" [1]. "
        "It must also pay “a penalty of one million dollars at once” [1]. "
        "Invoices are due in thirty days [2][12]."
    )
    llm = FakeListChatModel(responses=[reply])
    answer = Assistant(library, llm=llm).ask("How can Customer terminate for convenience?", doc_id=msa)
    assert answer.mode == "retrieval" and answer.covered
    assert REMOVED_QUOTE in answer.text and "one million" not in answer.text
    assert any("quote not found" in w and "one million" in w for w in answer.warnings)
    assert any("[12]" in w for w in answer.warnings) and "[12]" not in answer.text
    quoted = answer.citations[0]
    assert quoted.quote.lower() == "ninety (90) days' written notice"
    assert quoted.number == 1 and "[1]" in answer.text
    check_citations(library, answer)
    assert all(c.doc_id == msa for c in answer.citations)


def test_model_rewrites_follow_ups_and_not_covered_is_passed_on(library, msa):
    llm = FakeListChatModel(responses=["Rewritten question: Can the agreement be renewed?", NOT_COVERED])
    history = [("user", "When does the agreement expire?"), ("assistant", "After three years [1].")]
    answer = Assistant(library, llm=llm).ask("and after that?", history=history, doc_id=msa)
    assert answer.standalone_question == "Can the agreement be renewed?"
    assert not answer.covered and answer.citations == ()


def test_whole_mode_with_another_model_falls_back_to_retrieval(library, msa):
    llm = FakeListChatModel(responses=["The fee is USD 12,000 per month [1]."])
    answer = Assistant(library, llm=llm).ask("What is the monthly fee?", doc_id=msa, mode="whole")
    assert answer.mode == "retrieval" and answer.notes and "whole-document" in answer.notes[0]
    assert "USD 12,000" in answer.citations[0].quote or "12,000" in answer.citations[0].quote
