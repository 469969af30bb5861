"""Sentence and clause boundaries in contract and manual text.

A boundary follows ". ! ? ;" (or ":" before a line break) when the next word starts a sentence,
except after abbreviations ("Inc.", "No.", "U.S.", "e.g.") and initials ("M. D. Anderson"). Line
breaks before a list item or heading ("(a) ", "12.3 ") and blank lines are boundaries too.
"""

import re

_ABBREVIATIONS = {
    "inc", "ltd", "co", "corp", "llc", "l.l.c", "plc", "no", "nos", "sec", "secs", "art", "arts",
    "para", "cl", "fig", "figs", "p", "pp", "vol", "ch", "e.g", "i.e", "etc", "vs", "v", "mr", "mrs",
    "ms", "dr", "st", "jr", "sr", "u.s", "u.k", "n.a", "approx", "min", "max", "dept", "est", "ref",
    "al", "cf", "viz", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}
_CANDIDATE = re.compile(
    r"(?<=[.!?;])[\"”’)\]]*(?=\s+[\"“‘(\[]?[A-Z0-9])"  # end punctuation, then a capital or a number
    r"|(?<=:)(?=\s*\n)"  # a colon ending a line introduces a list
    r"|\n(?=\s*(?:\([a-z0-9ivx]{1,5}\)|\d{1,3}(?:\.\d{1,3})*\.?\s|[•▪●◦\-–*]\s))"  # a list item or number
    r"|\n(?=\s*\n)"  # a blank line
)


def boundaries(text: str) -> list[int]:
    """Offsets where a sentence, clause or paragraph ends (each is the start of what follows)."""
    return [m.end() for m in _CANDIDATE.finditer(text) if not _abbreviation_before(text, m.start())]


def _abbreviation_before(text: str, end: int) -> bool:
    if end == 0 or text[end - 1] != ".":
        return False
    word = re.search(r"([A-Za-z][A-Za-z.]*)\.$", text[max(0, end - 12):end])
    if not word:
        return False
    token = word.group(1)
    return len(token) == 1 or token.lower() in _ABBREVIATIONS
