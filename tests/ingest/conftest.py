"""Fixtures for the ingest tests: documents built on the fly (fpdf2 PDFs, text files) and stores."""

import io
from pathlib import Path

import pytest

from ingest import Store

LOREM = (
    "The Supplier shall perform the Services with reasonable skill and care. Each party shall comply "
    "with all applicable laws. Invoices are payable within thirty days of receipt. "
)


def make_pdf(path: Path, pages: list[str], header: str = "", footer: bool = False, image_pages=(), title: str = "") -> Path:
    """A PDF with one text block per page; optional running header, "Page n of N" footer and
    image-only pages (indices into `pages`, whose text is then ignored)."""
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    if title:
        pdf.set_title(title)
    for index, text in enumerate(pages):
        pdf.add_page()
        pdf.set_font("Helvetica", size=10)
        if index in image_pages:
            buffer = io.BytesIO()
            Image.new("L", (200, 100), color=128).save(buffer, format="PNG")
            pdf.image(buffer, x=20, y=20, w=120)
            continue
        if header:
            pdf.set_xy(10, 8)
            pdf.cell(0, 5, header)
        pdf.set_xy(10, 20)
        pdf.multi_cell(0, 5, text)
        if footer:
            pdf.set_xy(10, 280)
            pdf.cell(0, 5, f"Page {index + 1} of {len(pages)}")
    pdf.output(str(path))
    return path


@pytest.fixture
def store(tmp_path) -> Store:
    with Store(tmp_path / "store", lock_timeout_s=5) as opened:
        yield opened


@pytest.fixture
def contract_text() -> str:
    """A small contract with articles, numbered sections, clauses and defined terms."""
    return (
        "MASTER SERVICES AGREEMENT\n\n"
        'This Master Services Agreement (the "Agreement") is made between Acme Corp. ("Customer") '
        'and Widget Ltd. ("Supplier").\n\n'
        "ARTICLE 1\nDEFINITIONS\n"
        '1.1 "Confidential Information" means all non-public information disclosed by a party, '
        "including the Price List.\n"
        '1.2 "Services" means the services described in Exhibit A.\n\n'
        "ARTICLE 2\nSERVICES\n"
        "2.1 Provision of Services. " + LOREM * 3 + "\n"
        "2.2 Service Levels. The Supplier shall meet the service levels in Exhibit A.\n\n"
        "ARTICLE 9\nCONFIDENTIALITY\n"
        "9.1 Obligations. Each party shall keep the Confidential Information of the other party secret.\n"
        "9.2 Exceptions. The obligations in Section 9.1 do not apply to information that:\n"
        "(a) is or becomes public through no fault of the receiving party;\n"
        "(b) was known to the receiving party before disclosure; or\n"
        "(c) is required to be disclosed by law.\n\n"
        "ARTICLE 12\nTERMINATION\n"
        "12.1 Termination for Convenience. The Customer may terminate this Agreement for convenience "
        "on ninety (90) days' written notice to the Supplier.\n"
        "12.2 Termination for Cause. Either party may terminate this Agreement if the other party "
        "commits a material breach and fails to cure it within thirty (30) days.\n"
        "12.3 Effect of Termination. On termination the Supplier shall return all Confidential "
        "Information and the Customer shall pay all undisputed invoices.\n\n"
        "EXHIBIT A\nSERVICE DESCRIPTION\n"
        "1. Support. The Supplier provides support from 9:00 to 17:00 on business days.\n"
    )
