"""Time to first answer text on a warm page, measured in a real browser.

    python -m app.ui.bench --store .tome -n 12        # `make run` builds .tome from sample_docs/

Starts `tome serve` on a free loopback port, opens the page in headless Chromium, waits until it
is ready (engine loaded, documents prepared), then asks the first N questions of
sample_docs/qa.jsonl one after the other in one conversation-free session ("New conversation"
between them, so no question is a follow-up). For each it measures, from pressing Enter: the
page reacting (the "finding the passages" line appears: the server has run the page up to the
answer) and the first piece of answer text (which replaces that line), both timed in the
page's document, and the finished answer with its sources (seen by Playwright, so a little
late). Prints a Markdown table for BENCHMARKS.md.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUESTIONS = Path(__file__).resolve().parents[2] / "sample_docs" / "qa.jsonl"
FINDING = "Finding the passages that answer this"
PREPARING = "for quick answers"
# Timed in the page, not by polling from Playwright (which adds a few tenths of a second): when
# Enter goes down, when the "finding" line enters the document and when it leaves it (replaced
# by the first answer text).
WATCH = """() => {
  const seen = window.tomeBench = {enter: null, shown: null, gone: null};
  document.addEventListener("keydown", e => { if (e.key === "Enter" && seen.enter === null) seen.enter = performance.now(); },
                            {capture: true});
  const watcher = new MutationObserver(() => {
    const finding = document.body.textContent.includes("%s"), now = performance.now();
    if (finding && seen.shown === null) seen.shown = now;
    if (!finding && seen.shown !== null && seen.gone === null) { seen.gone = now; watcher.disconnect(); }
  });
  watcher.observe(document.body, {childList: true, subtree: true, characterData: true});
}""" % FINDING
# Seconds to wait for the first serve of a library to embed its sentences (sample_docs: about
# a minute on an idle machine, ten on a very busy one).
PREPARE_S = 1800


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.ui.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=".tome", help="a store holding sample_docs/ (default .tome)")
    parser.add_argument("-n", type=int, default=12, help="questions to ask (default 12)")
    args = parser.parse_args(argv)
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    port = _free_port()
    with tempfile.TemporaryDirectory() as cwd:  # no models/ here: the extractive default answers
        server = subprocess.Popen(
            [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())", "serve",
             "--store", str(Path(args.store).resolve()), "--port", str(port)],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            rows = _measure(f"http://127.0.0.1:{port}", questions[:args.n])
        finally:
            server.terminate()
            server.wait(10)
    _print(rows)
    return 0


def _measure(url: str, questions: list[str]) -> list[tuple[str, float, float, float]]:
    from playwright.sync_api import expect, sync_playwright

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        _open(page, url)
        box = page.get_by_placeholder("Ask about your documents…")
        expect(box).to_be_enabled(timeout=300_000)
        for question in questions:
            box.fill(question)
            page.evaluate(WATCH)
            began = time.perf_counter()
            box.press("Enter")
            page.get_by_text(FINDING).wait_for(state="visible", timeout=60_000)
            page.get_by_text(FINDING).wait_for(state="detached", timeout=120_000)
            # The Stop button goes when the answer is complete and shown with its sources.
            page.get_by_test_id("stBaseButton-tertiary").filter(has_text="Stop").wait_for(state="detached",
                                                                                             timeout=120_000)
            done = time.perf_counter() - began
            seen = page.evaluate("() => window.tomeBench")
            rows.append((question, (seen["shown"] - seen["enter"]) / 1000, (seen["gone"] - seen["enter"]) / 1000, done))
            page.get_by_role("button", name="New conversation").click()
            expect(page.locator("[data-testid='stChatMessage']")).to_have_count(0)
        browser.close()
    return rows


def _open(page, url: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            page.goto(url)
            break
        except Exception:  # noqa: BLE001 — the server is still starting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    # A warm page: the server has also embedded the documents' sentences (saved in the store,
    # so only the first serve of a library waits here). The sidebar says so until it is done.
    while _sidebar_library(page).filter(has_text=PREPARING).count():
        if time.monotonic() > deadline + PREPARE_S:
            raise TimeoutError(f"the library was still being prepared after {PREPARE_S} s")
        time.sleep(5)
        page.reload()


def _sidebar_library(page):
    """The sidebar's captions once its library line ("5 documents · 227 pages · …") is drawn."""
    captions = page.get_by_test_id("stSidebar").get_by_test_id("stCaptionContainer")
    captions.filter(has_text=" pages · ").wait_for(timeout=300_000)
    return captions


def _print(rows: list[tuple[str, float, float, float]]) -> None:
    load = os.getloadavg()[0]
    print(f"{len(rows)} questions of sample_docs/qa.jsonl, extractive default, one browser tab; "
          f"load average {load:.1f} on {os.cpu_count()} cores\n")
    print("| # | question | page reacts (s) | first text (s) | answer with sources (s) |")
    print("|---|---|---|---|---|")
    for number, (question, reacted, first, done) in enumerate(rows, start=1):
        print(f"| {number} | {question[:60]} | {reacted:.2f} | {first:.2f} | {done:.2f} |")
    columns = list(zip(*rows))[1:]
    medians = " | ".join(f"**{statistics.median(c):.2f}**" for c in columns)
    print(f"| | **median** | {medians} |")
    print(f"| | max | {' | '.join(f'{max(c):.2f}' for c in columns)} |")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
