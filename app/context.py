"""The passages a question is answered from: the retrieved chunks, plus the definitions of the
defined terms and the sections they cross-reference ("subject to Section 9.2"), which a
reader of the clause would look up too.
"""

import re
from dataclasses import dataclass

from app.citations import Citer
from ingest import Hit, Store

# A cross-reference as contracts write them; the store resolves the number ("9.2", "9.02",
# "12.3(a)", "IV", "A") to a heading of the same document.
_REFERENCE = re.compile(
    r"\b(Sections?|Clauses?|Articles?|Exhibits?|Schedules?|Annex|Appendix)\s+"
    r"(\d+(?:\.\d+)*(?:\([a-z0-9]{1,4}\))*|[IVXL]+\b|[A-Z]\b(?:-\d+)?)"
)
# A referenced section or a definition is cut to this many characters: enough for the
# sentence that matters, not so much that it drowns the retrieved passages.
_EXPANSION_CHARS = 1200


@dataclass(frozen=True)
class Source:
    """One passage given to the answerer: `text` is `document_text(doc_id)[start:end]`."""

    doc_id: str
    title: str
    start: int
    end: int
    text: str
    section: str
    kind: str  # "retrieved", "definition" or "section"
    label: str = ""  # for a definition the term, for a section its number
    dense_score: float = 0.0
    keyword_score: float = 0.0


# A chunk that starts or ends inside a sentence is widened to the whole sentence, looking this
# far for its edge.
_WIDEN = 400


def retrieved(hits: list[Hit], citer: Citer) -> list[Source]:
    """The hits as sources, each widened to whole sentences (chunks may cut one)."""
    sources = []
    for h in hits:
        text = citer.text(h.doc_id)
        start, end = _sentence_edges(text, h.start, h.end)
        sources.append(Source(h.doc_id, h.title, start, end, text[start:end], h.section, "retrieved",
                              dense_score=h.dense_score or 0.0, keyword_score=h.keyword_score or 0.0))
    return sources


def _sentence_edges(text: str, start: int, end: int) -> tuple[int, int]:
    before = text[max(0, start - _WIDEN):start]
    if start > 0 and not re.search(r"[.!?;:]\s*$|\n\s*$", before):
        edge = max(before.rfind(". "), before.rfind(".\n"), before.rfind("\n\n"), before.rfind("; "))
        if edge != -1:
            start -= len(before) - edge - 2
    after = text[end:end + _WIDEN]
    if end < len(text) and not re.search(r"[.!?;:]\s*$", text[max(0, end - 3):end]):
        edge = re.search(r"[.!?](?=\s)|\n\s*\n", after)
        if edge:
            end += edge.end()
    return start, end


class Expander:
    """Finds the definitions and referenced sections a set of passages relies on."""

    def __init__(self, store: Store, citer: Citer):
        self.store, self.citer = store, citer
        self._terms: dict[str, list[str]] = {}

    def expand(self, question: str, sources: list[Source], limit: int = 3) -> list[Source]:
        """Up to `limit` passages that `sources` point to and do not already contain: terms
        used in the question first, then references and terms in the passages in rank order."""
        found: list[Source] = []
        for wanted in self._wanted(question, sources):
            if len(found) >= limit:
                break
            source = self._lookup(*wanted)
            if source and not _covered(source, sources + found):
                found.append(source)
        return found

    def _wanted(self, question: str, sources: list[Source]):
        """(doc_id, kind, key) lookups in priority order, without repeats."""
        seen = set()
        docs = list(dict.fromkeys(s.doc_id for s in sources))
        candidates = [(d, "definition", t) for d in docs for t in self._terms_in(d, question)]
        for source in sources:
            candidates += [(source.doc_id, "section", f"{m.group(1)} {m.group(2)}")
                           for m in _REFERENCE.finditer(source.text)]
            candidates += [(source.doc_id, "definition", t) for t in self._terms_in(source.doc_id, source.text)]
        for candidate in candidates:
            if candidate not in seen:
                seen.add(candidate)
                yield candidate

    def defined_terms(self, doc_id: str) -> list[str]:
        if doc_id not in self._terms:
            self._terms[doc_id] = self.store.defined_terms(doc_id)
        return self._terms[doc_id]

    def _terms_in(self, doc_id: str, text: str) -> list[str]:
        return [t for t in self.defined_terms(doc_id) if len(t) > 2 and re.search(rf"\b{re.escape(t)}s?\b", text)]

    def _lookup(self, doc_id: str, kind: str, key: str) -> Source | None:
        passage = self.store.definition(doc_id, key) if kind == "definition" else self.store.section(doc_id, key)
        if passage is None:
            return None
        end = min(passage.end, passage.start + _EXPANSION_CHARS)
        end = _cut_at_sentence(self.citer.text(doc_id), passage.start, end, passage.end)
        return Source(
            doc_id, self.citer.title(doc_id), passage.start, end, self.citer.text(doc_id)[passage.start:end],
            self.citer.section_at(doc_id, passage.start), kind, label=key,
        )


def _covered(source: Source, others: list[Source]) -> bool:
    """Whether another passage already holds most of `source`."""
    for other in others:
        if other.doc_id == source.doc_id:
            overlap = min(other.end, source.end) - max(other.start, source.start)
            if overlap >= 0.6 * (source.end - source.start):
                return True
    return False


def _cut_at_sentence(text: str, start: int, end: int, hard_end: int) -> int:
    """`end`, moved back to the last sentence end after `start` when the passage was cut short."""
    if end >= hard_end:
        return hard_end
    stop = max(text.rfind(". ", start, end), text.rfind(".\n", start, end))
    return stop + 1 if stop > start + 200 else end
