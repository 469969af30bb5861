"""The fast search path returns exactly what the plain one did: the same ranked chunk ids and
scores. The reference below is the search as first written: BM25 by the formula over each
term's postings, a full stable sort of every chunk's score, and Chroma's own `where` query for
a document filter; plus the clause step as `ingest.clauses` states it (the wording's vector and
words added, the opening chunks fused for title, parties and date, the query's own scores)."""

import functools
import math
from collections import Counter

import numpy as np
import pytest

from ingest import ingest_paths
from ingest.keyword import B, K1, keyword_tokens, top_positions
from ingest.embed import get_embedder
from ingest.clauses import CLAUSE_TYPES, MATCH_FROM, MATCH_FULL, WORDING_WEIGHT, clause_vectors
from ingest.store import CANDIDATES, _fuse
from ingest.writer import chunk_id
from tests.ingest.conftest import LOREM

QUERIES = [
    "termination for convenience", "Section 9.2 confidential information", "the Supplier shall",
    "invoices payable within thirty days", "governing law of the State of New York", "12.3(a)",
    "Is there a non-compete?", "What is the date of this agreement?",
]


@pytest.mark.parametrize("size, n", [(1, 1), (7, 3), (50, 50), (60, 100), (1000, 50), (1000, 1)])
def test_top_positions_is_a_stable_descending_argsort(size, n):
    rng = np.random.default_rng(size + n)
    for scores in (rng.integers(0, 4, size).astype(np.float32), rng.random(size, dtype=np.float32),
                   np.zeros(size, dtype=np.float32)):
        assert top_positions(scores, n).tolist() == np.argsort(-scores, kind="stable")[:n].tolist()


def _bm25_reference(index, term_ids: list[int], lo: int, hi: int) -> np.ndarray:
    out = np.zeros(hi - lo, dtype=np.float32)
    average = float(index.lengths.mean()) or 1.0
    for term, weight in Counter(term_ids).items():
        a, b = int(index.indptr[term]), int(index.indptr[term + 1])
        if a == b:
            continue
        idf = math.log(1 + (len(index) - (b - a) + 0.5) / (b - a + 0.5))
        chunks, tfs = index.post_chunks[a:b], index.post_tfs[a:b]
        keep = (chunks >= lo) & (chunks < hi)
        chunks, tfs = chunks[keep], tfs[keep]
        norm = K1 * (1 - B + B * index.lengths[chunks] / average)
        out[chunks - lo] += weight * idf * tfs * (K1 + 1) / (tfs + norm)
    return out


@functools.cache
def _clause_vectors():
    return clause_vectors(get_embedder())


def _reference_search(store, query: str, k: int, doc_id: str | None, mode: str):
    """(chunk id, fused score, dense score, keyword score) as `Store.search` first computed them."""
    vector = get_embedder().encode_query(query)
    term_ids = store._catalog.lookup_terms(keyword_tokens(query))
    similarities = _clause_vectors().forms @ vector
    best = int(np.argmax(similarities))
    clause, weight, search_vector, extra = None, 0.0, vector, []
    if similarities[best] >= MATCH_FROM:
        clause = CLAUSE_TYPES[_clause_vectors().owner[best]]
    name, asked = set(keyword_tokens(clause.name)) if clause else set(), set(keyword_tokens(query))
    if clause and not (name <= asked and len(asked) <= len(name) + 1):  # not just the type's name
        weight = min(1.0, (float(similarities[best]) - MATCH_FROM) / (MATCH_FULL - MATCH_FROM))
        wording = _clause_vectors().wordings[CLAUSE_TYPES.index(clause)]
        search_vector = vector + weight * WORDING_WEIGHT * wording
        search_vector /= np.linalg.norm(search_vector)
        extra = [t for t in dict.fromkeys(store._catalog.lookup_terms(keyword_tokens(clause.wording)))
                 if t not in term_ids]
    n = max(CANDIDATES, 2 * k)
    collection = store._vectors.collection
    result = collection.query(query_embeddings=search_vector[None, :], n_results=min(n, collection.count()),
                              where={"doc_id": doc_id} if doc_id else None, include=["distances"])
    dense = [(i, 1.0 - d) for i, d in zip(result["ids"][0], result["distances"][0])]
    index = store._keyword
    lo, hi = store._doc_ranges[doc_id] if doc_id else (0, len(index))
    scores = _bm25_reference(index, term_ids, lo, hi)
    searched = scores + weight * _bm25_reference(index, extra, lo, hi) if extra else scores
    best = np.argsort(-searched, kind="stable")[:n]
    keyword = [(index.chunk_ids[lo + int(p)], float(searched[p])) for p in best if searched[p] > 0]
    rankings = [dense, keyword]
    if clause and clause.opening:
        docs = [doc_id] if doc_id else list(dict.fromkeys(i.split(":")[0] for i, _ in _fuse(dense, keyword)))
        rankings.append([(chunk_id(d, 0), 0.0) for d in docs])
    top = {"hybrid": lambda: _fuse(*rankings), "dense": lambda: dense, "keyword": lambda: keyword}[mode]()[:k]
    dense_scores = store._vectors.similarities([i for i, _ in top], vector)
    return [(i, s, dense_scores[i], float(scores[store._positions[i] - lo])) for i, s in top]


@pytest.fixture
def three_contracts(store, tmp_path, contract_text):
    paths = []
    for number, extra in enumerate(["", LOREM * 12, "The Customer may terminate for convenience. " * 5]):
        path = tmp_path / f"contract{number}.txt"
        path.write_text(contract_text.replace("Acme Corp.", f"Acme {number} Corp.") + "\n\n" + extra)
        paths.append(path)
    assert ingest_paths(paths, store).failed == []
    return store


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_search_returns_what_the_plain_search_did(three_contracts, mode):
    store = three_contracts
    doc_ids = [None] + [d.doc_id for d in store.documents()]
    for query in QUERIES:
        for doc_id in doc_ids:
            hits = store.search(query, k=8, doc_id=doc_id, mode=mode)
            expected = _reference_search(store, query, 8, doc_id, mode)
            assert [h.chunk_id for h in hits] == [e[0] for e in expected], (query, doc_id)
            assert [h.score for h in hits] == pytest.approx([e[1] for e in expected], rel=1e-6, abs=1e-6)
            # Chroma's cosine distance and our dot product round differently in float32.
            assert [h.dense_score for h in hits] == pytest.approx([e[2] for e in expected], abs=1e-5)
            assert [h.keyword_score for h in hits] == [e[3] for e in expected]
            assert all(h.doc_id == doc_id for h in hits) if doc_id else hits
            assert all(h.source.endswith(".txt") for h in hits)
