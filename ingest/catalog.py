"""The catalog: one SQLite database, the source of truth for what the store holds.

A document's row is written "pending" before its vectors go to Chroma and flipped to "complete"
after, so a document becomes visible only when all its parts are written; a process killed in
between leaves a pending row that the next writer removes, vectors included. Removal goes the
other way ("deleting", then vectors, then rows). Full texts, page maps, outlines, defined terms
and keyword postings live here too, written in the same transactions.

`generation` increases with every change, so other processes know their cached views (Chroma's
in-memory index, the keyword index) are stale.
"""

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest.errors import IngestError, StoreVersionError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, status TEXT NOT NULL, kind TEXT NOT NULL,
    title TEXT NOT NULL, pages INTEGER NOT NULL, chunks INTEGER NOT NULL, bytes INTEGER NOT NULL,
    settings_key TEXT NOT NULL, ocr_pages TEXT NOT NULL, added_at REAL NOT NULL, text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY, doc_id TEXT NOT NULL, added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sources_doc ON sources (doc_id);
CREATE TABLE IF NOT EXISTS pages (
    doc_id TEXT NOT NULL, number INTEGER NOT NULL, label TEXT NOT NULL,
    char_start INTEGER NOT NULL, char_end INTEGER NOT NULL, PRIMARY KEY (doc_id, number)
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, idx INTEGER NOT NULL,
    char_start INTEGER NOT NULL, char_end INTEGER NOT NULL, page_first INTEGER NOT NULL,
    page_last INTEGER NOT NULL, section TEXT NOT NULL, text TEXT NOT NULL,
    terms BLOB NOT NULL, tfs BLOB NOT NULL, length INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (doc_id, idx);
CREATE TABLE IF NOT EXISTS sections (
    doc_id TEXT NOT NULL, ord INTEGER NOT NULL, kind TEXT NOT NULL, number TEXT NOT NULL,
    key TEXT NOT NULL, title TEXT NOT NULL, path TEXT NOT NULL, level INTEGER NOT NULL,
    char_start INTEGER NOT NULL, char_end INTEGER NOT NULL, PRIMARY KEY (doc_id, ord)
);
CREATE INDEX IF NOT EXISTS sections_key ON sections (doc_id, key);
CREATE TABLE IF NOT EXISTS definitions (
    doc_id TEXT NOT NULL, term TEXT NOT NULL, folded TEXT NOT NULL, kind TEXT NOT NULL,
    char_start INTEGER NOT NULL, char_end INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS definitions_term ON definitions (doc_id, folded);
CREATE TABLE IF NOT EXISTS terms (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS removals (
    generation INTEGER NOT NULL, doc_id TEXT NOT NULL, sha256 TEXT NOT NULL,
    sources TEXT NOT NULL, title TEXT NOT NULL
);
"""
# Tables holding a document's parts, cleared together when it is removed.
DOCUMENT_TABLES = ("pages", "chunks", "sections", "definitions", "sources", "documents")
_BUSY_TIMEOUT_S = 60


def _connect_in_wal_mode(path: Path) -> sqlite3.Connection:
    # Switching a new database to WAL needs it to itself, and when two connections open it at the
    # same moment SQLite answers "database is locked" at once instead of waiting out the busy
    # timeout (it would deadlock otherwise), so the switch is retried here.
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return db
        except sqlite3.OperationalError as error:
            db.close()
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Catalog:
    def __init__(self, path: Path):
        try:
            self.db = _connect_in_wal_mode(path)
        except sqlite3.Error as error:
            raise IngestError(f"{path}: cannot open the store's catalog ({error})") from None
        # WAL with FULL sync: a commit survives SIGKILL and power loss alike.
        self.db.execute("PRAGMA synchronous=FULL")
        self.lock = threading.RLock()
        self._create(path)

    def _create(self, path: Path) -> None:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self.db.execute(statement)
                found = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if found is None:
                    self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    self.db.execute("INSERT INTO meta VALUES ('generation', '0')")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        version = int(found[0]) if found else SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            raise StoreVersionError(
                f"{path.parent}: store schema version {version}, but this Tome reads version "
                f"{SCHEMA_VERSION}; use a matching Tome or a new --store folder"
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.lock:
            return self.db.execute(sql, params).fetchall()

    def generation(self) -> int:
        return int(self.query("SELECT value FROM meta WHERE key='generation'")[0][0])

    @staticmethod
    def bump(db: sqlite3.Connection) -> int:
        """Within a transaction: the next generation, recorded."""
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
        return int(db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def term_ids(self, db: sqlite3.Connection, terms: list[str]) -> list[int]:
        """Within a transaction: ids of terms, new terms added to the vocabulary."""
        db.executemany("INSERT OR IGNORE INTO terms (term) VALUES (?)", [(t,) for t in terms])
        return self.lookup_terms(terms, db)

    def lookup_terms(self, terms: list[str], db: sqlite3.Connection | None = None) -> list[int]:
        """Ids of the terms the vocabulary knows (unknown terms are left out), in order."""
        if not terms:
            return []
        known = {}
        for start in range(0, len(terms), 500):  # SQLite's variable limit
            batch = list(set(terms[start:start + 500]))
            marks = ",".join("?" * len(batch))
            sql = f"SELECT term, id FROM terms WHERE term IN ({marks})"
            rows = (db or self.db).execute(sql, batch).fetchall() if db else self.query(sql, tuple(batch))
            known.update(rows)
        return [known[t] for t in terms if t in known]

    def remove_rows(self, db: sqlite3.Connection, doc_id: str) -> None:
        for table in DOCUMENT_TABLES:
            db.execute(f"DELETE FROM {table} WHERE doc_id = ?", (doc_id,))

    def close(self) -> None:
        with self.lock:
            self.db.close()
