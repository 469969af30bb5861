"""Structure-aware chunking, sized in the embedder's tokens.

The text is cut into units at sentence, clause and paragraph boundaries; units are packed into
chunks up to the token budget. A chunk ends early where a new section starts (always at an article
or exhibit; at a smaller section once it holds a quarter of the budget), so sections tend to begin
chunks. A chunk that ends because it is full hands its last sentences (up to `overlap_tokens`) to
the next one. Each chunk is embedded with a short header (document title and the path of the
section holding most of it) that counts against the budget, so the whole input fits the model's
window and nothing is truncated. Tables of contents are left out.
"""

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ingest.records import PageSpan
from ingest.sentences import boundaries
from ingest.structure import Heading

# A section heading closes the current chunk once it holds this share of the budget; below it,
# a short section shares its chunk with the next one rather than making a tiny chunk.
_MIN_FILL = 0.25
_HEADER_WORDS = 28  # words of title and section path kept in a chunk's header


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # offsets into the document text
    end: int
    pages: tuple[int, int]
    section: str
    text: str  # document_text[start:end]
    embed_text: str  # header + text: what is embedded and keyword-indexed


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    opens: int  # the level of the heading this unit starts (1 = article, exhibit), 0 if none


class Tokens(Protocol):
    """What the chunker needs from the embedder's tokenizer (`ingest.embed.Embedder` has both)."""

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def token_starts(self, text: str) -> list[int]: ...


def chunk_document(
    text: str, title: str, headings: list[Heading], pages: tuple[PageSpan, ...],
    tokens: Tokens, chunk_tokens: int, overlap_tokens: int, skipped: Sequence[tuple[int, int]] = (),
) -> list[Chunk]:
    """Chunks of `text` outside the `skipped` spans (tables of contents); `chunk_tokens` includes
    the model's two special tokens. No chunk spans a skipped stretch."""
    sections = [h for h in headings if h.kind != "clause"]
    section_starts = [h.start for h in sections]
    units = _units(text, {h.start: h.level for h in sections}, tokens, chunk_tokens // 2, skipped)
    page_starts = [p.start for p in pages]
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        section = _section_at(sections, section_starts, units[i].start)
        header = _header(title, section)
        budget = chunk_tokens - 2 - tokens.count_tokens([header])[0]
        j, used = i + 1, units[i].tokens
        while j < len(units) and used + units[j].tokens <= budget:
            if units[j].opens == 1 or (units[j].opens and used >= _MIN_FILL * budget):
                break
            used += units[j].tokens
            j += 1
        j, section = _relabel(units, i, j, used, sections, section_starts, section, title, tokens, chunk_tokens)
        header = _header(title, section)
        start, end = units[i].start, units[j - 1].end
        chunks.append(Chunk(
            index=len(chunks), start=start, end=end, pages=_pages(pages, page_starts, start, end),
            section=section, text=text[start:end], embed_text=header + text[start:end],
        ))
        i = _next_start(units, i, j, overlap_tokens)
    return chunks


def _header(title: str, section: str) -> str:
    words = f"{title} | {section}".split() if section else title.split()
    return " ".join(words[:_HEADER_WORDS]) + "\n"


def _units(text: str, levels: dict[int, int], tokens: Tokens, max_unit: int,
           skipped: Sequence[tuple[int, int]]) -> list[_Unit]:
    """Sentences, clauses and paragraphs, each section heading starting a new one; none inside
    a skipped span."""
    gaps = [(x, y) for x, y in skipped if x < y]
    cuts = sorted(set([0, len(text)] + boundaries(text) + list(levels) + [x for gap in gaps for x in gap]))
    spans = []
    for a, b in zip(cuts, cuts[1:]):
        if any(x <= a and b <= y for x, y in gaps):
            continue
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            spans.append((a, b))
    if not spans:  # a document that is nothing but a contents list is indexed as it is
        return _units(text, levels, tokens, max_unit, [])
    counts = tokens.count_tokens([text[a:b] for a, b in spans])
    units, previous_end = [], 0
    for (a, b), count in zip(spans, counts):
        # The first unit after a skipped stretch opens a chunk as an article heading does, so
        # no chunk's text runs across the stretch.
        opens = 1 if any(previous_end < y <= a for _, y in gaps) else levels.get(a, 0)
        if count <= max_unit:
            units.append(_Unit(a, b, count, opens))
        else:
            units.extend(_split_long(text, a, b, tokens, max_unit, opens))
        previous_end = b
    return units


def _split_long(text: str, a: int, b: int, tokens: Tokens, max_unit: int, opens: int) -> list[_Unit]:
    """A sentence longer than half a chunk (a run-on clause, a table) cut between words."""
    starts = tokens.token_starts(text[a:b])
    word_starts = [s for s in starts if s > 0 and text[a + s - 1].isspace()]
    pieces, first = [], 0
    while first < len(starts):
        limit = first + max_unit
        if limit >= len(starts):
            cut = b - a
        else:
            # The last word start within the limit, or a hard cut inside a giant "word".
            k = bisect.bisect_right(word_starts, starts[limit]) - 1
            cut = word_starts[k] if k >= 0 and word_starts[k] > starts[first] else starts[limit]
        pieces.append((a + starts[first], a + cut))
        first = bisect.bisect_left(starts, cut)
    spans = [(x, x + len(text[x:y].rstrip())) for x, y in pieces]
    counts = tokens.count_tokens([text[x:y] for x, y in spans])
    return [_Unit(x, y, n, opens if k == 0 else 0) for k, ((x, y), n) in enumerate(zip(spans, counts))]


def _next_start(units: list[_Unit], i: int, j: int, overlap_tokens: int) -> int:
    """Where the next chunk starts: at j, or earlier by whole units up to `overlap_tokens` when the
    chunk ended because it was full (not at a section start)."""
    if j >= len(units) or units[j].opens:
        return j
    k, carried = j, 0
    while k - 1 > i and carried + units[k - 1].tokens <= overlap_tokens and not units[k - 1].opens:
        k -= 1
        carried += units[k].tokens
    return k


def _section_at(sections: list[Heading], starts: list[int], offset: int) -> str:
    k = bisect.bisect_right(starts, offset) - 1
    return sections[k].path if k >= 0 and offset < sections[k].end else ""


def _relabel(units: list[_Unit], i: int, j: int, used: int, sections: list[Heading], starts: list[int],
             section: str, title: str, tokens: Tokens, chunk_tokens: int) -> tuple[int, str]:
    """(end unit, section path) of the chunk units[i:j]: a chunk that opens on the last sentences
    of one section, or on an article's heading, and holds mostly one (sub)section is labelled, and
    embedded, as that one, giving back trailing units to the next chunk where its longer header
    needs room."""
    k = j
    while k > i:
        main = _main_section(sections, starts, units[i].start, units[k - 1].end)
        if main is None or main == section:
            break
        if used + 2 + tokens.count_tokens([_header(title, main)])[0] <= chunk_tokens:
            return k, main
        k -= 1
        used -= units[k].tokens
    return j, section


def _main_section(sections: list[Heading], starts: list[int], start: int, end: int) -> str | None:
    """The path of the deepest section holding over half of the characters of [start, end) (a
    subsection's characters count for its parents too); None when no section does."""
    cuts = [start] + starts[bisect.bisect_right(starts, start):bisect.bisect_left(starts, end)] + [end]
    held = Counter()
    for a, b in zip(cuts, cuts[1:]):
        parts = _section_at(sections, starts, a).split(" > ")
        for n in range(1, len(parts) + 1):
            held[" > ".join(parts[:n])] += b - a
    over_half = [path for path, count in held.items() if path and 2 * count > end - start]
    return max(over_half, key=lambda path: path.count(" > "), default=None)


def _pages(pages: tuple[PageSpan, ...], starts: list[int], start: int, end: int) -> tuple[int, int]:
    first = max(0, bisect.bisect_right(starts, start) - 1)
    last = max(first, bisect.bisect_right(starts, max(start, end - 1)) - 1)
    return pages[first].number, pages[last].number
