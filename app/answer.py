"""What the Q&A and the summaries hand to the CLI and the web UI: answers with verified citations.

A `Citation` is a span of a stored document's text: its quote is `document_text[start:end]`
and its pages come from those offsets, never from a model. `Answer.text` carries markers [n]
that refer to `Citation.number`.
"""

from dataclasses import dataclass, field

from app.errors import AppError

MODES = ("extractive", "retrieval", "whole")


@dataclass(frozen=True)
class Citation:
    number: int  # the marker [n] in the answer text
    doc_id: str
    title: str
    source: str
    pages: tuple[int, int]  # 1-based physical pages (first, last) holding the quote
    page_labels: tuple[str, str]  # the pages' printed numbers (PDF page labels)
    section: str  # "12 Termination > 12.3 Effect of Termination", "" when unknown
    quote: str  # verbatim text of the document
    start: int  # offsets into the document's text
    end: int

    def __post_init__(self):
        if self.number < 1 or not 0 <= self.start <= self.end or self.pages[0] > self.pages[1]:
            raise AppError(f"citation [{self.number}]: inconsistent offsets or pages")

    @property
    def where(self) -> str:
        """"p. 12" or "pp. 12-13", with the printed page numbers when they differ."""
        first, last = self.pages
        shown = f"p. {first}" if first == last else f"pp. {first}-{last}"
        labels = self.page_labels
        if labels != (str(first), str(last)) and all(labels):
            printed = labels[0] if first == last else f"{labels[0]}-{labels[1]}"
            shown += f" (printed {printed})"
        return shown


@dataclass(frozen=True)
class Draft:
    """What an answerer produces before the assistant adds the question and the mode."""

    text: str
    citations: tuple[Citation, ...]
    covered: bool
    verdict: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    question: str  # as asked
    standalone_question: str  # rewritten from the conversation (== question for a first turn)
    text: str  # the answer, with [n] markers
    citations: tuple[Citation, ...]  # numbered 1..n, grouped by document
    mode: str  # "extractive" (no model), "retrieval" or "whole"
    covered: bool  # False when the documents do not answer the question
    verdict: str = ""  # "yes" or "no" for a yes/no question, else ""
    warnings: tuple[str, ...] = ()  # e.g. a quote the model gave that the documents do not contain
    notes: tuple[str, ...] = field(default=())  # e.g. why whole-document mode was not used

    def __post_init__(self):
        if self.mode not in MODES:
            raise AppError(f"mode {self.mode!r}: expected one of {', '.join(MODES)}")
        if [c.number for c in self.citations] != list(range(1, len(self.citations) + 1)):
            raise AppError("citations must be numbered 1..n in order")

    def by_document(self) -> list[tuple[str, str, list[Citation]]]:
        """(doc_id, title, citations) per cited document, in order of first citation."""
        groups: dict[str, list[Citation]] = {}
        for citation in self.citations:
            groups.setdefault(citation.doc_id, []).append(citation)
        return [(doc_id, cites[0].title, cites) for doc_id, cites in groups.items()]
