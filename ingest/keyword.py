"""BM25 keyword search over chunks.

Tokens keep what contracts are searched by: section numbers ("9.2", "12.3(a)" also indexed as
"12.3"), amounts ("1,000,000" as "1000000"), hyphenated terms ("non-compete", and its parts),
single digits ("Section 9"). Stop words go; plurals fold to singular (a light S-stemmer), so
"Affiliates" finds "Affiliate".

Postings live in the catalog (SQLite), written in the same transaction as the document, so the
keyword index is never out of step with the store; `KeywordIndex` is the in-memory form used for
scoring, rebuilt from the catalog when the store's generation changes.
"""

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

# Lucene's defaults: k1 saturates repeated terms, b normalises by chunk length.
K1 = 1.2
B = 0.75

_TOKEN = re.compile(
    r"\d+(?:[.,]\d+)*(?:\([a-z0-9]{1,4}\))*"  # 9.2, 12.3(a)(ii), 1,000,000, 2024
    r"|[a-z][a-z0-9]*(?:['’][a-z]+)?(?:-[a-z0-9]+)*"  # words, licensee's, non-compete, covid-19
)
STOP_WORDS = frozenset(
    """a an and are as at be been being but by can could did do does doing for from had has
    have having he her hers him his how i if in into is it its itself me my no nor not of on
    or our ours she so than that the their theirs them then there these they this those to too
    under until up upon us very was we were what when where which while who whom why will with
    would you your""".split()
)


def keyword_tokens(text: str) -> list[str]:
    tokens = []
    for match in _TOKEN.finditer(text.lower()):
        token = match.group()
        if token[0].isdigit():
            tokens.extend(_number_tokens(token))
        else:
            tokens.extend(_word_tokens(token))
    return tokens


def _number_tokens(token: str) -> list[str]:
    if "(" in token:
        return [token, token[: token.index("(")]]
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", token):
        return [token.replace(",", "")]
    return [token]


def _word_tokens(token: str) -> list[str]:
    token = re.sub(r"['’]s?$", "", token)
    token = re.sub(r"['’][a-z]+$", "", token)  # don't / can't keep their stem only
    parts = token.split("-") if "-" in token else []
    words = [token] + [p for p in parts if p]
    return [_stem(w) for w in words if len(w) > 1 and w not in STOP_WORDS]


def _stem(word: str) -> str:
    """Plural to singular (Harman's S-stemmer): policies -> policy, licenses -> license."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def term_counts(text: str) -> Counter:
    return Counter(keyword_tokens(text))


@dataclass
class KeywordIndex:
    """Postings of every visible chunk, grouped by term: chunk positions and term frequencies."""

    chunk_ids: list[str]
    lengths: np.ndarray  # tokens per chunk
    norms: np.ndarray  # BM25's length normalisation per chunk, K1 * (1 - B + B * length / mean)
    indptr: np.ndarray  # postings of term t are [indptr[t], indptr[t + 1])
    post_chunks: np.ndarray
    post_tfs: np.ndarray

    @classmethod
    def build(cls, rows: list[tuple[str, bytes, bytes, int]]) -> "KeywordIndex":
        """From catalog rows (chunk_id, term ids as int32 bytes, counts as int32 bytes, length)."""
        terms = [np.frombuffer(r[1], dtype=np.int32) for r in rows]
        tfs = [np.frombuffer(r[2], dtype=np.int32) for r in rows]
        sizes = np.array([len(t) for t in terms], dtype=np.int64)
        all_terms = np.concatenate(terms) if terms else np.zeros(0, np.int32)
        all_tfs = np.concatenate(tfs) if tfs else np.zeros(0, np.int32)
        chunk_of = np.repeat(np.arange(len(rows), dtype=np.int32), sizes)
        lengths = np.array([r[3] for r in rows], dtype=np.float32)
        average = float(lengths.mean()) if len(rows) else 1.0
        order = np.argsort(all_terms, kind="stable")  # stable: chunks stay ascending per term
        vocabulary = int(all_terms.max()) + 1 if len(all_terms) else 0
        indptr = np.zeros(vocabulary + 1, dtype=np.int64)
        np.cumsum(np.bincount(all_terms, minlength=vocabulary), out=indptr[1:])
        return cls(
            chunk_ids=[r[0] for r in rows],
            lengths=lengths,
            norms=K1 * (1 - B + B * lengths / (average or 1.0)),
            indptr=indptr,
            post_chunks=chunk_of[order],
            post_tfs=all_tfs[order].astype(np.float32),
        )

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def scores(self, term_ids: list[int], lo: int = 0, hi: int | None = None) -> np.ndarray:
        """BM25 scores of chunks lo..hi-1 (the whole index by default) for the query's term ids."""
        hi = len(self) if hi is None else hi
        out = np.zeros(hi - lo, dtype=np.float32)
        n = len(self)
        if n == 0:
            return out
        for term, weight in Counter(term_ids).items():
            if term + 1 >= len(self.indptr):
                continue
            a, b = int(self.indptr[term]), int(self.indptr[term + 1])
            df = b - a
            if df == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            chunks, tfs = self.post_chunks[a:b], self.post_tfs[a:b]
            if lo > 0 or hi < n:
                x, y = np.searchsorted(chunks, [lo, hi])
                chunks, tfs = chunks[x:y], tfs[x:y]
            out[chunks - lo if lo else chunks] += weight * idf * tfs * (K1 + 1) / (tfs + self.norms[chunks])
        return out


def top_positions(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n highest scores, best first, ties in position order: exactly
    `np.argsort(-scores, kind="stable")[:n]`, without sorting every chunk's score."""
    if n >= len(scores):
        return np.argsort(-scores, kind="stable")[:n]
    nth_best = np.partition(scores, len(scores) - n)[len(scores) - n]
    candidates = np.flatnonzero(scores >= nth_best)  # ascending positions: the stable sort keeps them in order
    return candidates[np.argsort(-scores[candidates], kind="stable")[:n]]
