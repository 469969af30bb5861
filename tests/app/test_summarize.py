"""Summaries of the small contract and manual: the field list filled by retrieval with
verified citations, the coverage-aware overview, streaming, and bad input."""

import re

import pytest

from app.errors import AppError
from app.prompts import NOT_FOUND
from app.summarize import Summary, stream_summary, summarize


@pytest.fixture(scope="module")
def contract_summary(library, assistant, msa) -> Summary:
    return summarize(library, msa, assistant=assistant)


def field(summary: Summary, name: str):
    return next(f for f in summary.fields if f.name == name)


def test_contract_fields_are_filled_with_citations(contract_summary, library):
    s = contract_summary
    assert s.kind == "contract" and s.mode == "extractive" and s.title == "MASTER SERVICES AGREEMENT"
    assert "Acme Corp." in field(s, "Parties").text and "Widget Ltd." in field(s, "Parties").text
    assert "three (3) years" in field(s, "Effective date and term").text
    assert "successive one (1) year periods" in field(s, "Renewal").text
    assert "USD 12,000" in field(s, "Payment").text or "thirty (30) days" in field(s, "Payment").text
    assert "ninety (90) days" in field(s, "Termination rights").text
    assert "shall not exceed" in field(s, "Liability caps and indemnities").text
    assert "laws of the State of New York" in field(s, "Governing law and disputes").text
    assert [c.number for c in s.citations] == list(range(1, len(s.citations) + 1))
    for f in s.fields:
        assert set(re.findall(r"\[(\d+)\]", f.text)) == {str(c.number) for c in f.citations}
    for c in s.citations:
        assert library.document_text(c.doc_id)[c.start:c.end] == c.quote


def test_overview_covers_every_major_section(contract_summary, library, msa):
    overview = field(contract_summary, "Overview")
    majors = [sec for sec in library.outline(msa) if sec.level == min(x.level for x in library.outline(msa))]
    assert len(majors) >= 7
    for section in majors:
        assert any(section.start <= c.start < section.end for c in overview.citations), section.path


def test_manual_summary(library, assistant, manual):
    parts = list(stream_summary(library, manual, assistant=assistant))
    summary = parts[-1]
    assert isinstance(summary, Summary) and "".join(parts[:-1]) == summary.text
    assert summary.kind == "manual"
    warnings = field(summary, "Safety warnings").text
    assert "WARNING: Hazardous voltage." in warnings and "CAUTION: Do not operate" in warnings
    procedures = field(summary, "Key procedures").text
    assert "3.1 Mounting" in procedures and "4.1 Start-up" in procedures and "5.1 Inspection" in procedures
    assert "3 INSTALLATION" in field(summary, "Structure").text
    assert "VL-20 pump controller" in field(summary, "Purpose").text


def test_missing_fields_say_so_and_bad_input_fails(library, assistant, manual):
    summary = summarize(library, manual, assistant=assistant, kind="contract")
    assert field(summary, "Renewal").text == NOT_FOUND and not field(summary, "Renewal").found
    with pytest.raises(AppError, match="no document matches"):
        summarize(library, "missing.pdf", assistant=assistant)
    with pytest.raises(AppError, match="needs a model|need a model"):
        summarize(library, manual, assistant=assistant, mode="whole")
