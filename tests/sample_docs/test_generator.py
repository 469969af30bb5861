"""The generator's own parts: markup parsing, hyphenation, text normalisation and lookup."""

import pytest
from docgen.hyphenate import SOFT_HYPHEN, soft_hyphenate
from docgen.markup import Heading, MarkupError, Notice, Para, Table, parse
from docgen.render import render
from docgen.text import locate, normalise, repeated_ngram_ratio


def test_markup_blocks():
    source = parse("@title: T\n\n# ARTICLE XII | TERMINATION\n\n## 12.3 | Effect of Termination\n"
                   "Upon expiry, each party\nshall return.\n\n> (a) first\n\n"
                   "[WARNING] Live parts.\n\n[table 30,70]\nCode | Meaning\nF01 | Overcurrent\n")
    assert source.meta == {"title": "T"}
    assert source.blocks == (
        Heading(1, "ARTICLE XII", "TERMINATION"),
        Heading(2, "12.3", "Effect of Termination", "Upon expiry, each party shall return."),
        Para("(a) first", indent=1),
        Notice("WARNING", "Live parts."),
        Table((30.0, 70.0), (("Code", "Meaning"), ("F01", "Overcurrent"))),
    )


@pytest.mark.parametrize("text, message", [
    ("[table 30,70]\nonly one cell\n", "row has 1 cells"),
    ("[frobnicate] x\n", "unknown directive"),
    ("[table 30;70]\na | b\n", "bad table spec"),
    ("#### 1.2.3.4 | Too deep\n", "bad heading"),
])
def test_markup_errors_name_the_line(text, message):
    with pytest.raises(MarkupError, match=f"doc.tmk:1: .*{message}"):
        parse(text, "doc.tmk")


def test_a_document_without_title_is_refused():
    with pytest.raises(MarkupError, match="@title"):
        render(parse("Some text.\n"))


def test_soft_hyphens_only_at_suffix_and_prefix_breaks():
    assert soft_hyphenate("termination") == f"termina{SOFT_HYPHEN}tion"
    assert soft_hyphenate("requirements") == f"require{SOFT_HYPHEN}ments"
    assert soft_hyphenate("the Supplier") == "the Supplier"  # too short to break
    assert soft_hyphenate("INDEMNIFICATION 12.3(a)") == "INDEMNIFICATION 12.3(a)"


def test_normalise_undoes_line_end_hyphenation():
    assert normalise("the termi-\nnation fee\n  of  $5") == "the termination fee of $5"
    assert normalise("a non-\nexclusive “licence”") == normalise('a non-exclusive "licence"')


def test_locate_single_page_and_across_a_page_break():
    pages = ["Header\nalpha beta gamma delta\nepsilon zeta eta theta\nFooter Page 1 of 2",
             "Header\niota kappa lambda mu nu\nFooter Page 2 of 2"]
    assert locate("gamma delta epsilon", pages) == [1]
    assert locate("delta epsilon zeta eta theta iota kappa lambda mu", pages) == [1, 2]
    with pytest.raises(LookupError, match="nowhere"):
        locate("omicron", pages)


def test_repeated_ngram_ratio():
    assert repeated_ngram_ratio(" ".join(f"w{i}" for i in range(50))) == 0.0
    repeated = " ".join(f"w{i}" for i in range(10))
    assert repeated_ngram_ratio(repeated + " x " + repeated) == pytest.approx(6 / 14)
