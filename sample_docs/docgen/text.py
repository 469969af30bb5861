"""Reading the generated PDFs back: page text, normalisation, evidence lookup, repeated n-grams.

The gold pages of qa.jsonl are computed with these functions from the PDFs themselves, and the
tests check them with the same definitions, which follow the brief: whitespace normalised, words
hyphenated across line ends joined again.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from pypdf import PdfReader

# A match that starts at the foot of one page and ends at the head of the next must sit in the
# last/first stretch of each page's text (past or before nothing but the running header/footer).
EDGE_CHARS = 160
MIN_SPLIT_WORDS = 4


def page_texts(pdf: Path) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(pdf).pages]


def normalise(text: str) -> str:
    """Join lines with spaces, undo hyphenation, fold curly quotes, collapse whitespace.

    Hyphens between letters are dropped on both sides of a comparison: a line-end break at the
    hyphen of "non-exclusive" reads "non-\\nexclusive", indistinguishable from a soft break.
    """
    text = text.replace("\u00ad", "").replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"(?<=[A-Za-z])- (?=[a-z])", "", text)
    text = re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", "", text)
    return text.strip()


def locate(evidence: str, pages: list[str]) -> list[int]:
    """1-based pages holding `evidence`: one page, or two consecutive pages it runs across.

    Raises LookupError when the evidence is absent or occurs in more than one place (gold pages
    must be unambiguous).
    """
    needle = normalise(evidence)
    texts = [normalise(p) for p in pages]
    found = [[i + 1] for i, text in enumerate(texts) if needle in text]
    if not found:
        found = [[i + 1, i + 2] for i in range(len(texts) - 1)
                 if _spans(needle, texts[i], texts[i + 1])]
    if len(found) != 1:
        where = "nowhere" if not found else f"on pages {found}"
        raise LookupError(f"evidence found {where}: {evidence[:70]!r}")
    return found[0]


def _spans(needle: str, before: str, after: str) -> bool:
    words = needle.split(" ")
    for cut in range(MIN_SPLIT_WORDS, len(words) - MIN_SPLIT_WORDS + 1):
        head, tail = " ".join(words[:cut]), " ".join(words[cut:])
        end = before.rfind(head)
        if end >= 0 and len(before) - (end + len(head)) <= EDGE_CHARS \
                and 0 <= after.find(tail) <= EDGE_CHARS:
            return True
    return False


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", normalise(text).lower())


def repeated_ngram_ratio(text: str, n: int = 8) -> float:
    """Share of word n-gram positions whose n-gram occurs more than once in `text`.

    Stricter than 1 - distinct/total: every occurrence of a repeated n-gram counts, the first
    included.
    """
    tokens = words(text)
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(1 for g in grams if counts[g] > 1) / len(grams)
