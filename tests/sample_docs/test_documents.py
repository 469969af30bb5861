"""The committed sample documents have the properties the ingestion and Q&A work relies on."""

import re

import pytest
from docgen import DOCUMENTS, HERE, QA_FILE, SOURCES
from docgen.markup import Heading, Notice, Para, Table, parse_files
from docgen.qa import answer_span, read_rows
from docgen.render import render
from docgen.text import locate, normalise, repeated_ngram_ratio, words
from pypdf import PdfReader

LONG = "master_supply_agreement.pdf"
PAGE_BOUNDS = {  # file -> (min, max) physical pages, as the brief sets them
    "master_services_agreement.pdf": (25, 60),
    "mutual_nda.pdf": (3, 5),
    "vl500_drive_manual.pdf": (30, 80),
    LONG: (150, 250),
}
FOOTER = re.compile(r"Page (\d+) of (\d+)")


def test_every_document_is_generated_and_committed():
    assert set(DOCUMENTS) == set(PAGE_BOUNDS)
    assert sorted(p.name for p in HERE.glob("*.pdf")) == sorted(DOCUMENTS)


@pytest.mark.parametrize("name", sorted(PAGE_BOUNDS))
def test_page_count(name, pdf_pages):
    low, high = PAGE_BOUNDS[name]
    assert low <= len(pdf_pages(name)) <= high


def test_folder_stays_small():
    size = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file()
               and "__pycache__" not in p.parts)
    assert size < 5 * 1024 * 1024


def test_long_agreement_is_long_and_varied(pdf_pages):
    text = "\n".join(pdf_pages(LONG))
    assert len(words(text)) >= 65_000
    assert repeated_ngram_ratio(text, 8) <= 0.05


@pytest.mark.parametrize("name", sorted(PAGE_BOUNDS))
def test_running_footer_numbers_every_body_page(name, pdf_pages):
    numbered = [(i, FOOTER.search(text)) for i, text in enumerate(pdf_pages(name))]
    body = [(i, m) for i, m in numbered if m]
    total = int(body[0][1].group(2))
    assert [int(m.group(1)) for _, m in body] == list(range(1, total + 1))
    assert body[-1][0] == len(numbered) - 1  # the body runs to the last page


@pytest.mark.parametrize("name", ["master_services_agreement.pdf", "vl500_drive_manual.pdf", LONG])
def test_front_matter_has_roman_page_labels(name, pdf_pages):
    labels = PdfReader(HERE / name).page_labels
    first_body = next(i for i, text in enumerate(pdf_pages(name)) if FOOTER.search(text))
    assert labels[:3] == ["i", "ii", "iii"]
    assert labels[first_body] == "1" and first_body > 1  # printed numbers != physical ones
    assert "TABLE OF CONTENTS" in pdf_pages(name)[1]


def test_justified_text_hyphenates_words_across_lines(pdf_pages):
    broken = re.findall(r"[a-z]{3,}-\n[a-z]{3,}", "\n".join(pdf_pages(LONG)))
    assert len(broken) > 100


def test_contract_structure_survives_extraction(pdf_pages):
    text = "\n".join(pdf_pages(LONG))
    assert len(re.findall(r"^ARTICLE [IVXL]+$", text, re.M)) >= 25
    assert len(re.findall(r"^EXHIBIT [A-Z]$", text, re.M)) >= 10
    assert "subject to Section" in normalise(text)
    msa = normalise("\n".join(pdf_pages("master_services_agreement.pdf")))
    assert "12.3 Effect of Termination." in msa and "(a) Customer shall pay" in msa


# "Section 12.3(a)", "Sections 6.5, 6.6 and 11.5", "Section D.26 of the Quality Agreement"
SECTION_REF = re.compile(r"Sections? ((?:[A-Z]\.)?\d+(?:\.\d+)+(?:\([a-z]+\))?"
                         r"(?:(?:,| and| to| or| through) (?:[A-Z]\.)?\d+(?:\.\d+)+(?:\([a-z]+\))?)*)")


@pytest.mark.parametrize("name", ["master_services_agreement.pdf", LONG])
def test_cross_references_point_at_real_sections(name):
    source = parse_files([SOURCES / s for s in DOCUMENTS[name]])
    numbers = {b.number for b in source.blocks if isinstance(b, Heading)}
    texts = [b.text for b in source.blocks if isinstance(b, (Para, Notice, Heading))]
    texts += [cell for b in source.blocks if isinstance(b, Table) for row in b.rows for cell in row]
    refs = {n for m in SECTION_REF.finditer(" ".join(texts))
            for n in re.findall(r"(?:[A-Z]\.)?\d+(?:\.\d+)+", m.group(1))}
    assert len(refs) >= 25  # the contracts cross-refer a lot; the check is not vacuous
    assert refs <= numbers, sorted(refs - numbers)


def test_generator_is_deterministic():
    sources = [SOURCES / s for s in DOCUMENTS["mutual_nda.pdf"]]
    first = render(parse_files(sources))
    assert render(parse_files(sources)) == first == (HERE / "mutual_nda.pdf").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_committed_pdfs_match_their_sources(name):
    pdf = render(parse_files([SOURCES / s for s in DOCUMENTS[name]]))
    assert pdf == (HERE / name).read_bytes(), f"run sample_docs/generate.py to refresh {name}"


# -- qa.jsonl ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rows():
    return read_rows(QA_FILE)  # raises QaError on a malformed row


def test_qa_covers_the_documents_and_question_kinds(rows):
    assert len(rows) >= 40
    assert {r.doc for r in rows} == set(DOCUMENTS)
    kinds = {r.type for r in rows}
    assert {"defined_term", "number", "date", "cross_reference", "unanswerable"} <= kinds
    assert sum(not r.answerable for r in rows) >= 5
    for name in ("mutual_nda.pdf", "vl500_drive_manual.pdf"):
        assert sum(r.doc == name and r.answerable for r in rows) >= 5


def test_at_least_ten_answers_lie_beyond_page_100_of_the_long_agreement(rows):
    assert sum(r.doc == LONG and r.answerable and min(r.pages) > 100 for r in rows) >= 10


def test_every_answer_is_in_its_evidence(rows):
    for row in rows:
        if row.answerable:
            assert answer_span(row) in normalise(row.evidence), row.id


def test_every_evidence_is_on_its_gold_pages(rows, pdf_pages):
    for row in (r for r in rows if r.answerable):
        pages = pdf_pages(row.doc)
        assert row.pages == locate(row.evidence, pages), row.id
        if len(row.pages) == 1:  # the plain reading of the rule, without the lookup helper
            assert normalise(row.evidence) in normalise(pages[row.pages[0] - 1]), row.id
