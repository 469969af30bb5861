"""Answers written by a chat model from retrieved passages, with their citations verified.

The passages go to the model in the Granite documents format, numbered "1".."n"; the model
marks claims with [n]. Afterwards:
- a marker naming no passage is removed, with a warning;
- a quoted span ("..." or “...”) is looked up in the stored text, first in the documents of the
  passages cited next to it; found, it becomes that citation's quote (its pages come from its
  offsets); not found, it is removed from the answer and reported, never cited;
- a passage cited without a quote is cited by its sentence closest to the claim;
- citations are renumbered in order of appearance, grouped by document.

Whole-document answers (`verify_quoted`) have no passages to number: each verified quote is
cited where it stands, its pages found from where it occurs in the document.
"""

import re
from collections.abc import Iterator

from app.answer import Citation, Draft
from app.citations import Citer
from app.context import Source
from app.evidence import is_yes_no, sentences
from app.prompts import NOT_COVERED, answer_system_prompt
from ingest.keyword import keyword_tokens

REMOVED_QUOTE = "[unverified quote removed]"
_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# A quotation worth verifying: three words or more inside straight or curly double quotes.
_QUOTE = re.compile(r"[\"“]([^\"“”]*?\w+\W+\w+\W+\w+[^\"“”]*?)[\"”]")
_NOT_COVERED = re.compile(r"documents? do(?:es)? not cover|cannot be answered based on the available", re.I)
# Turns of the conversation passed to the model with the question.
HISTORY_TURNS = 6


def documents(sources: list[Source]) -> list[dict]:
    """The passages as Granite template documents, numbered as the model must cite them."""
    docs = []
    for number, source in enumerate(sources, start=1):
        where = f"{source.section}" if source.section else ""
        if source.kind == "definition":
            where = f"definition of “{source.label}”" + (f" in {source.section}" if source.section else "")
        elif source.kind == "section":
            where = f"{source.label} (cross-referenced)"
        docs.append({"doc_id": str(number), "title": f"{source.title} | {where}" if where else source.title,
                     "text": source.text})
    return docs


def messages(question: str, history: list[tuple[str, str]], sources: list[Source]) -> list:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    turns = [SystemMessage(answer_system_prompt(documents(sources)))]
    for role, text in history[-HISTORY_TURNS:]:
        turns.append(HumanMessage(text) if role == "user" else AIMessage(_MARKER.sub("", text).strip()))
    turns.append(HumanMessage(question))
    return turns


def stream(llm, question: str, history: list[tuple[str, str]], sources: list[Source]) -> Iterator[str]:
    """The model's answer, piece by piece."""
    for chunk in llm.stream(messages(question, history, sources)):
        content = chunk.content
        text = content if isinstance(content, str) else "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
        if text:
            yield text


def verify(text: str, question: str, sources: list[Source], citer: Citer) -> Draft:
    """The model's answer with its citations checked against the stored text."""
    text = text.strip()
    if not text or _NOT_COVERED.search(text) and not _MARKER.search(text):
        return Draft(NOT_COVERED, (), covered=False, verdict="no" if is_yes_no(question) else "")
    warnings: list[str] = []
    text = _drop_bad_markers(text, len(sources), warnings)
    text, quotes = _check_quotes(text, sources, citer, warnings)
    order = _cited_order(text, sources)
    numbers = {old: new for new, old in enumerate(order, start=1)}
    citations = tuple(
        _citation(numbers[old], sources[old - 1], quotes.get(old), text, old, citer) for old in order
    )
    text = _MARKER.sub(lambda m: "".join(f"[{numbers[int(n)]}]" for n in re.split(r"\s*[,;]\s*", m.group(1))), text)
    if not citations:
        warnings.append("the answer cites no passage")
    return Draft(text, citations, covered=True, verdict=_verdict(question, text), warnings=tuple(warnings))


def verify_quoted(text: str, question: str, doc_id: str, citer: Citer) -> Draft:
    """A model's answer written from a whole document: each quote it gives is located in the
    document and cited [n] by its offsets (the same span keeps its number); a quote the document
    does not contain is removed and reported. Markers the model wrote itself name no passage and
    are dropped."""
    text = re.sub(r"\s*" + _MARKER.pattern, "", text).strip()
    if not text or _NOT_COVERED.search(text) and not _QUOTE.search(text):
        return Draft(NOT_COVERED, (), covered=False, verdict="no" if is_yes_no(question) else "")
    warnings: list[str] = []
    spans: list[tuple[int, int]] = []
    pieces, last = [], 0
    for match in _QUOTE.finditer(text):
        found = citer.locate(match.group(1), [doc_id])
        pieces.append(text[last:match.start()])
        if found is None:
            warnings.append(f"quote not found in the document, removed: “{match.group(1)}”")
            pieces.append(REMOVED_QUOTE)
        else:
            if (found.start, found.end) not in spans:
                spans.append((found.start, found.end))
            pieces.append(f"{match.group(0)} [{spans.index((found.start, found.end)) + 1}]")
        last = match.end()
    pieces.append(text[last:])
    if not spans:
        warnings.append("the answer quotes nothing that was found in the document")
    citations = tuple(citer.cite(n, doc_id, start, end) for n, (start, end) in enumerate(spans, start=1))
    text = "".join(pieces)
    return Draft(text, citations, covered=True, verdict=_verdict(question, text), warnings=tuple(warnings))


def _verdict(question: str, text: str) -> str:
    if not is_yes_no(question):
        return ""
    return "yes" if re.match(r"\W*yes\b", text, re.I) else "no" if re.match(r"\W*no\b", text, re.I) else ""


def _drop_bad_markers(text: str, count: int, warnings: list[str]) -> str:
    def keep(match: re.Match) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        good = [n for n in numbers if 1 <= n <= count]
        for bad in sorted(set(numbers) - set(good)):
            warnings.append(f"citation [{bad}] names no retrieved passage; removed")
        return f"[{', '.join(map(str, good))}]" if good else ""

    return _MARKER.sub(keep, text)


def _check_quotes(text: str, sources: list[Source], citer: Citer, warnings: list[str]):
    """Remove quotes that the documents do not contain; map each cited passage number to the
    first verified quote attributed to it: (text, {number: (doc_id, start, end)})."""
    attributed: dict[int, tuple[str, int, int]] = {}
    pieces, last = [], 0
    for match in _QUOTE.finditer(text):
        cited = _markers_after(text, match.end())
        docs = [sources[n - 1].doc_id for n in cited] + [s.doc_id for s in sources]
        found = citer.locate(match.group(1), docs)
        pieces.append(text[last:match.start()])
        if found is None:
            warnings.append(f"quote not found in the documents, removed: “{match.group(1)}”")
            pieces.append(REMOVED_QUOTE)
        else:
            pieces.append(match.group(0))
            for n in cited:
                if sources[n - 1].doc_id == found.doc_id:
                    attributed.setdefault(n, (found.doc_id, found.start, found.end))
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces), attributed


def _markers_after(text: str, offset: int) -> list[int]:
    """Passage numbers cited between `offset` and the end of its sentence."""
    end = re.search(r"(?<=[.!?])\s|\n|$", text[offset:])
    span = text[offset:offset + (end.start() if end else len(text))]
    return [int(n) for m in _MARKER.finditer(span) for n in re.split(r"\s*[,;]\s*", m.group(1))]


def _cited_order(text: str, sources: list[Source]) -> list[int]:
    """Cited passage numbers by first appearance, then grouped by document."""
    seen = list(dict.fromkeys(int(n) for m in _MARKER.finditer(text) for n in re.split(r"\s*[,;]\s*", m.group(1))))
    docs = list(dict.fromkeys(sources[n - 1].doc_id for n in seen))
    return sorted(seen, key=lambda n: (docs.index(sources[n - 1].doc_id), seen.index(n)))


def _citation(number: int, source: Source, quote, text: str, old: int, citer: Citer) -> Citation:
    if quote is not None:
        doc_id, start, end = quote
        return citer.cite(number, doc_id, start, end)
    claim = _claim(text, old)
    candidates = sentences([source]) or []
    terms = set(keyword_tokens(claim))
    best = max(candidates, key=lambda s: len(terms & set(keyword_tokens(s.text))), default=None)
    start, end = (best.start, best.end) if best else (source.start, source.end)
    return citer.cite(number, source.doc_id, start, end, source.section)


def _claim(text: str, number: int) -> str:
    """The sentence of the answer in which passage `number` is first cited."""
    for match in _MARKER.finditer(text):
        if number in [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]:
            begin = max(text.rfind(". ", 0, match.start()), text.rfind("\n", 0, match.start())) + 1
            return text[begin:match.start()]
    return ""
