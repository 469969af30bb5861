"""The embedded default, used when no model is configured: the answer is the best-supported
sentences of the passages, quoted verbatim with their citations, or "the documents do not
cover this" when no sentence is supported well enough.

A yes/no question gets a verdict read off the quoted clauses, shown as such: asked whether a
clause exists ("Is there a non-compete?"), a well-supported clause means yes; asked whether
something holds ("May the Recipient reverse engineer a prototype?", "Is it governed by Illinois
law?"), a negated clause ("shall not ... reverse engineer") or one lacking the question's name
or number ("the laws of the State of New York") means no. The quote is what the reader judges.
"""

import re
from dataclasses import replace

import numpy as np

from app.answer import Draft
from app.citations import Citer
from app.context import Source
from app.facts import PARTIES_QUESTION, TITLE_QUESTION, preamble_span, title_span
from app.evidence import MAX_QUOTE, Sentence, TermWeights, focus, is_yes_no, score, sentences, stems
from app.prompts import NOT_COVERED
from app.sentence_vectors import SentenceVectors
from ingest.embed import Embedder

# The best sentence must reach this support for the documents to count as answering the
# question: SUPPORT_BASE less SUPPORT_PER_TERM per term of the question, since a long question
# spreads its coverage over more terms and blurs its embedding (no lower than SUPPORT_FLOOR).
# Fitted on 20 CUAD development contracts (779 questions; none of the 65 the benchmark reports),
# maximising the mean of answerable and unanswerable accuracy.
SUPPORT_BASE = 0.48
SUPPORT_PER_TERM = 0.008
SUPPORT_FLOOR = 0.30
# Further sentences are quoted when their support is within this margin of the best one.
MARGIN = 0.06
MAX_SENTENCES = 3
# The quoted answer stays within this many characters (the benchmark caps answers at 1,000).
MAX_ANSWER = 900

# Where `prepare` keeps a document's sentence embeddings, inside the store folder (like the saved
# model states of whole-document reading, they are derived data keyed by content hash).
SENTENCE_VECTORS = "sentence-vectors"
# A question about the title or the parties is answered for the documents of this many top passages.
_FACT_DOCUMENTS = 3


def support_threshold(question: str) -> float:
    """The support the best sentence needs for `question` to count as answered."""
    return max(SUPPORT_FLOOR, SUPPORT_BASE - SUPPORT_PER_TERM * len(stems(question)))


class Extractor:
    def __init__(self, citer: Citer, embedder: Embedder, terms: TermWeights):
        self.citer, self.embedder, self.terms = citer, embedder, terms
        self.sentence_vectors = SentenceVectors(embedder, citer.store.path / SENTENCE_VECTORS)

    def ranked(self, question: str, sources: list[Source]) -> list[Sentence]:
        """Every quotable sentence of the sources, best supported first."""
        candidates = sentences(sources)
        if not candidates:
            return []
        doc_ids = [s.doc_id for s in sources]
        for doc_id in dict.fromkeys(doc_ids):
            self.terms.add(doc_id, self.citer.text(doc_id))
        idf = self.terms.idf(stems(question), doc_ids)
        # One short text: encode_query runs it on one thread, which stays fast on a busy machine.
        question_vector = self.embedder.encode_query(question)
        return score(question, candidates, question_vector, self.vectors(candidates), idf)

    def vectors(self, candidates: list[Sentence]) -> np.ndarray:
        """Sentence embeddings, cached: follow-ups and summaries revisit the same clauses."""
        return self.sentence_vectors.get(candidates)

    def prepare(self, doc_id: str, pause=lambda: None) -> int:
        """Do ahead of time what a question about `doc_id` needs once: its term weights and the
        embeddings of all its sentences. Returns the sentences embedded."""
        text = self.citer.text(doc_id)
        self.terms.add(doc_id, text)
        return self.sentence_vectors.prepare(doc_id, text, pause)

    def answer(self, question: str, sources: list[Source], margin: float = MARGIN,
               phrasings: tuple[str, ...] = ()) -> Draft:
        """The best-supported sentences for `question`; with `phrasings` (other wordings of
        it, e.g. in a contract's own terms) a sentence counts by its best margin over the
        threshold of any wording."""
        fact = self._fact_answer(question, sources)
        if fact is not None:
            return fact
        threshold = support_threshold(question)
        ranked = self._merged(question, sources, phrasings) if phrasings else self.ranked(question, sources)
        if not ranked or ranked[0].support < threshold:
            return Draft(NOT_COVERED, (), covered=False, verdict="no" if is_yes_no(question) else "")
        chosen = _choose(ranked, margin, threshold)
        return self._draft(question, sources, chosen)

    def _merged(self, question: str, sources: list[Source], phrasings: tuple[str, ...]) -> list[Sentence]:
        best: dict[tuple[str, int], Sentence] = {}
        for wording in (question, *phrasings):
            shift = support_threshold(question) - support_threshold(wording)
            for sentence in self.ranked(wording, sources):
                moved = replace(sentence, support=sentence.support + shift)
                key = (sentence.doc_id, sentence.start)
                if key not in best or moved.support > best[key].support:
                    best[key] = moved
        return sorted(best.values(), key=lambda s: -s.support)

    def _draft(self, question: str, sources: list[Source], chosen: list[Sentence]) -> Draft:
        # Quotes are shown grouped by document, in reading order within each document.
        order = list(dict.fromkeys(sources[s.source].doc_id for s in chosen))
        chosen = sorted(chosen, key=lambda s: (order.index(sources[s.source].doc_id), s.start))
        citations, lines = [], []
        for number, sentence in enumerate(chosen, start=1):
            source = sources[sentence.source]
            start, end = focus(sentence, question)
            citation = self.citer.cite(number, source.doc_id, start, end, source.section)
            citations.append(citation)
            shown = _shown(citation.quote)
            cut_before = "… " if start > sentence.start else ""
            cut_after = " …" if end < sentence.end else ""
            lines.append(f"“{cut_before}{shown}{cut_after}” [{number}]")
        verdict = _verdict(question, [c.quote for c in citations]) if is_yes_no(question) else ""
        text = "\n".join(lines)
        if verdict:
            text = f"{verdict.capitalize()} — judging from the quoted clause{'s' if len(lines) > 1 else ''}:\n{text}"
        return Draft(text, tuple(citations), covered=True, verdict=verdict)

    def _fact_answer(self, question: str, sources: list[Source]) -> Draft | None:
        """The title or the parties, quoted from where contracts state them, for the documents
        the top passages come from."""
        find = title_span if TITLE_QUESTION.search(question) else preamble_span if PARTIES_QUESTION.search(question) else None
        if find is None or not sources:
            return None
        docs = list(dict.fromkeys(s.doc_id for s in sources[:_FACT_DOCUMENTS]))
        spans = [(doc_id, find(self.citer, doc_id)) for doc_id in docs]
        citations = tuple(
            self.citer.cite(number, doc_id, *span)
            for number, (doc_id, span) in enumerate(((d, s) for d, s in spans if s), start=1)
        )
        if not citations:
            return None
        lines = [f"“{_shown(c.quote)}” [{c.number}]" for c in citations]
        return Draft("\n".join(lines), citations, covered=True)


_EXISTENCE = re.compile(
    r"^(?:is|are) there\b|^(?:does|do|did) (?:the|this|either|any)\b[^?]*?\b(?:contain|include|provide|have|grant|"
    r"require|impose|restrict|limit|prohibit|allow|permit|specify|set)\b|\b(?:restrict|prohibit|limit|cap|exclusiv|"
    r"uncapped|non-|not to|waive)", re.I,
)
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|none|without)\b|n['’]t\b|\bin no event\b", re.I)
_NAME_OR_NUMBER = re.compile(r"(?<!^)(?<![.?!]\s)\b(?:[A-Z][a-z]+|\d[\d,.]*)\b")


def _verdict(question: str, quotes: list[str]) -> str:
    """"yes" or "no" for a yes/no question, judged from the quoted clauses (see the module doc)."""
    if _EXISTENCE.search(question):
        return "yes"
    quoted = " ".join(quotes)
    names = {m.group(0) for m in _NAME_OR_NUMBER.finditer(question.rstrip("?"))}
    missing = [n for n in names if not re.search(rf"\b{re.escape(n)}\b", quoted, re.I)]
    asked_negated = bool(_NEGATION.search(question))
    negated = bool(_NEGATION.search(quoted))
    return "no" if missing or negated != asked_negated else "yes"


def _shown(quote: str) -> str:
    return " ".join(quote.split())


def _choose(ranked: list[Sentence], margin: float, threshold: float) -> list[Sentence]:
    best = ranked[0]
    chosen, length = [best], len(best.text)
    for sentence in ranked[1:]:
        if len(chosen) == MAX_SENTENCES or sentence.support < max(best.support - margin, threshold):
            break
        if length + min(len(sentence.text), MAX_QUOTE) > MAX_ANSWER or any(_overlaps(sentence, c) for c in chosen):
            continue
        chosen.append(sentence)
        length += min(len(sentence.text), MAX_QUOTE)
    return chosen


def _overlaps(a: Sentence, b: Sentence) -> bool:
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end or a.text == b.text
