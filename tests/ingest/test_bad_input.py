"""Every kind of bad input costs one clear line; the rest of the batch is ingested; the store
stays consistent."""

import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from ingest import IngestSettings, ingest_bytes, ingest_paths
from ingest.errors import ParseError
from ingest.worker import PdfParser
from tests.ingest.conftest import LOREM, make_pdf


def _encrypt(source: Path, target: Path, user: str, owner: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=user, owner_password=owner, algorithm="AES-256")
    writer.write(target)
    return target


@pytest.fixture
def bad_batch(tmp_path):
    """(paths, expected reason fragment per failing file name, names that must be ingested)."""
    good = make_pdf(tmp_path / "good.pdf", [LOREM * 5, LOREM * 4], title="Good Agreement")
    files = {
        "good.pdf": good,
        "locked.pdf": _encrypt(good, tmp_path / "locked.pdf", user="secret", owner="owner"),
        "owner_only.pdf": _encrypt(good, tmp_path / "owner_only.pdf", user="", owner="owner"),
        "scanned.pdf": make_pdf(tmp_path / "scanned.pdf", ["", ""], image_pages={0, 1}),
        "mixed.pdf": make_pdf(tmp_path / "mixed.pdf", [LOREM * 3, "", LOREM * 2], image_pages={1}),
        "blank.pdf": make_pdf(tmp_path / "blank.pdf", [" "]),
    }
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    empty_pdf = tmp_path / "empty.pdf"
    empty_pdf.write_bytes(b"")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("The Licensee’s fee is €100 per année.".encode("cp1252"))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(256)) * 40)
    docx = tmp_path / "contract.docx"
    docx.write_bytes(b"PK\x03\x04 not really")
    big = tmp_path / "big.txt"
    big.write_text(LOREM * 8000)  # ~1.4 MB, over the 1 MiB limit used below
    files.update({p.name: p for p in (truncated, empty, empty_pdf, latin, binary, docx, big)})
    expected_failures = {
        "locked.pdf": "encrypted PDF: it needs a password",
        "scanned.pdf": "needs OCR",
        "blank.pdf": "no extractable text",
        "truncated.pdf": "not a readable PDF",
        "empty.txt": "empty file (0 bytes)",
        "empty.pdf": "empty file (0 bytes)",
        "binary.txt": "binary data, not text",
        "contract.docx": "unsupported file type (.docx)",
        "big.txt": "over the 1 MiB limit",
        "missing.pdf": "no such file or directory",
    }
    paths = list(files.values()) + [tmp_path / "missing.pdf"]
    return paths, expected_failures, {"good.pdf", "owner_only.pdf", "mixed.pdf", "latin.txt"}


def test_bad_inputs_fail_alone_with_a_clear_reason(store, bad_batch):
    paths, expected, ingested = bad_batch
    report = ingest_paths(paths, store, settings=IngestSettings(max_file_bytes=2**20))
    failed = {Path(path).name: reason for path, reason in report.failed}
    assert set(failed) == set(expected)
    for name, fragment in expected.items():
        assert fragment in failed[name], (name, failed[name])
        assert "\n" not in failed[name]
    stored = {Path(d.source).name for d in store.documents()}
    assert stored == ingested
    assert {Path(r.source).name for r in report.added} == ingested
    mixed = next(r for r in report.added if r.source.endswith("mixed.pdf"))
    assert "page 2 have no text layer" in mixed.note or "pages 2" in mixed.note
    assert next(d for d in store.documents() if d.source.endswith("mixed.pdf")).ocr_pages == (2,)
    latin = next(r for r in report.added if r.source.endswith("latin.txt"))
    assert "Windows-1252" in latin.note
    assert "€100" in store.document_text(latin.doc_id)
    assert store.verify() == []


def test_owner_password_only_pdf_opens(store, tmp_path):
    good = make_pdf(tmp_path / "good.pdf", [LOREM * 3])
    locked = _encrypt(good, tmp_path / "owner_only.pdf", user="", owner="owner")
    report = ingest_paths([locked], store)
    assert report.failed == [] and "Supplier shall perform" in store.document_text(report.added[0].doc_id)


def test_upload_errors_name_the_upload(store):
    report = ingest_bytes("scan.pdf", b"%PDF-1.4 garbage", store)
    assert report.failed and report.failed[0][0] == "scan.pdf" and "PDF" in report.failed[0][1]
    assert ingest_bytes("notes.rtf", b"{\\rtf1}", store).failed[0][1].startswith("unsupported file type")


def test_cli_reports_each_failure_on_one_line_and_exits_nonzero(tmp_path, bad_batch):
    paths, expected, _ = bad_batch
    tome = Path(sys.executable).with_name("tome")
    result = subprocess.run(
        [tome, "ingest", *map(str, paths), "--store", str(tmp_path / "cli-store"), "--max-size", "1"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("tome: error: ")]
    assert len(errors) == len(expected)
    for name, fragment in expected.items():
        assert any(name in line and fragment in line for line in errors), name
    assert "4 added" in result.stdout and f"{len(expected)} failed" in result.stdout


def _pdf(objects: list[bytes]) -> bytes:
    """A minimal PDF from object bodies (object 1 is the catalog), with a correct xref."""
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _one_page_pdf(content: bytes, compressed: bool = False) -> bytes:
    stream = zlib.compress(content) if compressed else content
    flate = b" /Filter /FlateDecode" if compressed else b""
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(stream), flate) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def test_real_world_files_over_pypdf_default_limits_are_read():
    # One TJ array of 120,000 elements: pypdf's default limit is 100,000.
    elements = b" ".join(b"(w%d) -50" % (i % 10) for i in range(60_000))
    data = _one_page_pdf(b"BT /F1 10 Tf 72 700 Td (Contract start) Tj [" + elements + b"] TJ ET", compressed=True)
    with PdfParser(IngestSettings()) as parser:
        parsed = parser.parse(data)
    assert parsed.pages[0].text.startswith("Contract start") and "w9" in parsed.pages[0].text


def test_a_parser_that_stops_progressing_is_killed_and_the_next_file_parses():
    # 400,000 drawing operators: pypdf needs seconds on this page; the limit here is 0.5 s.
    slow = _one_page_pdf(b"BT /F1 10 Tf (slow) Tj ET " + b"0 0 m 1 1 l S " * 400_000, compressed=True)
    with PdfParser(IngestSettings(page_timeout_s=0.5)) as parser:
        with pytest.raises(ParseError, match="made no progress for 0.5 s on page 1 of 1"):
            parser.parse(slow)
        fast = _one_page_pdf(b"BT /F1 10 Tf 72 700 Td (Next file) Tj ET")
        assert parser.parse(fast).pages[0].text == "Next file"


def test_a_decompression_bomb_fails_cleanly():
    compressor = zlib.compressobj(9)
    zeros = b"\0" * 2**24
    bomb_stream = b"".join(compressor.compress(zeros) for _ in range(40)) + compressor.flush()  # 640 MiB
    bomb = _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(bomb_stream) + bomb_stream + b"\nendstream",
    ])
    with PdfParser(IngestSettings(parser_memory_bytes=512 * 2**20)) as parser:
        try:
            parsed = parser.parse(bomb)
        except ParseError as error:
            assert "memory" in str(error) or "readable" in str(error)
        else:
            assert not parsed.pages[0].text.strip()
