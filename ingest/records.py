"""The values `ingest` hands to the rest of Tome. All frozen; offsets index `document_text`."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PageSpan:
    """One physical page of a document: `document_text[start:end]` is its cleaned text.

    `number` is the 1-based physical page index; `label` is the printed page number when the PDF
    defines page labels (e.g. "iv", "A-3"), else `str(number)`. A page without text has
    start == end.
    """

    number: int
    label: str
    start: int
    end: int


@dataclass(frozen=True)
class DocInfo:
    doc_id: str
    source: str  # the first source; `sources` lists every path holding this same content
    title: str
    pages: int
    chunks: int
    sources: tuple[str, ...] = ()
    sha256: str = ""
    kind: str = ""  # "pdf", "txt" or "md"
    ocr_pages: tuple[int, ...] = ()  # pages with no text layer, not indexed (need OCR)
    added_at: float = 0.0


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk. `score` is the fused rank score (only comparable within one search);
    `dense_score` (cosine similarity, -1..1) and `keyword_score` (BM25, >= 0) are absolute
    signals: both low means the question is probably not answered by the documents.
    They are None for chunks that were listed, not searched (`Store.section_chunks`)."""

    text: str
    doc_id: str
    source: str
    title: str
    pages: tuple[int, int]
    section: str
    score: float
    start: int
    end: int
    dense_score: float | None = None
    keyword_score: float | None = None
    chunk_id: str = ""


@dataclass(frozen=True)
class Section:
    """A heading found in a document: `document_text[start:end]` is the heading and its body,
    up to the next heading of the same or a higher level."""

    number: str  # "9.2", "12.3(a)", "IV", "A" (Exhibit A); "" for an unnumbered heading
    title: str
    path: str  # "12 Termination > 12.3 Effect of Termination"
    level: int
    start: int
    end: int
    pages: tuple[int, int]


@dataclass(frozen=True)
class Passage:
    """A span of a document's text with its pages: a section, a definition, a located quote."""

    doc_id: str
    text: str
    start: int
    end: int
    pages: tuple[int, int]
    label: str = ""  # "9.2 Confidentiality", or the defined term


@dataclass(frozen=True)
class Removal:
    """A document that left the store (`tome rm`, or a replaced file's old version)."""

    doc_id: str
    sha256: str
    sources: tuple[str, ...]
    title: str
    generation: int  # the store generation at which it was removed


@dataclass(frozen=True)
class FileResult:
    source: str
    doc_id: str
    title: str
    pages: int
    chunks: int
    note: str = ""  # e.g. "same content as other.pdf", "pages 3, 4 need OCR"


@dataclass(frozen=True)
class IngestReport:
    added: list[FileResult] = field(default_factory=list)
    unchanged: list[FileResult] = field(default_factory=list)
    replaced: list[FileResult] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    removed: list[Removal] = field(default_factory=list)  # old versions dropped by replacements

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class Progress:
    """Passed to `on_progress` once per file and stage: parse, chunk, embed, index, then done."""

    source: str
    stage: str
    file_index: int  # 0-based position in the batch
    file_count: int
    pages: int = 0  # pages parsed so far in this file
    chunks: int = 0
    outcome: str = ""  # on stage "done": added, unchanged, replaced or failed
