"""How the benchmark decides that an answer is right (app/bench.py), written to be tested.

- Answers are cut to ANSWER_CAP characters first: quoting a whole contract scores nothing.
- Text is compared normalised: lower case, curly quotes and dashes folded, hyphenation at line
  ends joined, punctuation dropped, "one (1)" and "one" read as "1".
- A date matches when a date written in the answer, in any usual format, is the gold date.
- Parties: every party name of the gold answer (its "; "-separated names, aliases in brackets
  and quotes removed) must appear.
- A yes/no question needs the verdict, and for "yes" at least one citation (the supporting
  quote); for a question the document does not answer, saying it is not covered (or "no") is
  right.
"""

import re
from datetime import date

from app.evidence import DATE

ANSWER_CAP = 1000

_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "eighteen": 18, "twenty": 20, "thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "sixty": 60,
    "ninety": 90, "hundred": 100,
}
_MONTHS = {m: i for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}


def normalise(text: str) -> str:
    text = text.lower().replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", text)
    text = re.sub(r"\b[a-z-]+\s+\((\d+)\)", r"\1", text)  # "thirty (30)" -> "30"
    text = re.sub(r"\b[a-z]+(?:-[a-z]+)?\b", lambda m: str(_NUMBERS.get(m.group(0), m.group(0))), text)
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def contains(answer: str, gold: str, cap: int | None = ANSWER_CAP) -> bool:
    return bool(normalise(gold)) and f" {normalise(gold)} " in f" {normalise(answer[:cap])} "


def dates_in(text: str) -> set[date]:
    found = set()
    for match in DATE.finditer(text):
        parsed = parse_date(match.group(0))
        if parsed:
            found.add(parsed)
    return found


def parse_date(text: str) -> date | None:
    text = text.strip().lower().replace(",", " ")
    numeric = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{2,4})", text)
    if numeric:
        month, day, year = (int(g) for g in numeric.groups())
        year += 2000 if year < 50 else 1900 if year < 100 else 0
        return _date(year, month, day)
    iso = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text)
    if iso:
        return _date(*(int(g) for g in iso.groups()))
    words = re.findall(r"[a-z]+|\d+", text)
    month = next((_MONTHS[w[:3]] for w in words if w[:3] in _MONTHS and not w.isdigit() and w not in ("day", "of")), None)
    numbers = [int(w) for w in words if w.isdigit()]
    year = next((n for n in numbers if n > 1000), None)
    day = next((n for n in numbers if n <= 31), None)
    return _date(year, month, day) if month and year and day else None


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def party_names(gold: str) -> list[str]:
    """The names in a CUAD Parties answer: '; '-separated, aliases in brackets or quotes removed."""
    names = []
    for part in gold.split(";"):
        name = re.sub(r"\([^)]*\)|[\"“][^\"”]*[\"”]", " ", part)
        name = " ".join(name.replace("(", " ").replace(")", " ").split()).strip(" ,.")
        if len(re.findall(r"[A-Za-z]{2,}", name)) >= 1 and normalise(name) not in ("party", "parties"):
            names.append(name)
    return names


def extractive_correct(category: str, answer: str, gold: str, cap: int | None = ANSWER_CAP) -> bool:
    """A CUAD extractive answer (Document Name, Parties, dates, terms, Governing Law)."""
    answer = answer[:cap]
    if category.endswith("Date"):
        wanted = parse_date(gold)
        return wanted is not None and wanted in dates_in(answer) or contains(answer, gold, cap)
    if category == "Parties":
        names = party_names(gold)
        return bool(names) and all(contains(answer, name, cap) for name in names)
    return contains(answer, gold, cap)


def evidence_hit(passage: str, evidence: str) -> bool:
    """Whether a retrieved passage holds at least half of an evidence span's content words."""
    words = [w for w in normalise(evidence).split() if len(w) > 2]
    held = set(normalise(passage).split())
    return bool(words) and sum(w in held for w in words) >= len(words) / 2


def yes_no_correct(gold_yes: bool, verdict: str, cited: bool) -> bool:
    return verdict == "yes" and cited if gold_yes else verdict != "yes"
