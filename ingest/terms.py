"""Defined terms: '"Affiliate" means ...', '... (the "Effective Date")', '"Term" has the meaning
given in Section 2.1'. Each term maps to the span of the sentence or paragraph defining it."""

import re
from dataclasses import dataclass

from ingest.sentences import boundaries

_Q = "\"“”'‘’"
_TERM = rf"[{_Q}]([A-Z][^{_Q}\n]{{0,60}}?)[{_Q}]"
_MEANS = re.compile(
    _TERM + r",?\s+(?:shall\s+)?(?:mean|means|has the meaning|shall have the meaning|have the meaning|"
    r"refers to|shall refer to|includes|shall include|is defined)\b"
)
_INLINE = re.compile(
    r"\((?:the\s+|each\s+(?:a|an)\s+|collectively,?\s+(?:the\s+)?|together,?\s+(?:the\s+)?|"
    r"hereinafter(?:\s+referred\s+to\s+as)?,?\s+(?:the\s+)?|herein,?\s+(?:the\s+)?|individually\s+(?:a|an)\s+|"
    r"referred\s+to\s+(?:herein\s+)?as\s+(?:the\s+)?|or\s+(?:the\s+)?|each,?\s+(?:a|an|the)\s+)?"
    + _TERM + r"[^)]{0,80}\)"
)
# Where a "means" definition ends when nothing else ends it first: the end of its paragraph,
# but no further than this many characters (a definition with a long list of sub-clauses).
_MAX_DEFINITION = 2500
# An inline definition's sentence is looked for within this many characters around it.
_SENTENCE_WINDOW = 1500


@dataclass(frozen=True)
class Definition:
    term: str
    start: int
    end: int
    kind: str  # "means" (a definition clause) or "inline" (a parenthetical in a sentence)


def find_definitions(text: str, heading_starts: list[int]) -> list[Definition]:
    """Every defined term's first definition; "means" clauses win over inline parentheticals."""
    means = list(_MEANS.finditer(text))
    found: dict[str, Definition] = {}
    starts = sorted(heading_starts + [_line_start(text, m.start()) for m in means])
    for match in means:
        start = _line_start(text, match.start())
        if text[start:match.start()].strip(" \t(0123456789.)abcdefghijklmnopqrstuvwxyz") != "":
            start = match.start()  # the term sits mid-line: the definition starts at its quote
        end = _definition_end(text, match.end(), starts)
        found.setdefault(match.group(1).strip().lower(), Definition(match.group(1).strip(), start, end, "means"))
    for match in _INLINE.finditer(text):
        key = match.group(1).strip().lower()
        if key not in found:
            start, end = _sentence_span(text, match.start(), match.end())
            found[key] = Definition(match.group(1).strip(), start, end, "inline")
    return sorted(found.values(), key=lambda d: d.start)


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _definition_end(text: str, offset: int, starts: list[int]) -> int:
    """The end of a "means" definition: the next definition or heading, or the paragraph's end."""
    limit = min(len(text), offset + _MAX_DEFINITION)
    following = next((s for s in starts if s > offset), limit)
    paragraph = text.find("\n\n", offset)
    end = min([following, limit] + ([paragraph] if paragraph != -1 else []))
    while end > offset and text[end - 1].isspace():
        end -= 1
    return end


def _sentence_span(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence around text[start:end]."""
    low = max(0, start - _SENTENCE_WINDOW)
    window = text[low:min(len(text), end + _SENTENCE_WINDOW)]
    cuts = [low + cut for cut in boundaries(window)]
    begin = max([cut for cut in cuts if cut <= start], default=low)
    finish = min([cut for cut in cuts if cut >= end], default=low + len(window))
    while begin < start and text[begin].isspace():
        begin += 1
    return begin, finish
