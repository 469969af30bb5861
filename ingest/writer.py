"""Writing to a store folder: the only code that changes the catalog or Chroma.

Every change happens under the store's exclusive lock. A document is written in three steps
(pending rows, vectors, the flip to complete) and removed in three (marked deleting, vectors,
rows), so a process killed at any point leaves rows that the next writer recognises and finishes
removing (`repair`). Each committed change bumps the catalog's generation; the writer keeps its own
Chroma view current and every other view reloads.
"""

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from ingest.catalog import Catalog
from ingest.keyword import term_counts
from ingest.lock import StoreLock
from ingest.prepare import PreparedDocument
from ingest.records import Removal
from ingest.vectors import VectorIndex


def chunk_id(doc_id: str, index: int) -> str:
    return f"{doc_id}:{index:05d}"


class Writer:
    def __init__(self, catalog: Catalog, vectors: VectorIndex, lock: StoreLock):
        self.catalog, self.vectors, self.lock = catalog, vectors, lock
        self.listeners: list[Callable[[Removal], None]] = []

    def sources(self, doc_id: str) -> tuple[str, ...]:
        rows = self.catalog.query("SELECT source FROM sources WHERE doc_id = ? ORDER BY added_at, source", (doc_id,))
        return tuple(r[0] for r in rows)

    def exists(self, doc_id: str) -> bool:
        return bool(self.catalog.query("SELECT 1 FROM documents WHERE doc_id = ?", (doc_id,)))

    def attach_source(self, source: str, doc_id: str) -> tuple[str, list[Removal]]:
        """List `source` as a path of the stored `doc_id`: "added", "replaced" or "unchanged"."""
        with self.writing() as removals:
            outcome = self._attach(source, doc_id, removals)
        return outcome, removals

    def put(self, doc: PreparedDocument, source: str, stored: Callable[[], str]) -> tuple[str, list[Removal], list[str]]:
        """Write a prepared document for `source`; `stored()` re-checks, under the lock, whether
        its content is already there. Returns the outcome, the removals and notes."""
        notes: list[str] = []
        with self.writing() as removals:
            if stored() != "new":
                others = [s for s in self.sources(doc.doc_id) if s != source]
                outcome = self._attach(source, doc.doc_id, removals)
                notes += [f"same content as {others[0]}"] if others and outcome != "unchanged" else []
            else:
                rechunked = self.sources(doc.doc_id)
                if self.exists(doc.doc_id):
                    self._drop(doc.doc_id)  # stored under other chunker or embedder settings
                self._write(doc, rechunked)
                outcome = self._attach(source, doc.doc_id, removals)
                if source in rechunked:
                    outcome = "replaced"
                    notes.append("re-chunked: the chunker or embedder settings changed")
        return outcome, removals, notes

    def delete(self, doc_id: str) -> Removal:
        with self.writing() as removals:
            self._remove(doc_id, self.sources(doc_id), removals)
        return removals[0]

    @contextmanager
    def writing(self) -> Iterator[list[Removal]]:
        """The exclusive lock, a fresh view of Chroma, half-written documents repaired; yields a
        list collecting removals, which listeners hear about after the lock is released."""
        removals: list[Removal] = []
        with self.vectors.lock, self.lock.exclusive():
            with self.catalog.transaction() as db:
                generation = Catalog.bump(db)  # other processes' Chroma views are now stale
            if self.vectors.generation != generation - 1:
                self.vectors.reopen()
            self.vectors.generation = generation
            self._repair()
            yield removals
        for removal in removals:
            for listener in self.listeners:
                listener(removal)

    def _commit(self, db) -> None:
        """Within a write transaction: bump the generation; our own Chroma view stays current."""
        self.vectors.generation = Catalog.bump(db)

    def _repair(self) -> None:
        """Remove documents a killed process left pending or half-deleted."""
        for doc_id, in self.catalog.query("SELECT doc_id FROM documents WHERE status != 'complete'"):
            self._drop(doc_id)

    def _drop(self, doc_id: str) -> None:
        """Delete a document's vectors, then its rows; safe to repeat after a crash."""
        with self.catalog.transaction() as db:
            db.execute("UPDATE documents SET status = 'deleting' WHERE doc_id = ?", (doc_id,))
            self._commit(db)
        self.vectors.delete_document(doc_id)
        with self.catalog.transaction() as db:
            self.catalog.remove_rows(db, doc_id)
            self._commit(db)

    def _remove(self, doc_id: str, sources: tuple[str, ...], removals: list[Removal]) -> None:
        """Drop a complete document and record its removal for caches keyed by it."""
        with self.catalog.transaction() as db:
            sha, title = db.execute("SELECT sha256, title FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
            self._commit(db)
            removal = Removal(doc_id, sha, tuple(sources), title, self.vectors.generation)
            db.execute(
                "INSERT INTO removals VALUES (?, ?, ?, ?, ?)",
                (removal.generation, doc_id, sha, json.dumps(list(sources)), title),
            )
        removals.append(removal)
        self._drop(doc_id)

    def _attach(self, source: str, doc_id: str, removals: list[Removal]) -> str:
        """Make `source` name `doc_id`; the document it named before goes if nothing else names it."""
        previous = self.catalog.query("SELECT doc_id FROM sources WHERE source = ?", (source,))
        previous_doc = previous[0][0] if previous else None
        if previous_doc == doc_id:
            return "unchanged"
        with self.catalog.transaction() as db:
            db.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?)", (source, doc_id, time.time()))
            self._commit(db)
        if previous_doc is None:
            return "added"
        if not self.catalog.query("SELECT 1 FROM sources WHERE doc_id = ?", (previous_doc,)):
            self._remove(previous_doc, (source,), removals)
        return "replaced"

    def _write(self, doc: PreparedDocument, sources: tuple[str, ...]) -> None:
        """Pending rows, then vectors, then the flip to complete (with `sources` re-attached)."""
        self._write_pending(doc)
        self.vectors.upsert(
            [chunk_id(doc.doc_id, c.index) for c in doc.chunks], doc.vectors,
            [{"doc_id": doc.doc_id, "index": c.index, "page_first": c.pages[0], "page_last": c.pages[1],
              "section": c.section[:500]} for c in doc.chunks],
            [c.text for c in doc.chunks],
        )
        with self.catalog.transaction() as db:
            db.execute("UPDATE documents SET status = 'complete' WHERE doc_id = ?", (doc.doc_id,))
            db.executemany(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?)", [(s, doc.doc_id, time.time()) for s in sources]
            )
            self._commit(db)

    def _write_pending(self, doc: PreparedDocument) -> None:
        counts = [term_counts(c.embed_text) for c in doc.chunks]
        with self.catalog.transaction() as db:
            db.execute(
                "INSERT INTO documents VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc.doc_id, doc.sha256, doc.kind, doc.title, len(doc.pages), len(doc.chunks), doc.size,
                 doc.settings_key, json.dumps(list(doc.ocr_pages)), time.time(), doc.text),
            )
            db.executemany(
                "INSERT INTO pages VALUES (?, ?, ?, ?, ?)",
                [(doc.doc_id, p.number, p.label, p.start, p.end) for p in doc.pages],
            )
            vocabulary = sorted({t for c in counts for t in c})
            ids = dict(zip(vocabulary, self.catalog.term_ids(db, vocabulary)))
            db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (chunk_id(doc.doc_id, c.index), doc.doc_id, c.index, c.start, c.end, c.pages[0], c.pages[1],
                     c.section, c.text, np.array([ids[t] for t in cnt], dtype=np.int32).tobytes(),
                     np.array(list(cnt.values()), dtype=np.int32).tobytes(), sum(cnt.values()))
                    for c, cnt in zip(doc.chunks, counts)
                ],
            )
            db.executemany(
                "INSERT INTO sections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(doc.doc_id, i, h.kind, h.number, h.key, h.title, h.path, h.level, h.start, h.end)
                 for i, h in enumerate(doc.headings)],
            )
            db.executemany(
                "INSERT INTO definitions VALUES (?, ?, ?, ?, ?, ?)",
                [(doc.doc_id, d.term, d.term.lower(), d.kind, d.start, d.end) for d in doc.definitions],
            )
            self._commit(db)

