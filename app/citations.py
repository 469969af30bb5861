"""Turning spans of stored text into verified citations.

Everything a citation shows comes from the store: the quote is the stored text at the span's
offsets, the pages and section are looked up from those offsets. A quote given by a model is
only cited once `locate` finds it in a document; otherwise the caller drops it and says so.
Documents are keyed by content hash, so what is cached per doc_id never goes stale.
"""

from functools import lru_cache

from app.answer import Citation
from ingest import PageSpan, Passage, Store
from ingest.records import Section

# Documents whose text, pages and outline stay cached (a long contract is ~1 MB of text).
_CACHED_DOCUMENTS = 16


class Citer:
    def __init__(self, store: Store):
        self.store = store
        self._text = lru_cache(_CACHED_DOCUMENTS)(store.document_text)
        self._pages = lru_cache(_CACHED_DOCUMENTS)(store.pages)
        self._outline = lru_cache(_CACHED_DOCUMENTS)(store.outline)
        self._info = lru_cache(_CACHED_DOCUMENTS * 4)(store.document)

    def text(self, doc_id: str) -> str:
        return self._text(doc_id)

    def title(self, doc_id: str) -> str:
        return self._info(doc_id).title

    def cite(self, number: int, doc_id: str, start: int, end: int, section: str = "") -> Citation:
        """Citation [number] of `document_text(doc_id)[start:end]`; its section is the innermost
        heading holding the span, else `section` (the chunk's)."""
        pages = self._pages(doc_id)
        first, last = _page(pages, start), _page(pages, max(start, end - 1))
        info = self._info(doc_id)
        return Citation(
            number=number, doc_id=doc_id, title=info.title, source=info.source,
            pages=(first.number, last.number), page_labels=(first.label, last.label),
            section=self.section_at(doc_id, start) or section, quote=self.text(doc_id)[start:end],
            start=start, end=end,
        )

    def section_at(self, doc_id: str, offset: int) -> str:
        """The path of the innermost heading whose section holds `offset` ("" before the first)."""
        inner: Section | None = None
        for section in self._outline(doc_id):
            if section.start <= offset < section.end and (inner is None or section.level >= inner.level):
                inner = section
        return inner.path if inner else ""

    def locate(self, quote: str, doc_ids: list[str]) -> Passage | None:
        """Where `quote` occurs, searching `doc_ids` in order (case, spacing, punctuation ignored)."""
        for doc_id in dict.fromkeys(doc_ids):
            found = self.store.locate(doc_id, quote)
            if found is not None:
                return found
        return None


def _page(pages: list[PageSpan], offset: int) -> PageSpan:
    return next((p for p in reversed(pages) if p.start <= offset), pages[0])
