"""Tome's documents: parsing (PDF, text, Markdown), cleaning, clause-aware chunking, embedding,
the persistent store (Chroma + BM25 + SQLite catalog) and hybrid retrieval.

    from ingest import Store, ingest_paths, ingest_bytes
    store = Store(".tome")                                  # opens or creates the folder
    report = ingest_paths(["sample_docs"], store)           # files and folders, recursively
    report.added, report.unchanged, report.replaced         # lists of FileResult(source, doc_id, ...)
    report.failed                                           # [(path, one-line reason)]
    report = ingest_bytes("contract.pdf", data, store)      # an upload; same name replaces

    hits = store.search("termination for convenience", k=5, doc_id=None)
    # Hit(text, doc_id, source, title, pages=(first, last), section, score, start, end,
    #     dense_score, keyword_score, chunk_id); score is the fused rank score, dense_score
    #     (cosine) and keyword_score (BM25) are absolute: both low = probably not in the documents.
    store.documents()          # [DocInfo(doc_id, source, title, pages, chunks, sources, sha256, ...)]
    store.resolve(doc_ref)     # a DOC argument (doc_id, unique prefix, source path, file name) -> doc_id
    store.delete(doc_id)       # -> Removal(doc_id, sha256, sources, title, generation)

Every method taking a doc_id also takes anything `resolve` accepts.

Texts, pages and citations. `store.document_text(doc_id)` is the full cleaned text the long-context
runtime reads; every offset below indexes it.
    store.pages(doc_id)            # [PageSpan(number, label, start, end)]: number is the 1-based
                                   # physical page, label the printed page number (PDF page labels)
    store.page_at(doc_id, offset)  # the PageSpan holding a character offset
    store.page_text(doc_id, page)
    store.locate(doc_id, quote)    # Passage(doc_id, text, start, end, pages, label) where a quoted
                                   # span occurs (case, whitespace, punctuation ignored), or None

Structure: contracts cite sections and use defined terms.
    hit.section                    # the chunk's section path: "12 Termination > 12.3 Effect of ..."
    store.outline(doc_id)          # [Section(number, title, path, level, start, end, pages)]
    store.section(doc_id, "9.2")   # Passage of that section; also "Section 9.02", "12.3(a)",
                                   # "Article IV", "Exhibit A"; None if absent
    store.section_chunks(doc_id, "9.2")       # the stored chunks (Hits) covering it
    store.definition(doc_id, "Confidential Information")  # Passage defining a term, or None
    store.defined_terms(doc_id)

Removals, for caches keyed by document (e.g. saved model states): `store.delete` returns the
Removal; a file re-ingested with new content removes its old version, reported in
`IngestReport.removed`; `store.on_removal(callback)` hears both in this process, and
`store.removed_since(generation)` lists removals made by any process since `store.generation`.

Errors are `ingest.IngestError` subclasses with one-line messages. Importing `ingest` is cheap:
torch, Chroma and pypdf load on first use. Tome runs offline: HF_HUB_OFFLINE=1 and Chroma's
telemetry off are set here, before those libraries load.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # we tokenize in one thread per process

from ingest.errors import (  # noqa: E402
    IngestError,
    ParseError,
    StoreBusyError,
    StoreVersionError,
    UnknownDocumentError,
)
from ingest.pipeline import ingest_bytes, ingest_paths  # noqa: E402
from ingest.records import (  # noqa: E402
    DocInfo,
    FileResult,
    Hit,
    IngestReport,
    PageSpan,
    Passage,
    Progress,
    Removal,
    Section,
)
from ingest.settings import DEFAULT_STORE, IngestSettings  # noqa: E402
from ingest.store import Store  # noqa: E402

__all__ = [
    "DEFAULT_STORE",
    "DocInfo",
    "FileResult",
    "Hit",
    "IngestError",
    "IngestReport",
    "IngestSettings",
    "PageSpan",
    "ParseError",
    "Passage",
    "Progress",
    "Removal",
    "Section",
    "Store",
    "StoreBusyError",
    "StoreVersionError",
    "UnknownDocumentError",
    "ingest_bytes",
    "ingest_paths",
]
