"""Headings, section paths, section lookups and defined terms."""

from ingest.structure import contents_tables, find_headings, section_key
from ingest.terms import find_definitions

MANUAL = """TABLE OF CONTENTS
1 SAFETY ........ 3
2 INSTALLATION ........ 5
2.1 Location ........ 5
3
SAFETY
3.1 Qualified Personnel
Only qualified electricians may install the drive.
WARNING
Disconnect the supply before opening the cover.
3.2 Electrical Hazards
Capacitors hold a charge for 5 minutes.
2.5 mm cables are not allowed here.
4 INSTALLATION
4.1 Location
Position Example Meaning
1 VL5 Product series: VectorLine VL-500
4.1.1 Clearances
Leave 100 mm above and below the drive.
"""


def _paths(text):
    return [(h.key, h.path) for h in find_headings(text)]


def test_contract_outline(contract_text):
    headings = {h.key: h for h in find_headings(contract_text)}
    assert headings["article:12"].path == "Article 12 TERMINATION"
    assert headings["12.3"].path == "Article 12 TERMINATION > 12.3 Effect of Termination"
    assert headings["9.2(b)"].path.endswith("9.2 Exceptions > 9.2(b) was known to the receiving party …")
    assert headings["exhibit:a"].title == "SERVICE DESCRIPTION"
    assert headings["1"].path == "Exhibit A SERVICE DESCRIPTION > 1 Support"
    section = headings["9.2"]
    assert contract_text[section.start:section.end].endswith("required to be disclosed by law.")


def test_manual_outline_skips_contents_tables_and_quantities():
    found = _paths(MANUAL)
    keys = [k for k, _ in found]
    assert keys == ["", "3", "3.1", "3.2", "4", "4.1", "4.1.1"]
    assert dict(found)["4.1.1"] == "4 INSTALLATION > 4.1 Location > 4.1.1 Clearances"
    assert "WARNING" not in " ".join(p for _, p in found)


def test_wrapped_cross_references_and_inline_enumerations_are_not_headings():
    text = (
        "7.1 Payment. Fees are due as set out in Section\n"
        "7.2 hereof and subject to the following: (a) the invoice is correct; (b) it is\n"
        "(c) undisputed.\n7.2 Late Payment. Interest accrues.\n"
    )
    assert [k for k, _ in _paths(text)] == ["7.1", "7.2"]
    capitals = (
        "ARTICLE 20\nLIMITATION OF LIABILITY\n20.1 Exclusions. None.\n"
        "20.2 Cap on Liability. EACH PARTY'S TOTAL LIABILITY IS LIMITED TO THE FEES. AMOUNTS PAYABLE FOR\n"
        "MATERIALS UNDER SECTION 6.5 AND FOR DEDICATED CAPITAL EQUIPMENT UNDER\n"
        "SECTION 11.5 DO NOT COUNT TOWARDS OR REDUCE THE CAP.\n20.3 Exceptions. None.\n"
    )
    assert [k for k, _ in _paths(capitals)] == ["article:20", "20.1", "20.2", "20.3"]
    assert [k for k, _ in _paths("Fees are due.\nSection 4.2 Late Payment\nInterest accrues.\n")] == ["4.2"]
    definitions = (
        'ARTICLE 1\nDEFINITIONS\n1.1 Definitions. "Forecast" means the forecast provided under\nSection 4.1.\n'
        "1.2 Interpretation. Headings do not count.\n"
    )
    assert [k for k, _ in _paths(definitions)] == ["article:1", "1.1", "1.2"]


def test_contents_tables_are_found_and_tables_of_fees_are_not():
    (start, end), = contents_tables(MANUAL)
    assert MANUAL[start:end] == MANUAL[:MANUAL.index("\n3\n")]  # the title line through the last entry
    untitled = "Intro.\n1 Scope ........ 1\nARTICLE 2 FEES ........ 3\n3 Term ........ 15\nBody text.\n"
    assert [untitled[a:b] for a, b in contents_tables(untitled)] == [untitled[7:untitled.index("\nBody")]]
    fees = "Fees\nSetup fee ........ 500\nMonthly fee ........ 120\nPer unit fee ........ 15\nOther text.\n"
    quantities = "Delivery plan\nLot one units 40\nLot two units 25\nLot three units 60\n"
    assert contents_tables(fees) == [] and contents_tables(quantities) == []


def test_section_keys():
    assert section_key("Section 9.02") == ["9.2"]
    assert section_key("§ 12.3(a)") == ["12.3(a)"]
    assert section_key("Article IV") == ["article:4"]
    assert section_key("9") == ["9", "article:9"]
    assert section_key("exhibit b") == ["exhibit:b"]
    assert section_key("the termination clause") == []


def test_defined_terms(contract_text):
    found = {d.term: contract_text[d.start:d.end] for d in find_definitions(contract_text, [])}
    assert found["Confidential Information"].startswith('1.1 "Confidential Information" means all non-public')
    assert found["Customer"].startswith("This Master Services Agreement")
    assert found["Services"].endswith("described in Exhibit A.")
    text = 'The parties (each a “Party” and together the “Parties”) agree. Affiliates are "Affiliate" means any controlled entity.'
    terms = {d.term for d in find_definitions(text, [])}
    assert {"Party", "Affiliate"} <= terms
