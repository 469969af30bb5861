"""The web page's plain parts: Markdown escaping, labels, the summary export, the queue of turns,
the stream relay, the generator status and the `tome serve` command line."""

import importlib.util
import json
import pkgutil
import threading
import time
from pathlib import Path

import pytest

import app.ui
from app.answer import Answer, Citation
from app.cli import build_parser
from app.cli.serve import SCRIPT, streamlit_command
from app.models import ModelNotFoundError
from app.prompts import ENABLE_GENERATION
from app.summarize import Summary, SummaryField
from app.ui.conversation import Relay, progress_text
from app.ui.engine import ModelStatus, load_generator
from app.ui.present import (FieldStream, MarkdownStream, citation_label, duration, escape, page_html, size,
                            summary_markdown)
from app.ui.turns import TurnQueue


def citation(number=1, quote="a fee of $1,500", pages=(3, 3), labels=("3", "3"), section="Fees > 5.1 Monthly Fee"):
    return Citation(number, "d" * 16, "Lease", "lease.pdf", pages, labels, section, quote, 10, 10 + len(quote))


# ---- Markdown -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, shown", [
    ("pay $5 and $10", "pay \\$5 and \\$10"),
    ("*not* _emphasis_ `code` ~~x~~", "\\*not\\* \\_emphasis\\_ \\`code\\` \\~\\~x\\~\\~"),
    ("# not a heading", "\\# not a heading"),
    ("12. not a list", "12\\. not a list"),
    ("- not a bullet", "\\- not a bullet"),
    ("> not a quote", "\\> not a quote"),
    ("<b>not html</b>", "\\<b\\>not html\\</b\\>"),
    ("[1](http://x) and back\\slash", "\\[1\\](http://x) and back\\\\slash"),
    ("    indented is not code", "indented is not code"),
    ("line one\nline two", "line one  \nline two"),
    ("---", "\\---"),
])
def test_escape_keeps_document_text_literal(text, shown):
    assert escape(text) == shown


def test_escaping_a_stream_piece_by_piece_equals_escaping_the_whole():
    text = "“Rent is $1,500” [1]\n12. Late fees: $75 *per* day\n# heading-like\nend"
    for cut in range(1, 8):
        stream = MarkdownStream()
        pieces = [text[i:i + cut] for i in range(0, len(text), cut)]
        assert "".join(stream.feed(p) for p in pieces) + stream.finish() == escape(text)


def test_citation_label_names_pages_printed_pages_and_the_innermost_section():
    assert citation_label(citation()) == "\\[1\\] p. 3 · 5.1 Monthly Fee"
    two = citation(2, pages=(4, 5), labels=("ii", "iii"), section="")
    assert citation_label(two) == "\\[2\\] pp. 4-5 (printed ii-iii)"


def test_page_html_escapes_and_marks_the_cited_span():
    marked = page_html("a <b> & $5 fee.", (8, 14))
    assert marked == '<div class="tome-page">a &lt;b&gt; &amp; <mark id="tome-cited">$5 fee</mark>.</div>'
    assert "<mark" not in page_html("plain")


@pytest.mark.parametrize("seconds, shown", [(0.42, "0.4 s"), (12.4, "12 s"), (200, "3 min 20 s"), (3900, "1 h 05 min")])
def test_duration(seconds, shown):
    assert duration(seconds) == shown


def test_size_counts_like_the_upload_widget():
    assert size(200 * 2**20) == "200 MB" and size(1536) == "1.5 KB" and size(10) == "10 bytes"


def summary() -> Summary:
    fields = (
        SummaryField("Payment", "Rent: “a fee of $1,500” [1]", (citation(),), True),
        SummaryField("Structure", "- 1 Fees (p. 3)\n- 2 Term (pp. 4-5)", (), True),
    )
    return Summary("d" * 16, "Lease $ Terms", "contract", "extractive", fields)


def test_summary_markdown_has_title_fields_and_numbered_sources_all_escaped():
    exported = summary_markdown(summary(), "lease.pdf")
    assert exported.startswith("# Summary: Lease \\$ Terms\n")
    assert "## Payment\n\nRent: “a fee of \\$1,500” \\[1\\]" in exported
    assert "- 1 Fees (p. 3)\n- 2 Term (pp. 4-5)" in exported, "list items stay a list"
    assert "## Sources\n\n1. Lease, p. 3, Fees > 5.1 Monthly Fee: “a fee of \\$1,500”" in exported.replace("\\>", ">")
    assert "$" not in exported.replace("\\$", "")


def test_a_streamed_summary_field_is_a_heading_and_literal_text():
    assert FieldStream().feed("## Payment\nRent: $5 [1]\n\n") == "##### Payment\nRent: \\$5 \\[1\\]  \n\n"


# ---- the queue of turns ---------------------------------------------------------------------


def test_turns_are_served_in_arrival_order_and_waiters_hear_how_many_are_ahead():
    queue = TurnQueue()
    order, heard = [], {}
    first_in = threading.Event()

    def request(name: str, hold: float):
        def on_wait(ahead):
            heard.setdefault(name, []).append(ahead)

        with queue.turn(on_wait):
            order.append(name)
            first_in.set()
            time.sleep(hold)

    threads = [threading.Thread(target=request, args=("a", 0.6))]
    threads[0].start()
    first_in.wait(5)
    for name in ("b", "c"):
        threads.append(threading.Thread(target=request, args=(name, 0.05)))
        threads[-1].start()
        time.sleep(0.1)  # b arrives before c
    assert queue.busy and queue.waiting == 2
    for thread in threads:
        thread.join(10)
    assert order == ["a", "b", "c"]
    assert "a" not in heard and heard["b"][0] == 1 and heard["c"][0] == 2
    assert not queue.busy


def test_a_turn_given_up_while_waiting_or_failing_lets_the_next_one_in():
    queue = TurnQueue()

    class Left(Exception):
        pass

    with queue.turn():
        def impatient(ahead):
            raise Left

        with pytest.raises(Left), queue.turn(impatient):
            pass
        assert queue.waiting == 0
    with pytest.raises(ValueError), queue.turn():
        raise ValueError
    with queue.turn() as waited:
        assert waited < 0.1


# ---- relaying a stream ----------------------------------------------------------------------


class Reading:
    def __init__(self, read, total, rate=None):
        self.tokens_read, self.tokens_total = read, total
        if rate:
            self.tokens_per_s = rate


def test_relay_splits_text_progress_and_result():
    answer = Answer("q", "q", "Fee: $5", (), "extractive", True)
    seen = []
    relay = Relay(iter([Reading(10, 40), "Fee: ", Reading(40, 40), "$5", answer]), on_progress=seen.append)
    assert "".join(relay.text()) == "Fee: \\$5"
    assert relay.raw == "Fee: $5" and relay.result is answer and relay.pieces == 2
    assert [p.tokens_read for p in seen] == [10, 40]


def test_relay_close_stops_the_generator():
    closed = []

    def parts():
        try:
            yield "a"
            yield "b"
        finally:
            closed.append(True)

    relay = Relay(parts())
    next(relay.text())
    relay.close()
    assert closed == [True] and relay.raw == "a"


def test_progress_text_gives_tokens_rate_and_eta():
    assert progress_text(Reading(12288, 98304, 410.0)) == (
        "Reading the whole document: 12,288 of 98,304 tokens · 410 tokens/s · about 3 min 30 s left")
    assert progress_text(Reading(1, 2)) == "Reading the whole document: 1 of 2 tokens"


# ---- the generator's status -----------------------------------------------------------------


def test_without_a_model_the_status_says_how_to_enable_generation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TOME_MODEL", raising=False)
    llm, status = load_generator(None)
    assert llm is None and status == ModelStatus("extractive", note=ENABLE_GENERATION)


def test_a_wrong_tome_model_is_reported_and_an_explicit_wrong_folder_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOME_MODEL", str(tmp_path / "nowhere"))
    llm, status = load_generator(None)
    assert llm is None and status.generator == "extractive" and "nowhere" in status.note
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        load_generator(str(tmp_path))


def test_a_model_folder_that_cannot_load_gives_extractive_answers_with_the_reason(tmp_path, monkeypatch):
    folder = tmp_path / "models" / "granite-broken"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "granitemoehybrid"}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TOME_MODEL", raising=False)
    llm, status = load_generator(None)
    assert llm is None and status.generator == "extractive"
    assert status.note.startswith("granite-broken cannot be loaded")


def test_model_facts_read_like_a_spec_line(tmp_path):
    from app.models import ModelInfo

    info = ModelInfo(tmp_path, 1_460_000_000, "bfloat16", 2_920_000_000, 131072, "40 layers (36 mamba, 4 attention)")
    assert ModelStatus("granite", info).facts == [
        "1.46 B parameters", "bfloat16", "2.9 GB", "context 131,072 tokens", "40 layers (36 mamba, 4 attention)"]
    with pytest.raises(ValueError):
        ModelStatus("gpt")


# ---- tome serve -----------------------------------------------------------------------------


def test_serve_listens_on_loopback_headless_without_stats_or_watcher(tmp_path):
    args = build_parser().parse_args(["serve", "--store", str(tmp_path / "s")])
    command = streamlit_command(args)
    assert command[1:5] == ["-m", "streamlit", "run", str(SCRIPT)] and SCRIPT.is_file()
    for flag in ("--server.address=127.0.0.1", "--server.port=8501", "--server.headless=true",
                 "--browser.gatherUsageStats=false", "--server.fileWatcherType=none", "--server.maxUploadSize=200"):
        assert flag in command
    assert command[-3:] == ["--", "--store", str((tmp_path / "s").resolve())]
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "9000", "--model", "m"])
    command = streamlit_command(args)
    assert "--server.address=0.0.0.0" in command and "--server.port=9000" in command
    assert command[-2:] == ["--model", str(Path("m").resolve())]


def test_serve_refuses_a_bad_port_and_a_folder_that_is_not_a_model(tmp_path, capsys):
    from app.cli import main

    assert main(["serve", "--store", str(tmp_path / "s"), "--port", "0"]) == 2
    assert "--port 0: expected 1 to 65535" in capsys.readouterr().err
    assert main(["serve", "--store", str(tmp_path / "s"), "--model", str(tmp_path)]) == 2
    assert "not a model folder" in capsys.readouterr().err


def test_serve_says_when_the_port_is_taken(tmp_path, capsys):
    import socket

    from app.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--store", str(tmp_path / "s"), "--port", str(port)]) == 2
    assert f"127.0.0.1:{port}: already in use" in capsys.readouterr().err


def test_no_page_module_shadows_a_top_level_module():
    """Streamlit puts app/ui on sys.path when it runs the page script; a module there named like
    an installed top-level module (queue, html, markdown...) would replace it everywhere."""
    for module in pkgutil.iter_modules(app.ui.__path__):
        assert importlib.util.find_spec(module.name) is None, f"app/ui/{module.name}.py shadows {module.name}"


def test_embedding_reports_reach_a_long_embedding_only_within_the_block():
    from app.sentence_vectors import between_batches
    from app.ui.conversation import embedding_reports

    def report(done, total):
        pass

    with embedding_reports(report):
        assert between_batches.get() is report
    assert between_batches.get() is None
