"""Soft hyphens at plausible break points, so justified text hyphenates words across line ends.

fpdf2 breaks a line at a soft hyphen (U+00AD) and prints a hyphen there; unused soft hyphens
vanish. We only offer breaks before common suffixes and after common prefixes: a typesetter's
dictionary would find more, but every break offered here reads naturally ("require-ments",
"termina-tion"), which is what a reader of a real contract sees.
"""

from __future__ import annotations

import re

SOFT_HYPHEN = "\u00ad"

# Longest first, so "ments" wins over "ment" and the break falls before the whole suffix.
SUFFIXES = tuple(sorted((
    "ments", "ment", "tions", "tion", "sions", "sion", "ances", "ance", "ences", "ence",
    "ities", "ity", "able", "ible", "ings", "ing", "ness", "ship", "ized", "ered", "ering",
), key=len, reverse=True))
PREFIXES = ("inter", "under", "counter", "trans", "manu", "there", "where", "with", "non",
            "sub", "over", "out", "super", "pre", "com", "con", "dis", "mis")
MIN_WORD = 9  # shorter words rarely need breaking and look fussy when broken
MIN_PART = 3  # at least three letters on each side of a break

_WORD = re.compile(r"[A-Za-z]+")


def soft_hyphenate(text: str) -> str:
    """Insert soft hyphens into the long lower-case or capitalised words of `text`."""
    return _WORD.sub(lambda m: _hyphenate_word(m.group(0)), text)


def _hyphenate_word(word: str) -> str:
    if len(word) < MIN_WORD or word.isupper():
        return word
    lower = word.lower()
    breaks: set[int] = set()
    for suffix in SUFFIXES:
        if lower.endswith(suffix) and len(word) - len(suffix) >= MIN_PART + 1:
            breaks.add(len(word) - len(suffix))
            break
    for prefix in PREFIXES:
        if lower.startswith(prefix) and len(word) - len(prefix) >= MIN_PART + 2:
            breaks.add(len(prefix))
            break
    breaks = {b for b in breaks if MIN_PART <= b <= len(word) - MIN_PART}
    for cut in sorted(breaks, reverse=True):
        word = word[:cut] + SOFT_HYPHEN + word[cut:]
    return word
