"""Decoding text files, and cleaning page text into one document text with a page map."""

import codecs

import pytest

from ingest.clean import clean_pages
from ingest.errors import ParseError
from ingest.parse import RawPage, kind_of
from ingest.text import decode_text


def test_decoding_utf8_boms_and_windows_1252():
    assert decode_text("Café §9.2".encode()) == ("Café §9.2", "")
    assert decode_text(codecs.BOM_UTF16_LE + "Café".encode("utf-16-le"))[0] == "Café"
    assert decode_text(codecs.BOM_UTF8 + b"plain")[0] == "plain"
    text, warning = decode_text("Licensee’s fee: €100".encode("cp1252"))
    assert text == "Licensee’s fee: €100" and "not valid UTF-8" in warning and "Windows-1252" in warning


def test_binary_data_with_a_text_extension_is_refused():
    with pytest.raises(ParseError, match="binary"):
        decode_text(b"\x00\x01\x02PK\x03\x04" * 50)
    with pytest.raises(ParseError, match="binary"):
        decode_text(bytes(range(1, 32)) * 20)


def test_kind_of_names_supported_types():
    assert kind_of("a/b/Contract.PDF") == "pdf" and kind_of("notes.md") == "md"
    with pytest.raises(ParseError, match=r"unsupported file type \(\.docx\)"):
        kind_of("x.docx")
    with pytest.raises(ParseError, match="no extension"):
        kind_of("README")


def _pages(texts: list[str], labels=None) -> tuple[RawPage, ...]:
    labels = labels or [str(i + 1) for i in range(len(texts))]
    return tuple(RawPage(i + 1, label, text) for i, (text, label) in enumerate(zip(texts, labels)))


def test_running_headers_footers_and_page_numbers_go():
    body = ["The Supplier shall deliver the Goods.", "Payment is due in 30 days.", "This Agreement ends in 2030."]
    texts = [f"ACME SUPPLY AGREEMENT – CONFIDENTIAL\n{b}\nPage {i + 1} of 3" for i, b in enumerate(body)]
    doc = clean_pages(_pages(texts))
    assert "CONFIDENTIAL" not in doc.text and "Page 1 of 3" not in doc.text
    for span, b in zip(doc.pages, body):
        assert doc.text[span.start:span.end].startswith(b)


def test_bare_page_numbers_go_but_chapter_numbers_stay():
    texts = [f"Body of page {i}.\nMore.\n{i}" for i in range(1, 5)]
    texts[2] = "3\nINSTALLATION\nMount the drive.\n3"  # chapter 3 starts on page 3
    texts[3] = "7\nWIRING\nConnect the mains.\n4"
    doc = clean_pages(_pages(texts))
    page3 = doc.text[doc.pages[2].start:doc.pages[2].end]
    page4 = doc.text[doc.pages[3].start:doc.pages[3].end]
    assert page3 == "INSTALLATION\nMount the drive." or page3.startswith("3\nINSTALLATION")
    assert page4.startswith("7\nWIRING") and not page4.endswith("4")


def test_hyphenation_whitespace_and_ligatures():
    doc = clean_pages(_pages(["The termi-\nnation fee is  \u00a0 payable\u00ad by the\ufb01rm.\n\n\n\nA self-\nemployed self-employed person."]))
    assert "termination fee is payable by thefirm." in doc.text
    assert "self-employed self-employed" in doc.text  # the document spells it with a hyphen
    assert "\n\n\n" not in doc.text


def test_page_spans_index_the_text():
    doc = clean_pages(_pages(["First page.", "", "Third page."], labels=["i", "ii", "1"]))
    assert [(p.number, p.label) for p in doc.pages] == [(1, "i"), (2, "ii"), (3, "1")]
    assert doc.pages[1].start == doc.pages[1].end
    assert doc.text[doc.pages[2].start:doc.pages[2].end] == "Third page."
