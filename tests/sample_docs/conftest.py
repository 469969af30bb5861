"""Makes sample_docs/docgen (the documents' generator, not an installed package) importable."""

import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

SAMPLE_DOCS = Path(__file__).resolve().parents[2] / "sample_docs"
if str(SAMPLE_DOCS) not in sys.path:
    sys.path.insert(0, str(SAMPLE_DOCS))


@pytest.fixture(scope="session")
def pdf_pages():
    """File name in sample_docs/ -> list of its pages' extracted text (read once per session)."""
    cache: dict[str, list[str]] = {}

    def pages(name: str) -> list[str]:
        if name not in cache:
            cache[name] = [p.extract_text() or "" for p in PdfReader(SAMPLE_DOCS / name).pages]
        return cache[name]

    return pages
