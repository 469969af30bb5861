"""The store: a folder holding Chroma vectors, the catalog (texts, page maps, outlines, defined
terms, keyword postings) and a lock. `Store` reads it and writes documents prepared elsewhere.

Layout of the folder (default `.tome/`):
    catalog.sqlite   source of truth: documents, sources, pages, chunks, keyword postings, ...
    chroma/          Chroma PersistentClient data: one vector per chunk, id "<doc_id>:<index>"
    lock, lock.owner the write lock and who holds it
    clauses-*.npy    the vectors of `ingest.clauses`, so that each process need not embed them
"""

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ingest.catalog import Catalog
from ingest.clauses import WORDING_WEIGHT, ClauseMatch, ClauseType, asked_clause, clause_vectors
from ingest.errors import IngestError, UnknownDocumentError
from ingest.keyword import KeywordIndex, keyword_tokens, top_positions
from ingest.lock import StoreLock
from ingest.prepare import PreparedDocument
from ingest.records import DocInfo, FileResult, Hit, PageSpan, Passage, Removal, Section
from ingest.settings import DEFAULT_STORE, IngestSettings
from ingest.structure import section_key
from ingest.vectors import vector_index
from ingest.writer import Writer

# Each ranking contributes this many candidates to the fusion (more than k: a chunk ranked 30th
# by one method and 3rd by the other should still win).
CANDIDATES = 50
# Reciprocal rank fusion's constant (Cormack et al. 2009): damps the head so that agreement
# between the rankings outweighs a single first place.
RRF_K = 60
_MAX_K = 200
_MODES = ("hybrid", "dense", "keyword")


class Store:
    """A Tome document store. Opens the folder, creating it unless `create=False`; safe to share
    between threads.

    Methods taking a `doc_id` also accept a unique prefix of one or a source path (see
    `resolve`)."""

    def __init__(self, path: str | Path = DEFAULT_STORE, *, settings: IngestSettings | None = None,
                 lock_timeout_s: float = 30.0, create: bool = True):
        self.path = Path(path).expanduser().resolve()
        if not create and not (self.path / "catalog.sqlite").exists():
            raise IngestError(f"{path}: no Tome store here; add documents with `tome ingest PATH --store {path}`")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise IngestError(f"{path}: cannot create the store folder ({error.strerror})") from None
        self.settings = settings or IngestSettings()
        self._catalog = Catalog(self.path / "catalog.sqlite")
        self._lock = StoreLock(self.path, lock_timeout_s)
        self._vectors = vector_index(self.path)
        self._keyword: KeywordIndex | None = None
        self._keyword_generation = -1
        self._positions: dict[str, int] = {}
        self._doc_ranges: dict[str, tuple[int, int]] = {}
        self._clause_vectors = None
        self._writer = Writer(self._catalog, self._vectors, self._lock)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._catalog.close()

    # ---- documents -------------------------------------------------------------------------

    def documents(self) -> list[DocInfo]:
        rows = self._catalog.query(
            "SELECT doc_id, title, pages, chunks, sha256, kind, ocr_pages, added_at FROM documents "
            "WHERE status = 'complete' ORDER BY added_at, doc_id"
        )
        sources = self._sources()
        return [
            DocInfo(
                doc_id=d, source=sources.get(d, ("",))[0], title=t, pages=p, chunks=c,
                sources=sources.get(d, ()), sha256=sha, kind=kind, ocr_pages=tuple(json.loads(ocr)),
                added_at=added,
            )
            for d, t, p, c, sha, kind, ocr, added in rows
        ]

    def document(self, doc_id: str) -> DocInfo:
        doc_id = self.resolve(doc_id)
        return next(d for d in self.documents() if d.doc_id == doc_id)

    def resolve(self, doc_ref: str) -> str:
        """The doc_id a user's DOC argument means: a doc_id, a unique prefix of one (4+ characters),
        a source path (as given or resolved), or a unique file name among the sources."""
        ref = str(doc_ref).strip()
        if not ref:
            raise UnknownDocumentError("empty document reference")
        if self._catalog.query("SELECT 1 FROM documents WHERE doc_id = ? AND status = 'complete'", (ref,)):
            return ref  # the common case, one indexed lookup
        complete = {r[0] for r in self._catalog.query("SELECT doc_id FROM documents WHERE status = 'complete'")}
        sources = {s: d for s, d in self._catalog.query("SELECT source, doc_id FROM sources") if d in complete}
        for candidate in (ref, str(Path(ref).expanduser().resolve())):
            if candidate in sources:
                return sources[candidate]
        matches = sorted(d for d in complete if d.startswith(ref.lower())) if len(ref) >= 4 else []
        if not matches:
            matches = sorted({d for s, d in sources.items() if Path(s).name == ref})
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise UnknownDocumentError(
                f"'{ref}' matches {len(matches)} documents ({', '.join(matches[:5])}); give more of the doc_id"
            )
        raise UnknownDocumentError(f"no document matches '{ref}' (give a doc_id, a prefix of one or a source path; see `tome docs`)")

    def document_text(self, doc_id: str) -> str:
        """The full cleaned text; every offset in Hits, PageSpans, Sections and Passages indexes it."""
        doc_id = self.resolve(doc_id)
        return self._catalog.query("SELECT text FROM documents WHERE doc_id = ?", (doc_id,))[0][0]

    def pages(self, doc_id: str) -> list[PageSpan]:
        doc_id = self.resolve(doc_id)
        rows = self._catalog.query(
            "SELECT number, label, char_start, char_end FROM pages WHERE doc_id = ? ORDER BY number", (doc_id,)
        )
        return [PageSpan(*row) for row in rows]

    def page_text(self, doc_id: str, page: int) -> str:
        """The cleaned text of a 1-based physical page ("" for a page without text)."""
        spans = self.pages(doc_id)
        if not 1 <= page <= len(spans):
            raise IngestError(f"page {page} is out of range: the document has pages 1 to {len(spans)}")
        span = spans[page - 1]
        return self.document_text(doc_id)[span.start:span.end]

    def page_at(self, doc_id: str, offset: int) -> PageSpan:
        """The page holding a character offset of `document_text` (separators count to the page
        before them)."""
        spans = self.pages(doc_id)
        return next((s for s in reversed(spans) if s.start <= offset), spans[0])

    # ---- structure -------------------------------------------------------------------------

    def outline(self, doc_id: str) -> list[Section]:
        """Every heading found, in order: articles, numbered sections, (a)-clauses, exhibits."""
        doc_id = self.resolve(doc_id)
        rows = self._catalog.query(
            "SELECT number, title, path, level, char_start, char_end FROM sections WHERE doc_id = ? ORDER BY ord",
            (doc_id,),
        )
        spans = self.pages(doc_id)
        return [Section(n, t, p, lv, s, e, _page_range(spans, s, e)) for n, t, p, lv, s, e in rows]

    def section(self, doc_id: str, number: str) -> Passage | None:
        """The text of a section by its number as a contract cites it: "9.2", "Section 9.02",
        "12.3(a)", "Article IV", "Exhibit A". None when the document has no such heading."""
        doc_id = self.resolve(doc_id)
        keys = section_key(number)
        if not keys:
            return None
        marks = ",".join("?" * len(keys))
        rows = self._catalog.query(
            f"SELECT path, key, char_start, char_end FROM sections WHERE doc_id = ? AND key IN ({marks}) "
            "ORDER BY ord", (doc_id, *keys),
        )
        if not rows:
            return None
        path, _, start, end = min(rows, key=lambda r: keys.index(r[1]))  # "9": section 9, else Article 9
        return self._passage(doc_id, start, end, path.split(" > ")[-1])

    def section_chunks(self, doc_id: str, number: str) -> list[Hit]:
        """The stored chunks overlapping a section, in document order (scores are 0)."""
        passage = self.section(doc_id, number)
        if passage is None:
            return []
        rows = self._catalog.query(
            "SELECT chunk_id FROM chunks WHERE doc_id = ? AND char_start < ? AND char_end > ? ORDER BY idx",
            (passage.doc_id, passage.end, passage.start),
        )
        return self._hits([(r[0], 0.0, None, None) for r in rows])

    def definition(self, doc_id: str, term: str) -> Passage | None:
        """Where a defined term is defined ('"Affiliate" means ...', '(the "Effective Date")').
        Case-insensitive; a plural finds its singular and back."""
        doc_id = self.resolve(doc_id)
        folded = term.strip().strip("\"“”'‘’").lower()
        for variant in (folded, folded[:-1] if folded.endswith("s") else folded + "s"):
            rows = self._catalog.query(
                "SELECT term, char_start, char_end FROM definitions WHERE doc_id = ? AND folded = ? "
                "ORDER BY kind = 'inline', char_start LIMIT 1", (doc_id, variant),
            )
            if rows:
                return self._passage(doc_id, rows[0][1], rows[0][2], rows[0][0])
        return None

    def defined_terms(self, doc_id: str) -> list[str]:
        doc_id = self.resolve(doc_id)
        return [r[0] for r in self._catalog.query(
            "SELECT term FROM definitions WHERE doc_id = ? ORDER BY char_start", (doc_id,)
        )]

    def locate(self, doc_id: str, quote: str) -> Passage | None:
        """Where a quoted span occurs, ignoring case, whitespace, punctuation and hyphenation
        differences (for citations); None if it does not."""
        words = re.findall(r"\w+", quote)
        if not words:
            return None
        pattern = re.compile(r"[\W_]*".join(re.escape(w) for w in words), re.IGNORECASE)
        doc_id = self.resolve(doc_id)
        match = pattern.search(self.document_text(doc_id))
        return self._passage(doc_id, match.start(), match.end()) if match else None

    def _passage(self, doc_id: str, start: int, end: int, label: str = "") -> Passage:
        text = self.document_text(doc_id)
        return Passage(doc_id, text[start:end], start, end, _page_range(self.pages(doc_id), start, end), label)

    # ---- search ----------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, doc_id: str | None = None, mode: str = "hybrid") -> list[Hit]:
        """The k chunks best matching `query`, only within `doc_id` when given. mode "hybrid"
        fuses the dense (cosine) and BM25 rankings by reciprocal rank; "dense" and "keyword" use
        one ranking alone. A question about a common kind of clause ("Is there a non-compete?",
        see `ingest.clauses`) is searched with that clause's typical wording as well, and for
        title, parties and date the opening chunk joins the hybrid fusion. Both scores are filled
        in on every Hit whatever the mode, and are the query's own."""
        from ingest.embed import get_embedder

        if not query or not query.strip():
            raise IngestError("empty search query")
        if not 1 <= k <= _MAX_K:
            raise IngestError(f"k={k}: expected 1 to {_MAX_K}")
        if mode not in _MODES:
            raise IngestError(f"mode={mode!r}: expected one of {', '.join(_MODES)}")
        doc_id = self.resolve(doc_id) if doc_id else None
        if not self._catalog.query("SELECT 1 FROM documents WHERE status = 'complete' LIMIT 1"):
            return []
        embedder = get_embedder()
        vector = embedder.encode_query(query)
        term_ids = self._catalog.lookup_terms(keyword_tokens(query))
        match = self._asked_clause(embedder, vector)
        search_vector, extra_ids = vector, []
        if match and not _names_only(query, match.clause):
            search_vector = vector + match.weight * WORDING_WEIGHT * match.wording_vector
            search_vector /= np.linalg.norm(search_vector)
            asked = set(term_ids)
            extra_ids = [t for t in dict.fromkeys(self._catalog.lookup_terms(keyword_tokens(match.clause.wording)))
                         if t not in asked]
        with self._searching():
            n = max(CANDIDATES, 2 * k)
            lo, hi = self._doc_ranges.get(doc_id, (0, 0)) if doc_id else (0, len(self._keyword))
            if doc_id:
                dense = self._vectors.nearest_among(search_vector, self._keyword.chunk_ids[lo:hi], n)
            else:
                dense = [(i, s) for i, s in self._vectors.query(search_vector, n) if i in self._positions]
            scores = self._keyword.scores(term_ids, lo, hi)
            searched = scores + match.weight * self._keyword.scores(extra_ids, lo, hi) if extra_ids else scores
            best = top_positions(searched, n)
            keyword = [(self._keyword.chunk_ids[lo + int(p)], float(searched[p])) for p in best if searched[p] > 0]
            rankings = [dense, keyword]
            if match and match.clause.opening:
                rankings.append(self._openings(rankings, doc_id))
            ranking = {"hybrid": lambda: _fuse(*rankings), "dense": lambda: dense, "keyword": lambda: keyword}
            top = ranking[mode]()[:k]
            # The scores reported are the question's own, whatever the clause wording added.
            dense_scores = dict(dense) if search_vector is vector else {}
            missing = [i for i, _ in top if i not in dense_scores]
            dense_scores.update(self._vectors.similarities(missing, vector))
            ranked = [
                (i, score, dense_scores.get(i), float(scores[self._positions[i] - lo]))
                for i, score in top
            ]
        return self._hits(ranked)

    def _asked_clause(self, embedder, vector: np.ndarray) -> ClauseMatch | None:
        if self._clause_vectors is None:
            self._clause_vectors = clause_vectors(embedder, self.path)
        return asked_clause(vector, self._clause_vectors)

    def _openings(self, rankings: list[list[tuple[str, float]]], doc_id: str | None) -> list[tuple[str, float]]:
        """The first chunk of the searched document, or of each document among the fused
        candidates in their order, as a ranking."""
        docs = [doc_id] if doc_id else list(dict.fromkeys(i.rsplit(":", 1)[0] for i, _ in _fuse(*rankings)))
        firsts = [self._keyword.chunk_ids[self._doc_ranges[d][0]] for d in docs if d in self._doc_ranges]
        return [(i, 0.0) for i in firsts]

    @contextmanager
    def _searching(self) -> Iterator[None]:
        """Shared lock; reload the views other processes made stale."""
        with self._vectors.lock, self._lock.shared():
            generation = self._catalog.generation()
            if self._vectors.generation != generation:
                self._vectors.reopen()
                self._vectors.generation = generation
            if self._keyword_generation != generation:
                self._load_keyword(generation)
            yield

    def _load_keyword(self, generation: int) -> None:
        rows = self._catalog.query(
            "SELECT c.chunk_id, c.terms, c.tfs, c.length, c.doc_id FROM chunks c JOIN documents d "
            "USING (doc_id) WHERE d.status = 'complete' ORDER BY c.doc_id, c.idx"
        )
        self._keyword = KeywordIndex.build([r[:4] for r in rows])
        self._positions = {r[0]: i for i, r in enumerate(rows)}
        ranges: dict[str, tuple[int, int]] = {}
        for i, row in enumerate(rows):
            lo, _ = ranges.get(row[4], (i, i))
            ranges[row[4]] = (lo, i + 1)
        self._doc_ranges = ranges
        self._keyword_generation = generation

    def _hits(self, ranked: list[tuple[str, float, float | None, float | None]]) -> list[Hit]:
        if not ranked:
            return []
        ids = [r[0] for r in ranked]
        marks = ",".join("?" * len(ids))
        rows = self._catalog.query(
            "SELECT c.chunk_id, c.text, c.doc_id, d.title, c.page_first, c.page_last, c.section, "
            f"c.char_start, c.char_end FROM chunks c JOIN documents d USING (doc_id) WHERE c.chunk_id IN ({marks})",
            tuple(ids),
        )
        by_id = {r[0]: r for r in rows}
        sources = self._sources({r[2] for r in rows})
        hits = []
        for chunk_id, score, dense, keyword in ranked:
            _, text, doc, title, first, last, section, start, end = by_id[chunk_id]
            hits.append(Hit(
                text=text, doc_id=doc, source=sources.get(doc, ("",))[0], title=title, pages=(first, last),
                section=section, score=score, start=start, end=end, dense_score=dense,
                keyword_score=keyword, chunk_id=chunk_id,
            ))
        return hits

    def _sources(self, doc_ids: set[str] | None = None) -> dict[str, tuple[str, ...]]:
        """Each document's source paths, oldest first (of `doc_ids` only, when given)."""
        where, params = "", ()
        if doc_ids is not None:
            where, params = f"WHERE doc_id IN ({','.join('?' * len(doc_ids))}) ", tuple(doc_ids)
        grouped: dict[str, list[str]] = {}
        rows = self._catalog.query(f"SELECT source, doc_id FROM sources {where}ORDER BY added_at, source", params)
        for source, doc in rows:
            grouped.setdefault(doc, []).append(source)
        return {d: tuple(s) for d, s in grouped.items()}

    # ---- changes ---------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Increases with every change to the store, from any process."""
        return self._catalog.generation()

    def removed_since(self, generation: int) -> list[Removal]:
        """Documents removed after `generation`, by any process (to purge per-document caches)."""
        rows = self._catalog.query(
            "SELECT generation, doc_id, sha256, sources, title FROM removals WHERE generation > ? ORDER BY generation",
            (generation,),
        )
        return [Removal(doc_id=d, sha256=s, sources=tuple(json.loads(src)), title=t, generation=g) for g, d, s, src, t in rows]

    def on_removal(self, callback: Callable[[Removal], None]) -> None:
        """Call `callback` after each removal this Store makes (delete, or a replaced file)."""
        self._writer.listeners.append(callback)

    def stored(self, source: str, doc_id: str, settings_key: str) -> str:
        """What the store holds for this source and content: "unchanged" (this source, this
        content), "elsewhere" (this content under another source) or "new"."""
        rows = self._catalog.query(
            "SELECT settings_key FROM documents WHERE doc_id = ? AND status = 'complete'", (doc_id,)
        )
        if not rows or rows[0][0] != settings_key:
            return "new"
        current = self._catalog.query("SELECT doc_id FROM sources WHERE source = ?", (source,))
        return "unchanged" if current and current[0][0] == doc_id else "elsewhere"

    def add_source(self, source: str, doc_id: str) -> tuple[str, FileResult, list[Removal]]:
        """List `source` as another path of a stored document (identical content)."""
        others = [s for s in self._writer.sources(doc_id) if s != source]
        outcome, removals = self._writer.attach_source(source, doc_id)
        note = f"same content as {others[0]}" if others and outcome != "unchanged" else ""
        return outcome, self.file_result(source, doc_id, note), removals

    def put(self, doc: PreparedDocument, source: str) -> tuple[str, FileResult, list[Removal]]:
        """Write a prepared document for `source` (what `ingest_paths` does with each file). The
        outcome is "added", "replaced" (the source held other content, now removed unless another
        source shares it; or the same content re-chunked under new settings) or "unchanged"."""
        outcome, removals, notes = self._writer.put(
            doc, source, lambda: self.stored(source, doc.doc_id, doc.settings_key)
        )
        return outcome, self.file_result(source, doc.doc_id, "; ".join(list(doc.warnings) + notes)), removals

    def delete(self, doc_id: str) -> Removal:
        """Remove a document everywhere: vectors, keyword postings, text, every source."""
        return self._writer.delete(self.resolve(doc_id))

    def verify(self) -> list[str]:
        """Consistency problems between the catalog and Chroma (empty when all is well)."""
        with self._searching():
            vectors = self._vectors.ids()
        chunks = {r[0] for r in self._catalog.query("SELECT chunk_id FROM chunks")}
        problems = []
        if vectors - chunks:
            problems.append(f"{len(vectors - chunks)} vectors without a catalog chunk")
        if chunks - vectors:
            problems.append(f"{len(chunks - vectors)} catalog chunks without a vector")
        for doc_id, status, count in self._catalog.query("SELECT doc_id, status, chunks FROM documents"):
            if status != "complete":
                problems.append(f"document {doc_id} is {status}")
            stored = self._catalog.query("SELECT COUNT(*) FROM chunks WHERE doc_id = ?", (doc_id,))[0][0]
            if stored != count:
                problems.append(f"document {doc_id} lists {count} chunks but has {stored}")
        orphans = self._catalog.query("SELECT source FROM sources WHERE doc_id NOT IN (SELECT doc_id FROM documents)")
        problems.extend(f"source {s} points to no document" for s, in orphans)
        return problems

    def file_result(self, source: str, doc_id: str, note: str = "") -> FileResult:
        title, pages, chunks = self._catalog.query(
            "SELECT title, pages, chunks FROM documents WHERE doc_id = ?", (doc_id,)
        )[0]
        return FileResult(source=source, doc_id=doc_id, title=title, pages=pages, chunks=chunks, note=note)


def _page_range(spans: list[PageSpan], start: int, end: int) -> tuple[int, int]:
    first = next((s.number for s in reversed(spans) if s.start <= start), spans[0].number)
    last = next((s.number for s in reversed(spans) if s.start < max(end, start + 1)), first)
    return first, max(first, last)


def _names_only(query: str, clause: ClauseType) -> bool:
    """A query that is little more than a clause type's name ("termination for convenience") is
    searched as typed: its words are what the clause is found by, and the typical wording would
    only add words it shares with neighbouring clauses (termination for cause)."""
    name, asked = set(keyword_tokens(clause.name)), set(keyword_tokens(query))
    return name <= asked and len(asked) <= len(name) + 1


def _fuse(*rankings: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: (chunk id, fused score), best first."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _) in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(fused.items(), key=lambda item: -item[1])
