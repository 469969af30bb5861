"""Which sentences of the passages support an answer to a question, and how strongly.

A sentence's support is an absolute score in about 0..1.2, comparable across questions:
    support = DENSE_WEIGHT * cosine(question, sentence)          (all-MiniLM-L6-v2)
            + COVERAGE_WEIGHT * share of the question's rare terms the sentence holds
            + TYPE_BONUS if the sentence holds what the question asks for (a date for "when")
Term rarity is the inverse document frequency over windows of the documents involved, so
"agreement" counts little in a contract and a word absent from the documents counts fully
against every sentence: that is what lets a low best support mean "not in the documents".
"""

import math
import re
from dataclasses import dataclass

import numpy as np

from app.context import Source
from ingest.keyword import keyword_tokens
from ingest.sentences import boundaries

DENSE_WEIGHT = 0.55
COVERAGE_WEIGHT = 0.45
TYPE_BONUS = 0.08
# Sentences longer than this are quoted as a window around their best-matching words.
MAX_QUOTE = 420
# Windows over which term rarity is counted: about a clause.
_WINDOW = 1500
# Empty windows added to every count, so that in a one-page document a word it uses still
# counts as rarer than nothing: without them every present word would weigh next to zero.
_PSEUDO_WINDOWS = 10

_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
DATE = re.compile(
    rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:day\s+of\s+)?{_MONTH},?\s+\d{{4}}\b"
    r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b",
    re.IGNORECASE,
)
_NUMBER_WORD = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|forty-five|sixty|ninety|hundred)"
DURATION = re.compile(rf"\b{_NUMBER_WORD}\)?\s*(?:\(\d+\)\s*)?(?:calendar\s+|business\s+|working\s+)?(?:days?|weeks?|months?|years?)\b", re.IGNORECASE)
MONEY = re.compile(r"[$€£]\s?\d|\b(?:USD|EUR|GBP|dollars)\b|\b\d+(?:\.\d+)?\s?%|\bpercent\b", re.IGNORECASE)
LAW = re.compile(r"\blaws?\s+of\b|\bgoverned\s+by\b", re.IGNORECASE)
PARTY = re.compile(r"\b(?:between|by and among)\b.*\b(?:Inc|LLC|Ltd|Limited|Corporation|Corp|Company|GmbH|N\.A|L\.P|LP|plc)\b", re.IGNORECASE | re.DOTALL)

# What a question asks for, by its wording -> what a sentence answering it contains.
_EXPECTS = (
    # "when" asks for a date only about a moment ("when does it expire?"), not a condition
    # ("when can it be terminated?").
    (re.compile(r"\bwhat date\b|\bwhich date\b|\bdate\b|\bdated\b|\bby when\b|\bwhen\b.*\b(?:effective|expire|expiry|"
                r"start|begin|end|commence|signed|executed|due|deadline|complete|completed)\b", re.I), DATE),
    (re.compile(r"\bhow long\b|\bperiod\b|\bhow many (?:days|months|years)\b|\bnotice\b|\bterm\b|\bwithin\b", re.I), DURATION),
    (re.compile(r"\bhow much\b|\bamount\b|\bfees?\b|\bprice\b|\bcost\b|\bcap\b|\bpercent", re.I), MONEY),
    (re.compile(r"\blaw\b|\bgovern", re.I), LAW),
    (re.compile(r"\bparties\b|\bwho\b.*\bparty\b|\bbetween whom\b", re.I), PARTY),
)

_YES_NO = re.compile(r"^(?:is|are|does|do|did|can|could|may|must|shall|should|will|would|has|have|was|were)\b", re.I)
_TOC_LINE = re.compile(r"\.{4,}|…{2,}|(?:\s\d{1,3}\s*){4,}$")


_SUFFIX = re.compile(r"(?:ations?|ments?|ities|ity|ing|ies|ed|al|able|ible|ive|ors?|ers?|es|s|e|y)$")


def stems(text: str) -> set[str]:
    """Keyword terms folded further for matching a question's wording to a clause's:
    "governing"/"governed", "termination"/"terminate", "renewal"/"renewed" share a stem."""
    found = set()
    for term in keyword_tokens(text):
        if term[0].isdigit() or len(term) <= 4:
            found.add(term)
        else:
            found.add(_SUFFIX.sub("", term)[:6] or term)
    return found


def is_yes_no(question: str) -> bool:
    return bool(_YES_NO.match(question.strip()))


def expected(question: str) -> list[re.Pattern]:
    return [answer for asks, answer in _EXPECTS if asks.search(question)]


@dataclass(frozen=True)
class Sentence:
    source: int  # index into the sources list
    doc_id: str
    start: int  # offsets into the document's text
    end: int
    text: str
    support: float = 0.0
    dense: float = 0.0
    coverage: float = 0.0


def sentences(sources: list[Source]) -> list[Sentence]:
    """Each quotable sentence of the passages once (overlapping chunks share sentences)."""
    seen: set[tuple[str, int]] = set()
    found = []
    for index, source in enumerate(sources):
        cuts = [0, *boundaries(source.text), len(source.text)]
        for lo, hi in zip(cuts, cuts[1:]):
            lo = _after_headings(source.text, lo, hi)
            piece = source.text[lo:hi]
            lo += len(piece) - len(piece.lstrip())
            hi -= len(piece) - len(piece.rstrip())
            text = source.text[lo:hi]
            key = (source.doc_id, source.start + lo)
            if key in seen or not _quotable(text):
                continue
            seen.add(key)
            found.append(Sentence(index, source.doc_id, source.start + lo, source.start + hi, text))
    return found


def _after_headings(text: str, lo: int, hi: int) -> int:
    """Where a sentence starts once heading lines glued before it ("1 ABOUT THIS MANUAL\n")
    are skipped: short lines that end without punctuation."""
    while True:
        newline = text.find("\n", lo, hi)
        line = text[lo:newline].strip()
        if newline == -1 or not line or len(line.split()) > 10 or line[-1] in ".:;,)" or not text[newline:hi].strip():
            return lo
        lo = newline + 1


def _quotable(text: str) -> bool:
    words = re.findall(r"[A-Za-z]{2,}", text)
    return len(words) >= 4 and not _TOC_LINE.search(text) and not _heading(words)


def _heading(words: list[str]) -> bool:
    """A heading such as "14 Governing Law and Jurisdiction.": short, every main word capitalised."""
    main = [w for w in words if w.lower() not in ("and", "or", "of", "the", "to", "for", "in", "on", "a", "an")]
    return len(words) <= 10 and all(w[0].isupper() for w in main)


class TermWeights:
    """Inverse document frequency of terms over clause-sized windows of given documents."""

    def __init__(self):
        self._windows: dict[str, list[set[str]]] = {}

    def add(self, doc_id: str, text: str) -> None:
        if doc_id not in self._windows:
            self._windows[doc_id] = [stems(text[i:i + _WINDOW]) for i in range(0, len(text), _WINDOW)]

    def idf(self, terms: set[str], doc_ids: list[str]) -> dict[str, float]:
        windows = [w for d in dict.fromkeys(doc_ids) for w in self._windows[d]]
        n = len(windows) + _PSEUDO_WINDOWS
        return {t: math.log((n + 1) / (sum(t in w for w in windows) + 0.5)) for t in terms}


def score(question: str, candidates: list[Sentence], question_vector: np.ndarray,
          vectors: np.ndarray, idf: dict[str, float]) -> list[Sentence]:
    """The candidates with their support filled in, best first."""
    terms = stems(question)
    total = sum(max(idf.get(t, 0.0), 0.0) for t in terms) or 1.0
    wanted = expected(question)
    scored = []
    for sentence, vector in zip(candidates, vectors):
        dense = float(vector @ question_vector)
        held = terms & stems(sentence.text)
        coverage = sum(max(idf.get(t, 0.0), 0.0) for t in held) / total
        bonus = TYPE_BONUS if any(p.search(sentence.text) for p in wanted) else 0.0
        support = DENSE_WEIGHT * dense + COVERAGE_WEIGHT * coverage + bonus
        scored.append(Sentence(sentence.source, sentence.doc_id, sentence.start, sentence.end, sentence.text,
                               support, dense, coverage))
    return sorted(scored, key=lambda s: -s.support)


def focus(sentence: Sentence, question: str) -> tuple[int, int]:
    """Offsets of the part of a long sentence worth quoting: a window of about MAX_QUOTE
    characters around the question's terms, cut at word boundaries."""
    if sentence.end - sentence.start <= MAX_QUOTE:
        return sentence.start, sentence.end
    terms = stems(question)
    text = sentence.text
    marks = [m.start() for m in re.finditer(r"\w+", text) if stems(m.group()) & terms]
    centre = int(np.median(marks)) if marks else MAX_QUOTE // 2
    lo = max(0, min(centre - MAX_QUOTE // 2, len(text) - MAX_QUOTE))
    hi = min(len(text), lo + MAX_QUOTE)
    if lo > 0:
        lo = text.find(" ", lo) + 1 or lo
    if hi < len(text):
        hi = text.rfind(" ", lo, hi) if text.rfind(" ", lo, hi) > lo else hi
    return sentence.start + lo, sentence.start + hi
