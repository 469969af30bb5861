"""Summaries of one stored document, every statement with its page citation.

    from app.summarize import summarize, stream_summary
    summary = summarize(store, "msa.pdf", llm=None, mode="auto", kind="auto")
    summary.fields      # SummaryField(name, text, citations, found) in reading order
    print(summary.text)  # the whole summary, markers [n] numbered across it
    for part in stream_summary(store, "msa.pdf"): ...   # str pieces, then the Summary

A contract gets its key terms (parties, effective date and term, renewal, payment, termination
rights, liability caps and indemnities, confidentiality, governing law and disputes, unusual
obligations), each filled by retrieval within the document; a manual gets its purpose, its
structure by section, key procedures and safety warnings. Both end with an overview: without
a model, a coverage-aware extractive summary (the most central sentence of every major
section, by sentence embeddings, then the most central of the rest); with a LangChain chat
model, the fields are written by the model from the same passages.

With the built-in Granite runtime (app/model_summary.py) the model reads the whole document in
one pass, through the document cache, and writes each field from it ("one pass"); a document
beyond the context budget is read in budget-sized parts whose answers are then combined
("hierarchical"). "auto" does so when the read is estimated within the time limit (or already
cached), like whole-document answers; `Summary.method` and the notes say which was used.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from app.answer import Citation, Draft
from app.context import Source, retrieved
from app.errors import AppError
from app.evidence import sentences
from app.prompts import CONTRACT_FIELDS, MANUAL_FIELDS, NOT_FOUND, NOTABLE_CLAUSES
from app.extractive import support_threshold
from app.qa import Assistant
from app.whole import Reading
from ingest import IngestError, Store

MODES = ("auto", "retrieval", "whole")
KINDS = ("auto", "contract", "manual")
METHODS = ("extractive", "retrieval", "one pass", "hierarchical")
# Chunks retrieved per query of a field (each field asks its question plus a few phrasings).
FIELD_K = 4
# A field quotes every sentence within this margin of its best one (up to three): a summary
# should show both termination rights, not only the better-matching one.
FIELD_MARGIN = 0.25
# A notable clause is listed only with this much more support than a question of its length
# needs: a wrong entry in a summary costs more than a missing one.
NOTABLE_EXTRA = 0.08
# Overview: at most this many sentences, and at most this many sentences per section are
# considered (evenly spaced) so a 150-page contract stays within a minute of embedding.
OVERVIEW_SENTENCES = 12
_PER_SECTION = 40
_MAJOR_SECTIONS = 16
_WARNING = re.compile(r"^\s*(?:WARNING|CAUTION|DANGER)\b[:!\s]", re.M)
_PROCEDURE = re.compile(
    r"install|mount|wiring|connect|start-?up|commission|operat|setting|adjust|maintenan|inspect|clean|"
    r"replac|troubleshoot|calibrat|storage|disposal|procedure", re.I)
_SKIPPED_SECTIONS = re.compile(r"table of contents|contents|execution version|index", re.I)


@dataclass(frozen=True)
class SummaryField:
    name: str
    text: str  # markers [n] number citations across the whole summary
    citations: tuple[Citation, ...]
    found: bool


@dataclass(frozen=True)
class Summary:
    doc_id: str
    title: str
    kind: str  # "contract" or "manual"
    mode: str  # "extractive", "retrieval" or "whole"
    fields: tuple[SummaryField, ...]
    notes: tuple[str, ...] = ()
    method: str = "retrieval"  # one of METHODS: how the fields were found

    @property
    def citations(self) -> tuple[Citation, ...]:
        return tuple(c for f in self.fields for c in f.citations)

    @property
    def text(self) -> str:
        return "".join(render(field) for field in self.fields)


def render(field: SummaryField) -> str:
    return f"## {field.name}\n{field.text}\n\n"


def summarize(store: Store, doc: str, *, llm=None, mode: str = "auto", kind: str = "auto",
              assistant: Assistant | None = None) -> Summary:
    summary = None
    for part in stream_summary(store, doc, llm=llm, mode=mode, kind=kind, assistant=assistant):
        summary = part
    return summary


def stream_summary(store: Store, doc: str, *, llm=None, mode: str = "auto", kind: str = "auto",
                   assistant: Assistant | None = None) -> Iterator[str | Summary]:
    """Yields the summary's text field by field, then the `Summary`."""
    if mode not in MODES or kind not in KINDS:
        raise AppError(f"mode {mode!r} / kind {kind!r}: expected mode in {MODES} and kind in {KINDS}")
    assistant = assistant or Assistant(store, llm)
    try:
        doc_id = store.resolve(doc)
    except IngestError as error:
        raise AppError(str(error)) from None
    kind = kind if kind != "auto" else detect_kind(assistant.citer.text(doc_id))
    used, method, notes, drafts = _method(assistant, doc_id, kind, mode)
    fields = []
    numbered = 0
    for item in drafts:
        if isinstance(item, Reading):
            yield item
            continue
        field = _numbered(*item, numbered)
        numbered += len(field.citations)
        fields.append(field)
        yield render(field)
    yield Summary(doc_id, assistant.citer.title(doc_id), kind, used, tuple(fields), tuple(notes), method)


def detect_kind(text: str) -> str:
    """"manual" when instructions and warnings outweigh obligations, else "contract"."""
    contract = len(re.findall(r"\bshall\b|\bParty\b|\bParties\b|\bhereby\b|\bAgreement\b|\bindemnif", text))
    manual = len(re.findall(r"\bWARNING\b|\bCAUTION\b|\binstall|\bpress\b|\bFigure\b|\btroubleshoot|\bspecification",
                            text, re.I))
    return "manual" if manual > contract else "contract"


def _method(assistant: Assistant, doc_id: str, kind: str, requested: str):
    """(mode, method, notes, the fields' drafts to come): whole-document reading when the
    assistant's route allows it, in parts when only the context budget stands in the way."""
    from app import model_summary

    if assistant.llm is None:
        if requested == "whole":
            raise AppError("whole-document summaries need a model: pass --model DIR or set TOME_MODEL")
        return "extractive", "extractive", [], _fields(assistant, doc_id, kind)
    route = assistant.route(requested, doc_id)
    plan, reader = route.plan, assistant.reader
    if route.mode == "whole":
        note = f"one pass: the model read the whole document ({plan.tokens:,} tokens) and wrote each field from it"
        return "whole", "one pass", [note], model_summary.one_pass(reader, doc_id, kind, plan)
    if plan is None:
        return "retrieval", "retrieval", list(route.notes), _fields(assistant, doc_id, kind)
    reason = plan.reason
    if plan.over_budget:
        parts = model_summary.split(reader, doc_id)
        seconds = model_summary.read_seconds(reader, parts)
        if requested == "whole" or seconds <= reader.settings.max_read_s:
            note = (f"hierarchical: {reason}, so it was read in {len(parts)} parts, each part was asked every "
                    "field, and the parts' answers were combined per field")
            return "whole", "hierarchical", [note], model_summary.hierarchical(reader, doc_id, kind, parts)
        reason += f", and reading it in {len(parts)} parts would take about {seconds:,.0f} s"
    note = f"{reason}; summarised field by field from retrieved passages"
    return "retrieval", "retrieval", [note], _fields(assistant, doc_id, kind)


def _fields(assistant: Assistant, doc_id: str, kind: str) -> Iterator[tuple[str, Draft]]:
    """The fields from retrieved passages: extractive, or written by a LangChain chat model."""
    if kind == "contract":
        for name, question, queries in CONTRACT_FIELDS:
            yield name, _field(assistant, doc_id, question, queries)
        yield "Unusual obligations", _notable(assistant, doc_id)
    else:
        for name, question, queries in MANUAL_FIELDS:
            if name == "Safety warnings":
                yield name, _warnings(assistant, doc_id)
            elif name == "Key procedures":
                yield name, _procedures(assistant, doc_id)
            else:
                yield name, _field(assistant, doc_id, question, queries, opening=True)
        yield "Structure", _structure(assistant, doc_id)
    yield "Overview", overview(assistant, doc_id)


def _field(assistant: Assistant, doc_id: str, question: str, queries: tuple[str, ...],
           opening: bool = False) -> Draft:
    """One field, answered like a question from the passages its question and phrasings find
    (and the document's opening section, where a manual states its purpose)."""
    sources = _search(assistant, doc_id, (question, *queries))
    if opening:
        sources = _opening(assistant, doc_id) + sources
    if assistant.llm is None:
        draft = assistant.extractor.answer(question, sources, margin=FIELD_MARGIN, phrasings=queries)
    else:
        composing = assistant.compose(question, sources)
        try:
            while True:
                next(composing)
        except StopIteration as done:
            draft = done.value
    return draft if draft.covered else Draft(NOT_FOUND, (), covered=False)


def _opening(assistant: Assistant, doc_id: str) -> list[Source]:
    majors = _major_sections(assistant, doc_id)
    if not majors:
        return []
    first = majors[0]
    end = min(first.end, first.start + 2000)
    return [Source(doc_id, "", first.start, end, assistant.citer.text(doc_id)[first.start:end], first.path, "section")]


def _search(assistant: Assistant, doc_id: str, queries) -> list[Source]:
    seen, found = set(), []
    for query in queries:
        for source in retrieved(assistant.store.search(query, k=FIELD_K, doc_id=doc_id), assistant.citer):
            if source.start not in seen:
                seen.add(source.start)
                found.append(source)
    return found + assistant.expander.expand(queries[0], found, limit=2)


def _notable(assistant: Assistant, doc_id: str) -> Draft:
    """The notable obligations (non-compete, exclusivity, ...) the contract clearly contains."""
    lines, spans = [], []
    for name, query in NOTABLE_CLAUSES:
        sources = retrieved(assistant.store.search(query, k=3, doc_id=doc_id), assistant.citer)
        ranked = assistant.extractor.ranked(query, sources)
        if ranked and ranked[0].support >= support_threshold(query) + NOTABLE_EXTRA:
            best = ranked[0]
            spans.append((best.start, best.end))
            lines.append(f"{name}: “{_shown(best.text)}” [{len(spans)}]")
    return _draft(assistant, doc_id, lines, spans)


def _warnings(assistant: Assistant, doc_id: str, limit: int = 8) -> Draft:
    text = assistant.citer.text(doc_id)
    lines, spans, seen = [], [], set()
    for match in _WARNING.finditer(text):
        end = _sentence_end(text, match.start())
        shown = _shown(text[match.start():end])
        if shown.lower() in seen:
            continue
        seen.add(shown.lower())
        spans.append((match.start() + len(match.group(0)) - len(match.group(0).lstrip()), end))
        lines.append(f"“{shown}” [{len(spans)}]")
        if len(spans) == limit:
            break
    return _draft(assistant, doc_id, lines, spans)


def _procedures(assistant: Assistant, doc_id: str, limit: int = 8) -> Draft:
    """The first instruction of each section whose title names a procedure."""
    text = assistant.citer.text(doc_id)
    lines, spans = [], []
    for section in assistant.store.outline(doc_id):
        if not _PROCEDURE.search(section.title) or len(spans) == limit:
            continue
        body = Source(doc_id, "", section.start, section.end, text[section.start:section.end], section.path, "section")
        first = next(iter(sentences([body])), None)
        if first is not None:
            spans.append((first.start, min(first.end, first.start + 400)))
            lines.append(f"{section.path.split(' > ')[-1]}: “{_shown(text[spans[-1][0]:spans[-1][1]])}” [{len(spans)}]")
    return _draft(assistant, doc_id, lines, spans)


def _structure(assistant: Assistant, doc_id: str) -> Draft:
    """The major sections with their pages (headings are located text, so no quotes needed)."""
    lines = []
    for section in _major_sections(assistant, doc_id):
        first, last = section.pages
        pages = f"p. {first}" if first == last else f"pp. {first}-{last}"
        lines.append(f"- {section.path} ({pages})")
    return Draft("\n".join(lines), (), covered=bool(lines)) if lines else Draft(NOT_FOUND, (), covered=False)


def overview(assistant: Assistant, doc_id: str) -> Draft:
    """The coverage-aware extractive summary: the most central sentence of each major section
    (central to its section and to the document, by sentence embeddings), then the globally
    most central remaining sentences, avoiding near-repeats, in reading order."""
    text = assistant.citer.text(doc_id)
    groups = []
    for section in _major_sections(assistant, doc_id) or [None]:
        start, end = (section.start, section.end) if section else (0, len(text))
        found = sentences([Source(doc_id, "", start, end, text[start:end], "", "section")])
        step = max(1, len(found) // _PER_SECTION)
        groups.append(found[::step][:_PER_SECTION])
    candidates = [s for group in groups for s in group]
    if not candidates:
        return Draft(NOT_FOUND, (), covered=False)
    vectors = assistant.extractor.vectors(candidates)
    centre = _unit(vectors.mean(axis=0))
    chosen: list[int] = []
    offset = 0
    for group in groups:
        if group:
            block = vectors[offset:offset + len(group)]
            local = block @ _unit(block.mean(axis=0)) + block @ centre
            chosen.append(offset + int(np.argmax(local)))
        offset += len(group)
    chosen = chosen[:OVERVIEW_SENTENCES]
    for index in np.argsort(-(vectors @ centre)):
        if len(chosen) >= OVERVIEW_SENTENCES:
            break
        if index not in chosen and max((float(vectors[index] @ vectors[c]) for c in chosen), default=0) < 0.85:
            chosen.append(int(index))
    picked = sorted((candidates[i] for i in chosen), key=lambda s: s.start)
    spans = [(s.start, min(s.end, s.start + 400)) for s in picked]
    lines = [f"“{_shown(text[a:b])}” [{n}]" for n, (a, b) in enumerate(spans, start=1)]
    return _draft(assistant, doc_id, lines, spans)


def _major_sections(assistant: Assistant, doc_id: str):
    """The top level of the outline (articles, or numbered sections when there are no articles)."""
    outline = [s for s in assistant.store.outline(doc_id) if not _SKIPPED_SECTIONS.fullmatch(s.title.strip())]
    if not outline:
        return []
    top = min(s.level for s in outline)
    major = [s for s in outline if s.level == top]
    if len(major) > _MAJOR_SECTIONS:  # keep the longest, in order
        keep = sorted(sorted(major, key=lambda s: s.start - s.end)[:_MAJOR_SECTIONS], key=lambda s: s.start)
        major = keep
    return major


def _draft(assistant: Assistant, doc_id: str, lines: list[str], spans: list[tuple[int, int]]) -> Draft:
    if not lines:
        return Draft(NOT_FOUND, (), covered=False)
    citations = tuple(assistant.citer.cite(n, doc_id, a, b) for n, (a, b) in enumerate(spans, start=1))
    return Draft("\n".join(lines), citations, covered=True)


def _numbered(name: str, draft: Draft, offset: int) -> SummaryField:
    """The field with its citations renumbered to follow the previous fields'."""
    text = re.sub(r"\[(\d+)\]", lambda m: f"[{int(m.group(1)) + offset}]", draft.text)
    citations = tuple(replace(c, number=c.number + offset) for c in draft.citations)
    return SummaryField(name, text, citations, draft.covered)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) or 1.0)


def _shown(text: str) -> str:
    return " ".join(text.split())


def _sentence_end(text: str, start: int, limit: int = 400) -> int:
    stop = re.search(r"(?<=[.!?])\s|\n\s*\n", text[start:start + limit])
    return start + (stop.start() if stop else min(limit, len(text) - start))
