"""PDF text extraction with pypdf, page by page. Runs inside the parser process (`ingest.worker`).

Owner-password-only PDFs open with the empty password. pypdf's resource limits are raised for
real-world files that trip them (long TJ arrays, big content streams); the parser process's
memory limit and per-page timeout are the guards against hostile files instead.
"""

import io
import re
from collections.abc import Callable

from ingest.errors import ParseError
from ingest.parse import ParsedDocument, RawPage

# Ten times pypdf's defaults: large drawings and machine-generated pages exceed them while being
# valid; the parser process's address-space limit still stops a decompression bomb.
RAISED_LIMITS = {
    "array_maximum_element_count": 1_000_000,
    "dictionary_maximum_element_count": 1_000_000,
    "stream_parsing_work_maximum_count": 20_000_000,
    "maximum_declared_stream_length": 750_000_000,
    "zlib_maximum_output_length": 750_000_000,
    "lzw_maximum_output_length": 750_000_000,
    "run_length_maximum_output_length": 750_000_000,
    "array_based_stream_maximum_output_length": 750_000_000,
    "stream_decoding_work_maximum_length": 3_000_000_000,
    "xform_maximum_invocations_per_extraction": 50_000,
}
_FILE_NAME_TITLE = re.compile(r"^(microsoft word - )|\.(docx?|pdf|rtf|odt|indd|txt|tmp)$", re.I)


def extract_pdf(data: bytes, on_page: Callable[[int, int], None]) -> ParsedDocument:
    """Pages of text of a PDF; `on_page(i, n)` is called before page i of n is extracted."""
    from pypdf import apply_configuration

    with apply_configuration(**RAISED_LIMITS):
        reader = _open(data)
        count = _page_count(reader)
        labels = _page_labels(reader, count)
        pages, warnings = [], []
        for i in range(count):
            on_page(i, count)
            pages.append(_extract_page(reader, i, labels[i], warnings))
        return ParsedDocument(kind="pdf", pages=tuple(pages), title=_title(reader), warnings=tuple(warnings))


def _open(data: bytes):
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    if b"%PDF" not in data[:4096]:  # leading junk before the header is common and harmless
        raise ParseError("not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        raise ParseError(f"not a readable PDF ({_one_line(error)})") from None
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except (DependencyError, NotImplementedError) as error:
            raise ParseError(f"encrypted PDF with an unsupported scheme ({_one_line(error)})") from None
        except Exception as error:  # corrupt encryption dictionaries raise all sorts
            raise ParseError(f"encrypted PDF that cannot be decrypted ({_one_line(error)})") from None
        if opened == PasswordType.NOT_DECRYPTED:
            raise ParseError("encrypted PDF: it needs a password to open; save an unprotected copy")
    return reader


def _page_count(reader) -> int:
    try:
        count = len(reader.pages)
    except Exception as error:  # broken or looping page trees
        raise ParseError(f"not a readable PDF: its page tree is broken ({_one_line(error)})") from None
    if count == 0:
        raise ParseError("the PDF has no pages")
    return count


def _page_labels(reader, count: int) -> list[str]:
    try:
        labels = [str(label)[:32] for label in reader.page_labels]
    except Exception:  # a damaged /PageLabels tree only costs the printed numbers
        labels = []
    if len(labels) != count:
        return [str(i + 1) for i in range(count)]
    return [label or str(i + 1) for i, label in enumerate(labels)]


def _extract_page(reader, index: int, label: str, warnings: list[str]) -> RawPage:
    try:
        page = reader.pages[index]
        text = page.extract_text() or ""
    except Exception as error:
        warnings.append(f"page {index + 1}: text extraction failed ({_one_line(error)})")
        return RawPage(number=index + 1, label=label, text="")
    has_images = not text.strip() and _has_images(page)
    return RawPage(number=index + 1, label=label, text=text, has_images=has_images)


def _has_images(page) -> bool:
    """Whether a page draws an image (a scan needing OCR) rather than being blank or vector-only."""
    try:
        resources = page.get("/Resources")
        xobjects = resources.get_object().get("/XObject") if resources else None
        for ref in (xobjects.get_object() if xobjects else {}).values():
            if ref.get_object().get("/Subtype") == "/Image":
                return True
        contents = page.get_contents()
        return bool(contents) and re.search(rb"(^|\s)BI\s", contents.get_data()) is not None
    except Exception:
        return False


def _title(reader) -> str:
    try:
        title = str((reader.metadata or {}).get("/Title") or "")
    except Exception:
        return ""
    title = " ".join(title.split())
    if len(title) < 3 or _FILE_NAME_TITLE.search(title) or title.lower() in {"untitled", "title"}:
        return ""
    return title[:200]


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:160]
