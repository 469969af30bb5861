"""Facts every contract states in the same place: its title at the top and its parties in
the opening sentence ("This Agreement is made ... by and between X and Y"). Questions about
them are answered from there rather than from retrieval, which ranks such boilerplate low.
"""

import re

from app.citations import Citer
from ingest.sentences import boundaries

TITLE_QUESTION = re.compile(r"\b(?:name|title|called)\b.*\b(?:contract|agreement|document|manual|nda|lease|licen[cs]e)\b", re.I)
PARTIES_QUESTION = re.compile(r"\bwho\b.*\bpart(?:y|ies)\b|\bparties\b.*\b(?:to|of|in)\b.*\b(?:agreement|contract)\b"
                              r"|\bbetween whom\b|^\W*(?:list|name) the parties", re.I)
_PREAMBLE = re.compile(r"\b(?:between|among)\s+(?:the\s+)?[A-Z0-9].{3,600}?\band\b", re.DOTALL)
# A party is named as an organisation or given a defined name: '..., Inc.', '("Supplier")'.
_PARTY = re.compile(
    r"\b(?:Inc|LLC|L\.L\.C|Ltd|Limited|Corporation|Corp|Company|Co|GmbH|AG|plc|LLP|LP|L\.P|N\.A|S\.A|B\.V|"
    r"University|Bank|Trust)\b|\(\s*(?:the\s+|hereinafter\s+)?[“\"][A-Z]"
)
# The opening sentence is looked for in the first this-many characters (a cover page and a
# table of contents can come first).
_PREAMBLE_WITHIN = 30_000
_TOC = re.compile(r"\.{4,}")


def title_span(citer: Citer, doc_id: str) -> tuple[int, int] | None:
    found = citer.locate(citer.title(doc_id), [doc_id])
    return (found.start, found.end) if found else None


def preamble_span(citer: Citer, doc_id: str) -> tuple[int, int] | None:
    """The opening sentence naming the parties, or None."""
    text = citer.text(doc_id)[:_PREAMBLE_WITHIN]
    cuts = [0, *boundaries(text), len(text)]
    for lo, hi in zip(cuts, cuts[1:]):
        sentence = text[lo:hi]
        if _PREAMBLE.search(sentence) and _PARTY.search(sentence) and not _TOC.search(sentence):
            lead = len(sentence) - len(sentence.lstrip())
            return lo + lead, lo + len(sentence.rstrip())
    return None
