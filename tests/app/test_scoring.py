"""The benchmark's scoring rules (app/scoring.py)."""

from datetime import date

from app.scoring import ANSWER_CAP, contains, extractive_correct, parse_date, party_names, yes_no_correct


def test_dates_in_any_format():
    assert parse_date("9/23/2016") == date(2016, 9, 23)
    assert parse_date("23rd day of September, 2016") == date(2016, 9, 23)
    assert parse_date("Sept. 23, 2016") == date(2016, 9, 23)
    assert extractive_correct("Agreement Date", "“made this 23rd day of  September, 2016 by” [1]", "9/23/2016")
    assert not extractive_correct("Agreement Date", "“dated September 24, 2016” [1]", "9/23/2016")


def test_numbers_and_punctuation_are_normalised():
    assert contains("renews for successive one (1) year periods", "successive 1 year")
    assert contains("the laws of the State of New York.", "New York")
    assert not contains("the laws of the State of New Jersey", "New York")


def test_every_party_must_appear():
    gold = ('The University of Texas M. D. Anderson Cancer Center ("MD Anderson"); Adaptimmune LLC ("Adaptimmune"); '
            '(MD Anderson and Adaptimmune each a “Party” and collectively the “Parties”)')
    assert party_names(gold) == ["The University of Texas M. D. Anderson Cancer Center", "Adaptimmune LLC"]
    both = "between The University of Texas M. D. Anderson Cancer Center and Adaptimmune LLC"
    assert extractive_correct("Parties", both, gold)
    assert not extractive_correct("Parties", "between Adaptimmune LLC and others", gold)


def test_the_cap_and_yes_no():
    assert not contains("x " * ANSWER_CAP + "New York", "New York")
    assert yes_no_correct(True, "yes", cited=True) and not yes_no_correct(True, "yes", cited=False)
    assert yes_no_correct(False, "no", cited=False) and yes_no_correct(False, "", cited=False)
    assert not yes_no_correct(False, "yes", cited=True)


def test_evidence_hit_needs_half_the_words():
    from app.scoring import evidence_hit

    evidence = "This Agreement shall be governed by the laws of the State of New York"
    assert evidence_hit("... 14.1 This Agreement shall be governed by the laws of the State of New York. ...", evidence)
    assert not evidence_hit("This Agreement may be terminated by either party.", evidence)
