"""Decoding text files: UTF-8 first, then what a BOM says, then Windows-1252; binary is refused."""

import codecs

from ingest.errors import ParseError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Control characters other than tab, newline, carriage return and form feed; more than this
# share of them means the file is binary data with a text extension.
_BINARY_CONTROL_SHARE = 0.01


def decode_text(data: bytes) -> tuple[str, str]:
    """The decoded text and a warning ("" if none), or a ParseError for binary data."""
    text, warning = _decode(data)
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    if text and controls / len(text) > _BINARY_CONTROL_SHARE:
        raise ParseError("binary data, not text (it has a text file's extension)")
    return text, warning


def _decode(data: bytes) -> tuple[str, str]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), ""
            except UnicodeDecodeError:
                raise ParseError(f"starts with a {encoding} byte-order mark but is not valid {encoding}") from None
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError as error:
        utf8_error = error
    if b"\x00" in data:
        raise ParseError("binary data, not text (contains NUL bytes and is not UTF-16 with a BOM)")
    # Windows-1252 is what non-UTF-8 contracts and manuals almost always are; its five
    # undefined bytes fall back to Latin-1 so decoding never fails.
    text = data.decode("cp1252", errors="replace")
    if "\ufffd" in text:
        text = data.decode("latin-1")
    return text, (
        f"not valid UTF-8 (byte 0x{data[utf8_error.start]:02x} at offset {utf8_error.start}); "
        "decoded as Windows-1252"
    )
