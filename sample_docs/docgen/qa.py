"""qa.jsonl: its row format, and gold pages computed from the generated PDFs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .text import locate, normalise, page_texts

TYPES = ("defined_term", "number", "date", "party", "cross_reference", "obligation",
         "procedure", "yes_no", "unanswerable")


class QaError(ValueError):
    """A malformed qa.jsonl row; the message names the row id and the reason."""


@dataclass(frozen=True)
class QaRow:
    id: str
    doc: str
    question: str
    answer: str
    evidence: str
    pages: list[int]
    type: str
    answerable: bool

    def __post_init__(self):
        if self.type not in TYPES:
            raise QaError(f"{self.id}: unknown type {self.type!r}")
        if not self.question.endswith("?"):
            raise QaError(f"{self.id}: a question ends with '?'")
        if self.answerable != (self.type != "unanswerable"):
            raise QaError(f"{self.id}: answerable must be false exactly for type unanswerable")
        if self.answerable and not (self.evidence and self.answer):
            raise QaError(f"{self.id}: an answerable row needs an answer and evidence")
        if not self.answerable and (self.evidence or self.pages):
            raise QaError(f"{self.id}: an unanswerable row has no evidence and no pages")
        if self.answerable and answer_span(self) not in normalise(self.evidence):
            raise QaError(f"{self.id}: the answer is not contained in the evidence")


def answer_span(row: QaRow) -> str:
    """The part of the answer the evidence must contain.

    A yes/no answer reads "Yes. <span>" or "No. <span>": the verdict, then the words of the
    document that decide it.
    """
    if row.type == "yes_no":
        verdict, _, span = row.answer.partition(". ")
        if verdict not in ("Yes", "No") or not span:
            raise QaError(f"{row.id}: a yes_no answer reads 'Yes. <span>' or 'No. <span>'")
        return normalise(span)
    return normalise(row.answer)


def read_rows(path: Path) -> list[QaRow]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        data = json.loads(line)
        if set(data) != set(QaRow.__dataclass_fields__):
            raise QaError(f"{path.name}:{lineno}: fields must be exactly "
                          f"{sorted(QaRow.__dataclass_fields__)}, got {sorted(data)}")
        rows.append(QaRow(**data))
    ids = [row.id for row in rows]
    if len(set(ids)) != len(ids):
        raise QaError(f"{path.name}: duplicate ids")
    return rows


def with_gold_pages(rows: list[QaRow], docs_dir: Path) -> list[QaRow]:
    """Rows with `pages` recomputed from the PDFs (LookupError names the row on failure)."""
    texts: dict[str, list[str]] = {}
    out = []
    for row in rows:
        if row.doc not in texts:
            texts[row.doc] = page_texts(docs_dir / row.doc)
        if not row.answerable:
            out.append(row)
            continue
        try:
            out.append(replace(row, pages=locate(row.evidence, texts[row.doc])))
        except LookupError as err:
            raise LookupError(f"{row.id}: {err}") from None
    return out


def write_rows(rows: list[QaRow], path: Path) -> None:
    lines = [json.dumps(asdict(row), ensure_ascii=False) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
