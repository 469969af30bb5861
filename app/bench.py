"""Q&A and summary quality of the extractive default (no model), scored by app/scoring.py.

    python -m app.bench samples                 # sample_docs/qa.jsonl
    python -m app.bench cuad [--docs N]         # CUAD qa.jsonl over the 65 PDF contracts
    python -m app.bench chains [--docs N]       # multi-turn CUAD chains: rewritten follow-ups' hit@5
    python -m app.bench summaries [--docs N]    # contract summaries' fact recall against CUAD gold
    python -m app.bench ttft [--tokens N]       # whole-document answers: cold vs cached first token
                                                # (a random checkpoint; see app/bench_whole.py)

Stores live under bench_out/ (ingested on first use, then reused); --docs N takes the first N
contracts by CUAD number. Prints Markdown tables for BENCHMARKS.md.

Citation precision: the share of citations, in answers to answerable questions, whose pages hold
the gold evidence (sample_docs: the gold pages; CUAD: the pages where the evidence text is found
in the ingested PDF's text). A retrieved chunk hits when it holds at least half of an evidence
span's content words (the rule of `python -m ingest.bench`).
"""

import argparse
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

from app.scoring import ANSWER_CAP, contains, evidence_hit, extractive_correct, parse_date, yes_no_correct

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench_out"
# The evaldata README's chains: the first question in full, each follow-up as a person would
# ask it in a conversation.
CHAINS = (
    (("Agreement Date", None), ("Effective Date", "And when does it become effective?"),
     ("Expiration Date", "When does it expire?"), ("Renewal Term", "Can it be renewed?"),
     ("Notice Period to Terminate Renewal", "How much notice is needed to stop it from renewing?")),
    (("License Grant", None), ("Non-Transferable License", "Can the licensee transfer it?"),
     ("Affiliate License-Licensee", "Does it extend to the licensee's affiliates?")),
    (("Cap on Liability", None), ("Uncapped Liability", "Are there cases where it does not apply?")),
)
# Summary facts: these categories' gold, and every yes/no category answered "Yes".
FACT_CATEGORIES = ("Parties", "Agreement Date", "Effective Date", "Expiration Date", "Governing Law")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("samples", "cuad", "chains", "summaries", "ttft"))
    parser.add_argument("--docs", type=int, default=0, help="only the first N CUAD contracts (0: all 65)")
    parser.add_argument("--store", type=Path, help="store folder (default bench_out/qa-samples or qa-cuad)")
    parser.add_argument("--tokens", type=int, default=20_000, help="ttft: the document's length in tokens")
    parser.add_argument("--threads", type=int, default=1, help="ttft: torch threads")
    parser.add_argument("--repeat", type=int, default=5, help="ttft: warm questions per case")
    args = parser.parse_args(argv)
    if args.what == "ttft":
        from app import bench_whole

        bench_whole.run(args.tokens, args.threads, args.repeat)
        return 0
    from ingest import Store

    started = time.monotonic()
    if args.what == "samples":
        store = Store(args.store or OUT / "qa-samples")
        _ingest(store, [REPO / "sample_docs"])
        rows = [json.loads(line) for line in (REPO / "sample_docs" / "qa.jsonl").read_text().splitlines() if line.strip()]
        _print_answers(_ask_samples(store, rows))
    else:
        store = Store(args.store or OUT / "qa-cuad")
        rows = _cuad_rows(args.docs)
        _ingest(store, sorted({_evaldata() / "cuad" / r["pdf"] for r in rows}))
        {"cuad": lambda: _print_answers(_ask_cuad(store, rows)), "chains": lambda: _chains(store, rows),
         "summaries": lambda: _summaries(store, rows)}[args.what]()
    print(f"\n{time.monotonic() - started:.0f} s")
    return 0


def _evaldata() -> Path:
    folder = Path(os.environ.get("TOME_EVALDATA", REPO.parent / "shared" / "evaldata"))
    if not folder.is_dir():
        sys.exit(f"evaluation data not found at {folder} (set TOME_EVALDATA)")
    return folder


def _ingest(store, paths) -> None:
    """Ingest what the store does not hold yet (a store being filled elsewhere is only read)."""
    from ingest import ingest_paths

    held = {source for doc in store.documents() for source in doc.sources}
    missing = [p for p in paths if str(Path(p).resolve()) not in held]
    if not missing:
        return
    report = ingest_paths(missing, store)
    for source, reason in report.failed:
        print(f"ingest failed: {source}: {reason}", file=sys.stderr)


def _cuad_rows(docs: int) -> list[dict]:
    lines = (_evaldata() / "cuad" / "qa.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    keep = sorted({r["doc_id"] for r in rows})[:docs or None]
    return [r for r in rows if r["doc_id"] in keep]


class _Tally:
    """Answer accuracy per group, and citation precision."""

    def __init__(self):
        self.right: dict[str, list[bool]] = defaultdict(list)
        self.precise: dict[str, list[bool]] = defaultdict(list)

    def add(self, group: str, correct: bool, precise: list[bool] = ()) -> None:
        self.right[group].append(correct)
        self.precise[group].extend(precise)


def _print_answers(tally: _Tally) -> None:
    print("| questions | n | answer accuracy | citations | citation precision |")
    print("|---|---:|---:|---:|---:|")
    for group in sorted(tally.right):
        right, precise = tally.right[group], tally.precise[group]
        share = f"{sum(precise) / len(precise):.1%}" if precise else "—"
        print(f"| {group} | {len(right)} | {sum(right) / len(right):.1%} | {len(precise)} | {share} |")


def _ask_samples(store, rows: list[dict]) -> _Tally:
    from app.qa import Assistant

    assistant, tally = Assistant(store), _Tally()
    for row in rows:
        answer = assistant.ask(row["question"], doc_id=row["doc"])
        if not row["answerable"]:
            tally.add("sample_docs, unanswerable", not answer.covered)
            continue
        if row["type"] == "yes_no":
            verdict = row["answer"].split(".")[0].lower()
            correct = answer.verdict == verdict and bool(answer.citations)
        elif row["type"] == "date":
            wanted = parse_date(row["answer"])
            correct = contains(answer.text, row["answer"]) or any(
                wanted == parse_date(m) for m in re.findall(r"\w+ \d{1,2}, \d{4}", answer.text[:ANSWER_CAP]))
        else:
            correct = contains(answer.text, row["answer"])
        precise = [bool(set(range(c.pages[0], c.pages[1] + 1)) & set(row["pages"])) for c in answer.citations]
        tally.add("sample_docs, answerable", correct, precise)
    return tally


def _ask_cuad(store, rows: list[dict]) -> _Tally:
    from app.qa import Assistant

    assistant, tally = Assistant(store), _Tally()
    for row in rows:
        doc_id = _doc(store, row)
        answer = assistant.ask(row["question"], doc_id=doc_id)
        kind = "yes/no" if row["answer_type"] == "yes_no" else "extractive"
        if not row["answerable"]:
            tally.add(f"CUAD {kind}, unanswerable", not answer.covered or answer.verdict == "no")
            continue
        if kind == "yes/no":
            correct = yes_no_correct(True, answer.verdict, bool(answer.citations))
        else:
            correct = answer.covered and extractive_correct(row["category"], answer.text, row["gold_answer"])
        pages = _evidence_pages(store, doc_id, row["evidence"])
        precise = [bool(set(range(c.pages[0], c.pages[1] + 1)) & pages) for c in answer.citations] if pages else []
        tally.add(f"CUAD {kind}, answerable", correct, precise)
    return tally


def _doc(store, row: dict) -> str:
    return store.resolve(str(_evaldata() / "cuad" / row["pdf"]))


def _evidence_pages(store, doc_id: str, evidence: list[dict]) -> set[int]:
    """Pages of the ingested PDF holding the evidence (its start and end located separately when
    the whole span is not found, e.g. across a page header)."""
    pages = set()
    for piece in evidence:
        words = piece["text"].split()
        for probe in (piece["text"], " ".join(words[:10]), " ".join(words[-10:])):
            found = store.locate(doc_id, probe) if len(probe.split()) >= 3 or probe == piece["text"] else None
            if found is not None:
                pages.update(range(found.pages[0], found.pages[1] + 1))
                break
    return pages


def _chains(store, rows: list[dict]) -> None:
    """hit@5 of each follow-up: asked in full alone, as typed, and rewritten from the conversation."""
    from app.qa import Assistant

    assistant = Assistant(store)
    by_doc: dict[str, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        by_doc[row["doc_id"]][row["category"]] = row
    hits = defaultdict(list)
    samples = []
    for categories in by_doc.values():
        doc_id = _doc(store, next(iter(categories.values())))
        for chain in CHAINS:
            turns = []
            for category, follow_up in chain:
                row = categories[category]
                typed = follow_up or row["question"]
                standalone = assistant.standalone(typed, turns, doc_id)
                turns += [("user", typed), ("standalone", standalone), ("assistant", "")]
                if follow_up is None or not row["answerable"]:
                    continue
                for how, question in (("full question", row["question"]), ("follow-up as typed", typed),
                                      ("follow-up rewritten", standalone)):
                    found = store.search(question, k=5, doc_id=doc_id)
                    hits[how].append(any(evidence_hit(h.text, e["text"]) for h in found for e in row["evidence"]))
                if len(samples) < 6:
                    samples.append((typed, standalone))
    print("| follow-ups (answerable turns) | n | hit@5 |")
    print("|---|---:|---:|")
    for how in ("full question", "follow-up as typed", "follow-up rewritten"):
        print(f"| {how} | {len(hits[how])} | {sum(hits[how]) / max(1, len(hits[how])):.1%} |")
    print()
    for typed, standalone in samples:
        print(f"- {typed} -> {standalone}")


def _summaries(store, rows: list[dict]) -> None:
    """Recall of each contract's CUAD facts in its summary: party names, dates, governing law
    (found in the summary text, dates in any format) and "Yes" clauses (a summary citation
    overlapping the clause's evidence in the document)."""
    from app.qa import Assistant
    from app.scoring import party_names
    from app.summarize import summarize

    assistant = Assistant(store)
    recalled = defaultdict(list)
    by_doc: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_doc[row["doc_id"]].append(row)
    seconds = []
    for doc_rows in by_doc.values():
        doc_id = _doc(store, doc_rows[0])
        started = time.monotonic()
        summary = summarize(store, doc_id, assistant=assistant, kind="contract")
        seconds.append(time.monotonic() - started)
        text = summary.text
        for row in doc_rows:
            if not row["answerable"]:
                continue
            category, gold = row["category"], row["gold_answer"]
            if category == "Parties":
                for name in party_names(gold):
                    recalled["party names"].append(contains(text, name, cap=None))
            elif category in FACT_CATEGORIES:
                group = "dates" if category.endswith("Date") else "governing law"
                recalled[group].append(extractive_correct(category, text, gold, cap=None))
            elif row["answer_type"] == "yes_no" and gold == "Yes":
                spans = [store.locate(doc_id, e["text"]) for e in row["evidence"]]
                spans = [s for s in spans if s is not None]
                if spans:
                    recalled["'Yes' clauses"].append(any(
                        c.start < s.end and s.start < c.end for c in summary.citations for s in spans))
    print("| summary facts | n | recall |")
    print("|---|---:|---:|")
    for group in ("party names", "dates", "governing law", "'Yes' clauses"):
        values = recalled[group]
        print(f"| {group} | {len(values)} | {sum(values) / max(1, len(values)):.1%} |")
    if seconds:
        print(f"\n{len(seconds)} contracts, median {sorted(seconds)[len(seconds) // 2]:.0f} s per summary")


if __name__ == "__main__":
    sys.exit(main())
