"""Reading a file into pages of raw text: type by extension, size and emptiness checks, dispatch.

PDFs are parsed in a child process (`ingest.worker`); text and Markdown are decoded here.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import ParseError
from ingest.settings import IngestSettings
from ingest.text import decode_text

KINDS = {".pdf": "pdf", ".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md"}


@dataclass(frozen=True)
class RawPage:
    number: int  # 1-based physical index
    label: str  # printed page number (PDF page labels), else str(number)
    text: str
    has_images: bool = False  # an image on a page without text means it needs OCR


@dataclass(frozen=True)
class ParsedDocument:
    kind: str
    pages: tuple[RawPage, ...]
    title: str = ""  # from the file's metadata or a Markdown heading; "" when it has none
    warnings: tuple[str, ...] = field(default=())


def kind_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in KINDS:
        shown = suffix or "no extension"
        raise ParseError(f"unsupported file type ({shown}); Tome reads .pdf, .txt and .md")
    return KINDS[suffix]


def read_file(path: Path, settings: IngestSettings) -> bytes:
    """The bytes of a file to ingest, or a ParseError saying why it cannot be."""
    if not path.exists():
        raise ParseError("no such file or directory")
    if not path.is_file():
        raise ParseError("not a regular file")
    kind_of(path.name)
    size = path.stat().st_size
    check_size(size, settings)
    try:
        return path.read_bytes()
    except OSError as error:
        raise ParseError(f"cannot read the file ({error.strerror or error})") from None


def check_size(size: int, settings: IngestSettings) -> None:
    if size == 0:
        raise ParseError("empty file (0 bytes)")
    if size > settings.max_file_bytes:
        raise ParseError(
            f"file is {size / 2**20:.1f} MiB, over the {settings.max_file_bytes / 2**20:.0f} MiB "
            "limit (raise it with --max-size)"
        )


def parse_text(kind: str, data: bytes) -> ParsedDocument:
    """A .txt or .md file: form feeds separate pages; a Markdown `# heading` gives the title."""
    text, warning = decode_text(data)
    pages = tuple(
        RawPage(number=i + 1, label=str(i + 1), text=page)
        for i, page in enumerate(text.split("\f"))
    )
    title = ""
    if kind == "md":
        match = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.MULTILINE)
        title = match.group(1) if match else ""
    return ParsedDocument(kind=kind, pages=pages, title=title, warnings=(warning,) if warning else ())
