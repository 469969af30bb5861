"""The 137 awkward, broken and encrypted PDFs of ../shared/evaldata/pdf_robustness: every file
ingests with text or fails with a clear reason; nothing crashes or hangs."""

import csv
import time
from pathlib import Path

import pytest

from ingest import IngestSettings, ingest_paths
from ingest.errors import ParseError
from ingest.prepare import prepare_document
from ingest.worker import PdfParser

CLEAR_REASONS = (
    "encrypted PDF", "not a PDF file", "not a readable PDF", "no text layer", "no extractable text",
    "the PDF has no pages", "made no progress", "needs more memory",
)
# A hostile file gets this long per page before it is called a parser loop (per-file timeout).
PAGE_TIMEOUT_S = 30


class _NoEmbedder:
    """Stands in for the embedder where only parsing and chunking are under test."""

    identity = "none"
    max_seq_length = 256

    def __init__(self):
        from ingest.embed import get_embedder

        self._tokens = get_embedder()

    def count_tokens(self, texts):
        return self._tokens.count_tokens(texts)

    def token_starts(self, text):
        return self._tokens.token_starts(text)

    def encode(self, texts):
        import numpy as np

        return np.zeros((len(texts), 384), dtype=np.float32)


def _manifest(evaldata: Path) -> list[dict]:
    rows = list(csv.DictReader((evaldata / "pdf_robustness" / "manifest.csv").open()))
    assert len(rows) == 137
    return rows


def test_every_hostile_pdf_parses_or_fails_clearly(evaldata):
    """Parse, clean and chunk all 137 (embedding left out to keep the default run short)."""
    root = evaldata / "pdf_robustness"
    settings = IngestSettings(page_timeout_s=PAGE_TIMEOUT_S)
    outcomes = {}
    with PdfParser(settings) as parser:
        for row in _manifest(evaldata):
            started = time.monotonic()
            data = (root / row["file"]).read_bytes()
            try:
                doc = prepare_document(row["file"], data, parser, _NoEmbedder(), settings)
            except ParseError as error:
                outcomes[row["file"]] = str(error)
                assert str(error).startswith(CLEAR_REASONS) and "\n" not in str(error), (row["file"], str(error))
            else:
                outcomes[row["file"]] = "ok"
                assert doc.text.strip() and doc.chunks, row["file"]
            assert time.monotonic() - started < 120, row["file"]
    by_outcome = {reason.split(" (")[0].split(":")[0] for reason in outcomes.values()}
    assert "ok" in by_outcome and "encrypted PDF" in by_outcome
    assert sum(reason == "ok" for reason in outcomes.values()) >= 80
    for row in _manifest(evaldata):
        if "encrypted" in row["notes"] and "password" in row["notes"] and row["pdfinfo_rc"] != "0":
            assert outcomes[row["file"]].startswith("encrypted PDF"), row["file"]
    assert outcomes["qpdf-test-files/bad1.pdf"].startswith("not a PDF file")
    assert outcomes["py-pdf-sample-files/007-imagemagick-images__imagemagick-lzw.pdf"].startswith("no text layer")
    assert outcomes["py-pdf-sample-files/009-pdflatex-geotopo__GeoTopo-komprimiert.pdf"] == "ok"


def test_a_sample_of_hostile_pdfs_through_the_whole_pipeline(evaldata, store):
    root = evaldata / "pdf_robustness"
    sample = [
        "py-pdf-sample-files/004-pdflatex-4-pages__pdflatex-4-pages.pdf",
        "py-pdf-sample-files/005-libreoffice-writer-password__libreoffice-writer-password.pdf",
        "py-pdf-sample-files/026-latex-multicolumn__multicolumn.pdf",
        "pypdf-resources/Seige_of_Vicksburg_Sample_OCR.pdf",
        "pypdf-resources/issue-297.pdf",
        "qpdf-test-files/leading-junk.pdf",
        "qpdf-test-files/pages-loop.pdf",
        "qpdf-test-files/page-labels-num-tree-damaged.pdf",
        "pdfium-test-files/bug_782596.pdf",
        "pdfium-test-files/encrypted_hello_world_r3_bad_okey.pdf",
        "py-pdf-sample-files/019-grayscale-image__grayscale-image.pdf",
    ]
    report = ingest_paths([root / name for name in sample], store, settings=IngestSettings(page_timeout_s=PAGE_TIMEOUT_S))
    assert len(report.added) + len(report.failed) == len(sample)
    assert len(report.added) >= 6
    assert all(reason.startswith(CLEAR_REASONS) for _, reason in report.failed)
    assert store.verify() == []
    assert all(store.document_text(r.doc_id).strip() for r in report.added)


@pytest.mark.slow
def test_all_hostile_pdfs_through_the_whole_pipeline(evaldata, store):
    root = evaldata / "pdf_robustness"
    paths = [root / row["file"] for row in _manifest(evaldata)]
    report = ingest_paths(paths, store, settings=IngestSettings(page_timeout_s=PAGE_TIMEOUT_S))
    assert len(report.added) + len(report.unchanged) + len(report.failed) == 137
    assert all(reason.startswith(CLEAR_REASONS) for _, reason in report.failed)
    assert store.verify() == []
    assert all(store.document_text(d.doc_id).strip() for d in store.documents())
