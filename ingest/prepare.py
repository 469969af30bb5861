"""From a file's bytes to what the store writes: parse, clean, find structure, chunk, embed.

Nothing here touches the store, so a batch can prepare the next document while another process
holds the store's write lock.
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.chunk import Chunk, chunk_document
from ingest.clean import clean_pages
from ingest.embed import Embedder
from ingest.errors import ParseError
from ingest.parse import ParsedDocument, kind_of, parse_text
from ingest.records import PageSpan
from ingest.settings import IngestSettings
from ingest.structure import Heading, contents_tables, find_headings
from ingest.terms import Definition, find_definitions
from ingest.worker import PdfParser

# Content hashes are sha256; a doc_id is its first 16 hex digits (64 bits: collisions need ~4e9
# documents), short enough to type a prefix of.
DOC_ID_HEX = 16
_TITLE_WORDS = re.compile(
    r"\b(agreement|contract|amendment|addendum|license|licence|lease|manual|guide|handbook|policy|"
    r"terms|conditions|schedule|plan|report|protocol|specification|instructions|statement|deed|"
    r"memorandum|charter|bylaws|certificate|notice|nda)\b", re.I,
)


@dataclass(frozen=True)
class PreparedDocument:
    doc_id: str
    sha256: str
    kind: str
    title: str
    size: int
    text: str
    pages: tuple[PageSpan, ...]
    headings: list[Heading]
    definitions: list[Definition]
    chunks: list[Chunk]
    vectors: np.ndarray  # one unit-length row per chunk
    ocr_pages: tuple[int, ...]
    warnings: tuple[str, ...]
    settings_key: str


def content_id(data: bytes) -> tuple[str, str]:
    """(doc_id, sha256) of a file's bytes."""
    sha = hashlib.sha256(data).hexdigest()
    return sha[:DOC_ID_HEX], sha


def prepare_document(
    name: str, data: bytes, parser: PdfParser, embedder: Embedder, settings: IngestSettings,
    on_stage: Callable[[str, int, int], None] = lambda stage, pages, chunks: None,
) -> PreparedDocument:
    """Everything the store needs for one file; a ParseError says why there is nothing to store."""
    on_stage("parse", 0, 0)
    if kind_of(name) == "pdf":
        parsed = parser.parse(data, lambda i, n: on_stage("parse", i + 1, 0))
    else:
        parsed = parse_text(kind_of(name), data)
    return build_document(name, data, parsed, embedder, settings, on_stage)


def build_document(
    name: str, data: bytes, parsed: ParsedDocument, embedder: Embedder, settings: IngestSettings,
    on_stage: Callable[[str, int, int], None] = lambda stage, pages, chunks: None,
) -> PreparedDocument:
    """A parsed file cleaned, outlined, chunked and embedded."""
    clean = clean_pages(parsed.pages)
    ocr_pages = _pages_needing_ocr(parsed, clean.pages)
    if not clean.text.strip():
        raise ParseError(_no_text_reason(parsed))
    on_stage("chunk", len(parsed.pages), 0)
    headings = find_headings(clean.text)
    title = parsed.title or guess_title(clean.text) or Path(name).stem
    chunks = chunk_document(
        clean.text, title, headings, clean.pages, embedder, settings.chunk_tokens, settings.overlap_tokens,
        skipped=contents_tables(clean.text),
    )
    on_stage("embed", len(parsed.pages), len(chunks))
    vectors = embedder.encode([c.embed_text for c in chunks])
    doc_id, sha = content_id(data)
    warnings = parsed.warnings + ((_ocr_warning(ocr_pages),) if ocr_pages else ())
    return PreparedDocument(
        doc_id=doc_id, sha256=sha, kind=parsed.kind, title=title, size=len(data), text=clean.text,
        pages=clean.pages, headings=headings, definitions=find_definitions(clean.text, [h.start for h in headings]),
        chunks=chunks, vectors=vectors, ocr_pages=ocr_pages, warnings=warnings,
        settings_key=settings.key(embedder.identity),
    )


def guess_title(text: str) -> str:
    """A title from the first lines: a short line naming the kind of document ("MASTER SERVICES
    AGREEMENT"), else the first short line that reads like a title."""
    lines = [line.strip() for line in text[:4000].split("\n") if line.strip()][:40]
    candidates = [
        line for line in lines
        if 2 <= len(line.split()) <= 12 and sum(ch.isalpha() for ch in line) >= 0.6 * len(line)
        and not re.match(r"^(exhibit|schedule|annex|appendix)\s+[\w.]+$", line, re.I)
        and not line.endswith((",", ";"))
    ]
    named = [line for line in candidates if _TITLE_WORDS.search(line) and not line.endswith(".")]
    best = (named or candidates or [""])[0]
    return best.strip(" .:#*")[:200]


def _pages_needing_ocr(parsed: ParsedDocument, pages: tuple[PageSpan, ...]) -> tuple[int, ...]:
    return tuple(raw.number for raw, span in zip(parsed.pages, pages) if span.start == span.end and raw.has_images)


def _no_text_reason(parsed: ParsedDocument) -> str:
    count = len(parsed.pages)
    pages = f"{count} page" + ("s" if count != 1 else "")
    if parsed.kind != "pdf":
        return "the file holds no text (only whitespace)"
    if any(page.has_images for page in parsed.pages):
        return f"no text layer on its {pages} (scanned images): it needs OCR, which Tome does not do"
    return f"no extractable text on its {pages} (blank, vector drawings or broken fonts)"


def _ocr_warning(pages: tuple[int, ...]) -> str:
    shown = ", ".join(str(p) for p in pages[:12]) + (" ..." if len(pages) > 12 else "")
    return f"page{'s' if len(pages) > 1 else ''} {shown} have no text layer (scanned): not indexed, they need OCR"
