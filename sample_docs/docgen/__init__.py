"""Generator of Tome's sample documents: markup sources in, realistic PDFs and gold pages out."""

from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # sample_docs/
SOURCES = HERE / "src"
QA_FILE = HERE / "qa.jsonl"

# Output file name -> its markup sources, read in order as one document.
DOCUMENTS: dict[str, tuple[str, ...]] = {
    "master_services_agreement.pdf": ("msa.tmk",),
    "mutual_nda.pdf": ("nda.tmk",),
    "vl500_drive_manual.pdf": ("manual.tmk",),
    "master_supply_agreement.pdf": tuple(
        f"supply/{p.name}" for p in sorted((SOURCES / "supply").glob("*.tmk"))),
}
