"""Cleaning page text and joining pages into one document text with a page map.

Removed: running headers and footers (lines repeated at the top or bottom of many pages, digits
ignored, so "Page 3 of 40" repeats), bare page numbers, hyphenation at line ends, control
characters and runs of spaces. Kept: line breaks and blank lines (paragraphs, list items and
headings are recognised from them later).
"""

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from ingest.parse import RawPage
from ingest.records import PageSpan

PAGE_SEPARATOR = "\n\n"
# Lines this close to a page's top or bottom are candidates for running headers and footers.
_EDGE_LINES = 3
_EDGE_MAX_CHARS = 160
# A line counts as running when it repeats on this share of pages (and on at least 3 of them).
_RUNNING_SHARE = 0.4
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028\u2029\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# "Page 3", "Page 3 of 40", "3 / 40", "- 3 -": page numbers whatever the page.
_PAGE_OF = re.compile(r"^(?:page\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?|\d{1,4}\s*(?:of|/)\s*\d{1,4}|[-–—]\s*\d{1,4}\s*[-–—])$", re.I)
# A bare "3" or "iv" is a page number only where it matches the page (see _bare_page_numbers).
_BARE_NUMBER = re.compile(r"^(\d{1,4}|[ivxlcdm]{1,7})$", re.I)
_HYPHEN_BREAK = re.compile(r"([A-Za-z]{2,})-\n([a-z]{2,})")
_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")


@dataclass(frozen=True)
class CleanDocument:
    text: str
    pages: tuple[PageSpan, ...]


def clean_pages(pages: tuple[RawPage, ...]) -> CleanDocument:
    lines_per_page = [_normalise(page.text).split("\n") for page in pages]
    running = _running_lines(lines_per_page)
    numbers = _bare_page_numbers(lines_per_page, pages)
    cleaned = [
        _strip_edges(lines, running, {i for q, i in numbers if q == p}) for p, lines in enumerate(lines_per_page)
    ]
    # A page whose every line looks like a header ("This is page 3") keeps them: that is its text.
    cleaned = [
        kept if any(ch.isalnum() for line in kept for ch in line) else lines
        for kept, lines in zip(cleaned, lines_per_page)
    ]
    vocabulary = Counter(word.lower() for lines in cleaned for line in lines for word in _WORD.findall(line))
    parts, spans, offset = [], [], 0
    for page, lines in zip(pages, cleaned):
        text = _dehyphenate(_paragraphs(lines), vocabulary)
        if parts:
            offset += len(PAGE_SEPARATOR)
        spans.append(PageSpan(number=page.number, label=page.label, start=offset, end=offset + len(text)))
        parts.append(text)
        offset += len(text)
    return CleanDocument(text=PAGE_SEPARATOR.join(parts), pages=tuple(spans))


def _normalise(text: str) -> str:
    # NFKC folds ligatures (ﬁ), non-breaking and full-width spaces and compatibility forms into
    # the characters people type in a search.
    text = unicodedata.normalize("NFKC", text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n"))
    text = _CONTROL.sub("", text)
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))


def _key(line: str) -> str:
    return re.sub(r"\d+", "#", line.lower())


def _edge_indices(lines: list[str]) -> list[int]:
    # Headers and footers are short; a long line repeated on every page is content.
    filled = [i for i, line in enumerate(lines) if line and len(line) <= _EDGE_MAX_CHARS]
    return sorted(set(filled[:_EDGE_LINES] + filled[-_EDGE_LINES:]))


def _running_lines(lines_per_page: list[list[str]]) -> set[str]:
    """Keys of lines that sit at a page edge on enough pages to be running headers or footers."""
    counts = Counter()
    for lines in lines_per_page:
        counts.update({_key(lines[i]) for i in _edge_indices(lines)})
    threshold = max(3, _RUNNING_SHARE * len(lines_per_page))
    return {key for key, count in counts.items() if count >= threshold}


def _bare_page_numbers(lines_per_page: list[list[str]], pages: tuple[RawPage, ...]) -> set[tuple[int, int]]:
    """(page index, line index) of bare numbers at page edges that are page numbers: equal to the
    page's label, its physical number, or its number shifted by the document's usual offset
    (printed numbering that starts after a cover) -- and only when most pages have one, since a
    manual's chapter number also sits alone at the top of a page."""
    candidates = [
        (p, i, lines[i]) for p, lines in enumerate(lines_per_page)
        for i in _edge_indices(lines) if _BARE_NUMBER.match(lines[i])
    ]
    deltas = Counter(int(line) - pages[p].number for p, _, line in candidates if line.isdigit())
    offset = deltas.most_common(1)[0][0] if deltas else None
    matching = {
        (p, i) for p, i, line in candidates
        if line.lower() == pages[p].label.lower() or (line.isdigit() and int(line) - pages[p].number in (0, offset))
    }
    pages_numbered = len({p for p, _ in matching})
    return matching if pages_numbered >= max(2, 0.5 * len(pages)) else set()


def _strip_edges(lines: list[str], running: set[str], numbers: set[int]) -> list[str]:
    drop = {
        i for i in _edge_indices(lines)
        if i in numbers or _PAGE_OF.match(lines[i]) or (_key(lines[i]) in running and not _BARE_NUMBER.match(lines[i]))
    }
    return [line for i, line in enumerate(lines) if i not in drop]


def _paragraphs(lines: list[str]) -> str:
    """Lines joined back, runs of blank lines collapsed to one (a paragraph break)."""
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _dehyphenate(text: str, vocabulary: Counter) -> str:
    """Join words split across lines ("termi-\\nnation"), keeping real compounds ("self-\\nemployed")
    when the document spells them with a hyphen more often than without."""

    def join(match: re.Match) -> str:
        head, tail = match.group(1), match.group(2)
        joined, hyphenated = (head + tail).lower(), f"{head}-{tail}".lower()
        if vocabulary[hyphenated] > vocabulary[joined]:
            return f"{head}-{tail}"
        return head + tail

    return _HYPHEN_BREAK.sub(join, text)
