"""The web page's flows, run in-process with Streamlit's AppTest on a real store: asking with
citations and follow-ups, scope, uploads good and broken, deleting, summarising, two sessions,
the shared model's queue, errors shown in place."""

import re
import shutil
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.errors import AppError
from app.qa import Assistant
from ingest import Store, ingest_paths

PAGES = [
    "SERVICES AGREEMENT\n\nThis Services Agreement is made between Harbor Analytics, Inc. (\"Customer\") and "
    "Northwind Hosting LLC (\"Provider\").\n\n1. Fees. Customer shall pay Provider a monthly fee of $1,500 and "
    "$200 for each additional user. Invoices are due within thirty (30) days.",
    "2. Term. This Agreement starts on the Effective Date and continues for two (2) years.\n\n"
    "3. Termination. Customer may terminate this Agreement for convenience on ninety (90) days' written "
    "notice to Provider.",
    "4. Governing Law. This Agreement is governed by the laws of the State of Delaware.\n\n"
    "5. Liability. Each party's total liability shall not exceed $50,000.",
]
NOTICE = (
    "VISITOR NOTICE\n\nVisitors must sign in at the front desk and wear a badge at all times. "
    "Parking is available in the north lot. The cafeteria opens at 8:00.\n"
)
UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
TIMEOUT = 120  # seconds per script run: the first loads the embedding model on a busy machine


def make_pdf(path: Path, pages: list[str]) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A store with the 3-page agreement (PDF) and a one-page notice (text), built once."""
    folder = tmp_path_factory.mktemp("ui")
    make_pdf(folder / "agreement.pdf", PAGES)
    (folder / "notice.txt").write_text(NOTICE)
    with Store(folder / "store") as store:
        assert ingest_paths([folder / "agreement.pdf", folder / "notice.txt"], store).failed == []
    return folder / "store"


@pytest.fixture
def store_dir(built, tmp_path, monkeypatch) -> Path:
    """A private copy of the built store (uploads and deletes change it); no model folder in
    reach, so the page runs the extractive default."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TOME_MODEL", raising=False)
    copy = tmp_path / "store"
    shutil.copytree(built, copy)
    return copy


def tome_page(store: str):
    from app.ui.main import main

    main(store)


def open_page(store_dir: Path, view: str = "Ask") -> AppTest:
    at = AppTest.from_function(tome_page, kwargs={"store": str(store_dir)}, default_timeout=TIMEOUT)
    at.session_state["view"] = view
    return at.run()


def ask(at: AppTest, question: str) -> AppTest:
    return at.chat_input(key="question").set_value(question).run()


def texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown] + [c.value for c in at.caption]


def assert_page_ok(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def test_ask_streams_an_answer_with_numbered_sources_and_amounts_stay_literal(store_dir):
    at = open_page(store_dir)
    assert_page_ok(at)
    ask(at, "What monthly fee does the Customer pay?")
    assert_page_ok(at)
    turns = at.session_state["turns"]
    assert len(turns) == 1 and turns[0].answer is not None
    answer = turns[0].answer
    assert "$1,500" in answer.text and answer.mode == "extractive"
    shown = texts(at)
    assert any("\\$1,500" in t for t in shown), "the amount is shown, escaped"
    assert not [t for t in shown if UNESCAPED_DOLLAR.search(t)], "a bare $ would start Streamlit math"
    labels = [e.label for e in at.expander]
    assert labels and labels[0].startswith("\\[1\\] p. 1"), labels
    assert any("Services Agreement" in t or "SERVICES AGREEMENT" in t for t in shown), "source document title"
    assert any("Extractive" in t for t in shown)
    quote = answer.citations[0].quote
    assert any(" ".join(quote.split()).replace("$", "\\$") in t for t in shown), "the quoted passage"
    # Completed in the same run (no rerun to wait for): no Stop left, a new conversation possible.
    assert not [b for b in at.button if b.label == "Stop"]
    assert not next(b for b in at.button if b.label == "New conversation").disabled


def test_follow_up_is_read_as_a_standalone_question_and_survives_reruns(store_dir):
    at = open_page(store_dir)
    ask(at, "When can the Customer terminate the agreement?")
    ask(at, "And on how much notice?")
    assert_page_ok(at)
    turns = at.session_state["turns"]
    assert len(turns) == 2
    second = turns[1].answer
    assert second.standalone_question != second.question
    assert any(t.startswith(":material/edit_note: Read as:") for t in texts(at))
    assert any(c.pages == (2, 2) for c in turns[0].answer.citations), "termination is on page 2"
    at.run()  # a rerun (any click) keeps the conversation
    assert len(at.session_state["turns"]) == 2
    assert len(at.chat_message) == 4
    new = next(b for b in at.button if b.label == "New conversation")
    new.click().run()
    assert at.session_state["turns"] == [] and len(at.chat_message) == 0


def test_scope_limits_the_answer_to_one_document(store_dir):
    at = open_page(store_dir)
    notice = Store(store_dir).resolve("notice.txt")
    at.selectbox(key="scope").set_value(notice).run()
    ask(at, "What monthly fee does the Customer pay?")
    answer = at.session_state["turns"][0].answer
    assert all(c.doc_id == notice for c in answer.citations)
    assert "$1,500" not in answer.text
    assert at.session_state["turns"][0].scope == "VISITOR NOTICE"


def test_upload_good_and_broken_files_reports_each_and_a_failure_changes_nothing(store_dir):
    at = open_page(store_dir, "Library")
    before = [d.doc_id for d in Store(store_dir).documents()]
    uploader = at.file_uploader[0]
    uploader.set_value([
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog", "application/pdf"),
        ("policy.txt", b"TRAVEL POLICY\n\nEconomy class is required for flights under six hours.\n", "text/plain"),
    ]).run()
    next(b for b in at.button if b.label == "Add to library").click().run()
    assert_page_ok(at)
    outcomes = {o.name: o for o in at.session_state["outcomes"]}
    assert outcomes["broken.pdf"].outcome == "failed" and outcomes["broken.pdf"].detail
    assert outcomes["policy.txt"].outcome == "added" and outcomes["policy.txt"].chunks >= 1
    assert any("broken.pdf" in e.value and "not added" in e.value for e in at.error)
    assert any("policy.txt" in s.value and "Added" in s.value for s in at.success)
    after = [d.doc_id for d in Store(store_dir).documents()]
    assert after[:len(before)] == before and len(after) == len(before) + 1
    frame = at.dataframe[0].value
    assert "policy.txt" in list(frame["File"])

    # A batch of only a broken file leaves the library exactly as it was.
    at.file_uploader[0].set_value(("scan.pdf", b"not a pdf at all", "application/pdf")).run()
    next(b for b in at.button if b.label == "Add to library").click().run()
    assert [d.doc_id for d in Store(store_dir).documents()] == after
    assert at.session_state["outcomes"][0].outcome == "failed"


def test_same_name_upload_replaces_and_unchanged_upload_is_reported(store_dir):
    at = open_page(store_dir, "Library")
    for text, expected in ((b"RULES\n\nNo pets.\n", "added"), (b"RULES\n\nNo pets.\n", "unchanged"),
                           (b"RULES\n\nNo pets. No smoking.\n", "replaced")):
        at.file_uploader[0].set_value(("rules.txt", text, "text/plain")).run()
        next(b for b in at.button if b.label == "Add to library").click().run()
        assert at.session_state["outcomes"][0].outcome == expected
    assert sum(d.source == "rules.txt" for d in Store(store_dir).documents()) == 1


def test_delete_asks_for_confirmation(store_dir):
    at = open_page(store_dir, "Library")
    notice = Store(store_dir).resolve("notice.txt")
    at.selectbox(key="library_doc").set_value(notice).run()
    next(b for b in at.button if b.label == "Delete…").click().run()
    assert any("Delete **VISITOR NOTICE (notice.txt)**" in w.value for w in at.warning)
    at.button(key="delete_no").click().run()
    assert notice in [d.doc_id for d in Store(store_dir).documents()]
    assert _engine(store_dir).preparation.wait(TIMEOUT)
    assert (store_dir / "sentence-vectors" / f"{notice}.npz").exists()
    next(b for b in at.button if b.label == "Delete…").click().run()
    at.button(key="delete_yes").click().run()
    assert_page_ok(at)
    assert notice not in [d.doc_id for d in Store(store_dir).documents()]
    assert any("Deleted" in s.value for s in at.success)
    assert len(at.dataframe[0].value) == 1
    assert not (store_dir / "sentence-vectors" / f"{notice}.npz").exists()  # its derived data went too


def test_summarize_streams_fields_with_citations_and_downloads_markdown(store_dir):
    at = open_page(store_dir, "Summarize")
    agreement = Store(store_dir).resolve("agreement.pdf")
    at.selectbox(key="summary_doc").set_value(agreement).run()
    next(b for b in at.button if b.label == "Summarize").click().run()
    assert_page_ok(at)
    summary, _ = at.session_state["summaries"][agreement]
    assert summary.kind == "contract" and summary.citations
    shown = texts(at)
    assert any(t == "##### Parties" for t in shown)
    assert not [t for t in shown if UNESCAPED_DOLLAR.search(t)]
    download = at.get("download_button")[0]
    assert download.proto.label == "Download Markdown"
    exported = summary_export(summary)
    assert exported.startswith("# Summary:") and "## Sources" in exported
    assert "\\$" in exported or "$" not in summary.text


def summary_export(summary) -> str:
    from app.ui.present import summary_markdown

    return summary_markdown(summary, "agreement.pdf")


def test_two_sessions_keep_separate_conversations_and_an_upload_does_not_disturb_the_other(store_dir):
    first, second = open_page(store_dir), open_page(store_dir, "Library")
    ask(first, "Which law governs the agreement?")
    assert len(first.session_state["turns"]) == 1
    second.file_uploader[0].set_value(("memo.txt", b"MEMO\n\nThe office closes at 18:00 on Fridays.\n", "text/plain")).run()
    next(b for b in second.button if b.label == "Add to library").click().run()
    second.session_state["view"] = "Ask"
    second.run()
    assert "turns" not in second.session_state or second.session_state["turns"] == []
    ask(first, "When does the office close on Fridays?")
    assert_page_ok(first)
    turns = first.session_state["turns"]
    assert len(turns) == 2 and "18:00" in turns[1].answer.text


def test_a_second_request_waits_for_the_model_and_says_so(store_dir):
    at = open_page(store_dir)
    engine = _engine(store_dir)
    holding, release = threading.Event(), threading.Event()

    def other_tab():
        with engine.turns.turn():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=other_tab)
    thread.start()
    holding.wait(5)
    threading.Timer(1.5, release.set).start()
    ask(at, "Which law governs the agreement?")
    thread.join()
    turn = at.session_state["turns"][0]
    assert turn.waited_s >= 1.0 and turn.answer is not None
    assert any("for the model" in c.value for c in at.caption)


def test_an_interrupted_answer_is_kept_as_stopped(store_dir):
    at = open_page(store_dir)
    at.session_state["pending"] = {"question": "What is the fee?", "text": "“Customer shall pay", "scope": ""}
    at.run()
    turn = at.session_state["turns"][0]
    assert turn.stopped and turn.text == "“Customer shall pay"
    assert any("Stopped before the answer was complete" in c.value for c in at.caption)


def test_errors_are_shown_in_place_and_the_page_keeps_working(store_dir, monkeypatch):
    at = open_page(store_dir)

    def failing(self, question, history=(), doc_id=None, mode="auto"):
        raise AppError("the question is too long")
        yield  # a generator, like the real one

    monkeypatch.setattr(Assistant, "stream", failing)
    ask(at, "What is the fee?")
    assert_page_ok(at)
    assert any("the question is too long" in e.value for e in at.error)
    monkeypatch.undo()
    ask(at, "Which law governs the agreement?")
    assert at.session_state["turns"][1].answer is not None


def test_whole_document_progress_is_shown_while_reading(store_dir, monkeypatch):
    """The hook for long whole-document reads: progress objects in the stream drive a bar."""
    seen = []

    class Reading:
        def __init__(self, read):
            self.tokens_read, self.tokens_total, self.tokens_per_s = read, 4000, 500.0

    real = Assistant.stream

    def reading(self, question, history=(), doc_id=None, mode="auto"):
        for read in (1000, 2000, 4000):
            yield Reading(read)
        yield from real(self, question, history, doc_id, mode)

    import streamlit as st

    progress = st.delta_generator.DeltaGenerator.progress

    def spy(self, value, text=None, **kwargs):
        seen.append((value, text))
        return progress(self, value, text=text, **kwargs)

    monkeypatch.setattr(Assistant, "stream", reading)
    monkeypatch.setattr(st.delta_generator.DeltaGenerator, "progress", spy)
    at = open_page(store_dir)
    ask(at, "Which law governs the agreement?")
    assert [v for v, _ in seen] == [0.25, 0.5, 1.0]
    assert seen[0][1] == "Reading the whole document: 1,000 of 4,000 tokens · 500 tokens/s · about 6.0 s left"
    assert at.session_state["turns"][0].answer is not None


def test_sidebar_says_the_answers_are_extractive_and_how_to_enable_generation(store_dir):
    at = open_page(store_dir)
    sidebar = [m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption]
    assert any("Extractive" in t for t in sidebar)
    assert any("--model DIR" in t and "TOME\\_MODEL" in t for t in sidebar)
    assert any("2 documents · 4 pages" in t for t in sidebar)


def test_the_sidebar_says_while_documents_are_prepared_for_quick_answers(store_dir, monkeypatch):
    from app.ui.prepare import Preparation

    release = threading.Event()
    monkeypatch.setattr(Preparation, "_wait_for_idle", lambda self: release.wait(TIMEOUT))
    try:
        at = open_page(store_dir)
        assert any("Preparing 2 documents for quick answers" in c.value for c in at.sidebar.caption)
    finally:
        release.set()
    assert _engine(store_dir).preparation.wait(TIMEOUT)
    at.run()
    assert not any("quick answers" in c.value for c in at.sidebar.caption)


def _engine(store_dir: Path):
    from app.ui.main import load_engine

    return load_engine(str(store_dir), None)


def test_the_engine_is_loaded_once_per_store(store_dir):
    open_page(store_dir)
    first = _engine(store_dir)
    open_page(store_dir)
    assert _engine(store_dir) is first
    assert isinstance(first.assistant, Assistant)


def test_with_a_model_the_page_offers_reading_modes_and_reports_tokens_per_second(store_dir):
    """A generated answer (a scripted chat model standing in for Granite): its mode, its speed,
    and the generator named in the sidebar."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from app.models import ModelInfo
    from app.ui.engine import ModelStatus

    open_page(store_dir)
    engine = _engine(store_dir)
    engine.llm = FakeListChatModel(responses=['Customer pays "a monthly fee of $1,500" [1].'])
    engine.assistant = Assistant(engine.store, engine.llm)
    engine.status = ModelStatus("granite", ModelInfo(Path("granite-4.0-h-1b"), 1_460_000_000, "bfloat16",
                                                     2_920_000_000, 131072))
    at = open_page(store_dir)
    assert at.selectbox(key="mode").options == ["Automatic", "Retrieved passages", "Whole document"]
    sidebar = [m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption]
    assert any("granite-4.0-h-1b" in t for t in sidebar)
    assert any("1.46 B parameters · bfloat16 · 2.9 GB · context 131,072 tokens" in t for t in sidebar)
    ask(at, "What monthly fee does the Customer pay?")
    assert_page_ok(at)
    turn = at.session_state["turns"][0]
    assert turn.answer.mode == "retrieval" and turn.tokens > 1
    assert turn.answer.citations and turn.answer.citations[0].pages == (1, 1)
    assert any("Generated from retrieved passages" in t for t in texts(at))
    assert any(re.search(r"\d+ tokens at [\d.]+/s", c.value) for c in at.caption)
    assert any("Last answer:" in c.value and "tokens/s" in c.value for c in at.sidebar.caption)


def test_an_interrupted_summary_says_it_was_stopped(store_dir):
    at = open_page(store_dir, "Summarize")
    agreement = Store(store_dir).resolve("agreement.pdf")
    at.selectbox(key="summary_doc").set_value(agreement).run()
    at.session_state["summarizing"] = agreement
    at.run()
    assert any("Summary stopped" in i.value for i in at.info)
    at.run()
    assert not any("Summary stopped" in i.value for i in at.info), "said once"
