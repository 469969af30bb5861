"""Regenerate Tome's sample PDFs from src/ and the gold pages of qa.jsonl.

    .venv/bin/python sample_docs/generate.py           # write the PDFs and qa.jsonl pages
    .venv/bin/python sample_docs/generate.py --check   # verify both are up to date; write nothing

Prints one row per document: pages, words and the share of repeated word 8-grams.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docgen import DOCUMENTS, HERE, QA_FILE, SOURCES  # noqa: E402
from docgen.markup import parse_files  # noqa: E402
from docgen.qa import read_rows, with_gold_pages, write_rows  # noqa: E402
from docgen.render import render  # noqa: E402
from docgen.text import page_texts, repeated_ngram_ratio, words  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="fail if a PDF or a gold page differs from what would be written")
    parser.add_argument("--only", metavar="NAME", help="render only this output file")
    args = parser.parse_args(argv)

    stale = []
    print(f"{'document':34} {'pages':>5} {'words':>7} {'rep. 8-grams':>12}")
    for name, sources in DOCUMENTS.items():
        if args.only and name != args.only:
            continue
        pdf = render(parse_files([SOURCES / s for s in sources]))
        target = HERE / name
        if args.check:
            if not target.exists() or target.read_bytes() != pdf:
                stale.append(name)
        else:
            target.write_bytes(pdf)
        text = "\n".join(page_texts(target))
        print(f"{name:34} {len(page_texts(target)):>5} {len(words(text)):>7} "
              f"{repeated_ngram_ratio(text):>11.2%}")

    if QA_FILE.exists() and not args.only:
        rows = read_rows(QA_FILE)
        gold = with_gold_pages(rows, HERE)
        if args.check and gold != rows:
            stale.append(QA_FILE.name)
        elif not args.check:
            write_rows(gold, QA_FILE)
        print(f"qa.jsonl: {len(rows)} rows, {sum(r.answerable for r in rows)} answerable")
    if stale:
        print(f"out of date: {', '.join(stale)} (run sample_docs/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
