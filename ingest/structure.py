"""Headings of contracts and manuals: ARTICLE IV, Section 12.3, 12.3(a), 1.1.2, CAPS HEADINGS,
Exhibit A, Markdown #'s. Each heading gets a level, a path and the span of its section.

Numbered headings are accepted only when they continue the numbering seen so far (12.2 -> 12.3,
12.3 -> 12.3.1 or 13, a restart at 1 after an exhibit), which keeps table rows, quantities
("2.5 mm") and wrapped cross-references ("Section\\n9.2 hereof") out of the outline.
"""

import re
from dataclasses import dataclass

_CONTAINER = re.compile(
    r"^(ARTICLE|Article|PART|Part|CHAPTER|Chapter|SCHEDULE|Schedule|EXHIBIT|Exhibit|ANNEX|Annex|"
    r"APPENDIX|Appendix|ATTACHMENT|Attachment|ADDENDUM|Addendum)\s+([IVXLC]+|\d{1,3}|[A-Z](?:-?\d{1,2})?)"
    r"(?![\w.])\.?\s*[-–—:.]?\s*(.*)$"
)
_SECTION_WORD = re.compile(r"^(?:SECTION|Section|Sec\.|§)\s*(\d{1,3}(?:\.\d{1,3}){0,4})\.?\s*[-–—:.]?\s*(.*)$")
_NUMBERED = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){0,4})(\.?)\s+(\S.*)$")
_CLAUSE = re.compile(r"^\(([a-z]{1,2}|[ivx]{1,5}|\d{1,2})\)\s+(\S.*)$")
_MARKDOWN = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
_TOC_ENTRY = re.compile(r"(^|\s\.{2,}\s*|\s)\d{1,3}$")
_LEADER = re.compile(r"(?:\.\s?){4,}(\d{1,3})$")  # "Governing Law ........ 14"
_CONTENTS_TITLE = re.compile(r"(?:table\s+of\s+)?contents:?", re.I)
_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}
_ROMAN_CLAUSES = {"i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii"}
_ADMONITIONS = {"WARNING", "CAUTION", "NOTE", "NOTICE", "DANGER", "IMPORTANT", "TIP"}
# A numbered heading may skip this many numbers (one lost to extraction, a deleted section).
_MAX_GAP = 3


@dataclass(frozen=True)
class Heading:
    start: int  # offset of the heading line in the text
    kind: str  # container, numbered, clause, caps, markdown
    number: str  # as printed: "IV", "12.3", "12.3(a)", "A"; "" for caps and Markdown
    key: str  # normalised for lookup: "article:4", "12.3", "12.3(a)", "exhibit:a"
    title: str
    level: int
    path: str = ""
    end: int = 0


def find_headings(text: str) -> list[Heading]:
    """Headings in document order, with paths and section ends filled in."""
    return _with_spans(_Scanner().scan(text), text)


def section_key(reference: str) -> list[str]:
    """Lookup keys a user's reference may mean: "Section 9.02" -> ["9.2"], "Article IV" ->
    ["article:4"], "9" -> ["9", "article:9"]."""
    ref = " ".join(reference.split()).strip(" .")
    container = _CONTAINER.match(ref[:1].upper() + ref[1:]) or _CONTAINER.match(ref.upper())
    if container and not container.group(3):
        return [f"{container.group(1).lower()}:{_container_number(container.group(2))}"]
    ref = re.sub(r"^(section|sec\.?|clause|§)\s*", "", ref, flags=re.I)
    match = re.fullmatch(r"(\d{1,3}(?:\.\d{1,3})*)\.?((?:\([a-z0-9]{1,5}\))*)", ref, re.I)
    if not match:
        return []
    key = _numbered_key(match.group(1)) + match.group(2).lower()
    return [key, f"article:{key}"] if "." not in key and "(" not in key else [key]


def _numbered_key(number: str) -> str:
    return ".".join(str(int(part)) for part in number.split("."))


def _container_number(label: str) -> str:
    """Roman and Arabic numerals as integers ("IV" -> "4"), letters as lower case ("A" -> "a")."""
    if label.isdigit():
        return str(int(label))
    if re.fullmatch(r"[IVXLC]+", label) and label not in {"C", "L"}:
        return str(_roman(label.lower()))
    return label.lower()


def _roman(text: str) -> int:
    total = 0
    for ch, nxt in zip(text, text[1:] + " "):
        value = _ROMAN[ch]
        total += -value if nxt != " " and _ROMAN[nxt] > value else value
    return total


def contents_tables(text: str) -> list[tuple[int, int]]:
    """Spans of the tables of contents in `text`, a "Contents" title line above one included.
    Such a list names sections and their pages without holding them, so it is kept out of the
    chunks. A run of lines ending in numbers counts only under such a title or with dot leaders
    to ascending page numbers: a table of quantities or fees must stay searchable."""
    lines = _lines(text)
    spans = []
    for first, last in _toc_blocks([line for _, line in lines]):
        above = [i for i in range(max(0, first - 2), first) if _CONTENTS_TITLE.fullmatch(lines[i][1])]
        pages = [int(m.group(1)) for _, line in lines[first:last + 1] if (m := _LEADER.search(line))]
        if above or (len(pages) >= 3 and pages == sorted(pages)):
            end = text.find("\n", lines[last][0])
            spans.append((lines[above[0] if above else first][0], len(text) if end < 0 else end))
    return spans


def _lines(text: str) -> list[tuple[int, str]]:
    """The non-blank lines of `text`, stripped, with their start offsets."""
    found = ((m.start(), m.group().strip()) for m in re.finditer(r"[^\n]+", text))
    return [(start, line) for start, line in found if line]


def _toc_lines(lines: list[str]) -> set[int]:
    """Indices of the lines in tables of contents (see `_toc_blocks`)."""
    return {i for first, last in _toc_blocks(lines) for i in range(first, last + 1)}


def _toc_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line indices of tables of contents: runs of at least 3 short lines ending in
    page numbers, with up to 3 other lines between them (wrapped titles, bare page numbers)."""
    bare = [bool(re.fullmatch(r"\d{1,3}", line)) for line in lines]
    anchors = [
        i for i, line in enumerate(lines)
        if not bare[i] and 3 <= len(line.split()) <= 14 and _TOC_ENTRY.search(line)
        # "ARTICLE 9" above its title line is no entry; "ARTICLE 9 FEES ........ 12" is one.
        and (not _CONTAINER.fullmatch(line) or _LEADER.search(line))
    ]
    blocks, block = [], []
    for i in anchors:
        if block and sum(not b for b in bare[block[-1] + 1:i]) > 3:
            blocks.append(block)
            block = []
        block.append(i)
    blocks.append(block)
    return [(block[0], block[-1]) for block in blocks if len(block) >= 3]


def _title(rest: str) -> str:
    """The heading's title from the rest of its line: "Effect of Termination. Upon ..." -> its
    first sentence, or a defined term, shortened to a dozen words."""
    rest = rest.strip()
    quoted = re.match(r'^["“]([^"”]{1,80})["”]', rest)
    if quoted:
        return quoted.group(1)
    first = re.split(r"(?<=[a-z)\]])\.\s|:\s|\.$", rest, maxsplit=1)[0].strip(" .:-–—")
    words = first.split()
    # A short first sentence is a title ("Effect of Termination"); a long one is the body of an
    # untitled section, shown by its first words.
    return first if len(words) <= 8 else " ".join(words[:6]) + " …"


def _heading_like(rest: str) -> bool:
    return bool(rest) and (rest[0].isupper() or rest[0] in "\"“(")


def _is_caps_heading(line: str) -> bool:
    letters = [ch for ch in line if ch.isalpha()]
    words = line.split()
    return (
        len(letters) >= 4
        and len(letters) >= 0.6 * len(line.replace(" ", ""))  # not a code or a postcode
        and all(ch.isupper() for ch in letters)
        and line[0] not in "\"“'‘("
        and len(words) <= 10
        and (len(words) > 1 or len(letters) >= 5)
        and not line[0].isdigit()
        and line[-1] not in ",;:"
        and ":" not in line
        and line.strip(" .!") not in _ADMONITIONS
        and not _TOC_ENTRY.search(line)
    )


class _Scanner:
    """Walks the lines once, keeping the numbering state that decides which numbers are headings."""

    def __init__(self):
        self.numbers: list[int] = []  # the current numbered position, e.g. [12, 3]
        self.letter = ""  # last (a)-clause letter within the current numbered section
        self.roman = 0
        self.headings: list[Heading] = []
        self.pending_container: Heading | None = None  # "ARTICLE 4" awaiting a title line
        self.pending_number: tuple[str, int] | None = None  # a line holding only "3", and its offset
        self.after_break = True  # the line being read follows a sentence end or a blank line

    def scan(self, text: str) -> list[Heading]:
        lines = _lines(text)
        toc = _toc_lines([line for _, line in lines])
        previous = ""
        for i, (start, line) in enumerate(lines):
            if i not in toc:
                after_break = not previous or previous[-1] in ".:;!?" or text[start - 2:start] == "\n\n"
                self._line(line, start, after_break)
            previous = line
        return self.headings

    def _line(self, line: str, start: int, after_break: bool) -> None:
        if self.pending_container is not None:
            pending, self.pending_container = self.pending_container, None
            if _is_caps_heading(line) or (len(line.split()) <= 8 and _heading_like(line) and line[-1] != "."):
                self.headings[-1] = Heading(**{**pending.__dict__, "title": _title(line)})
                return
        if self.pending_number is not None:
            number, number_start = self.pending_number
            self.pending_number = None
            if _is_caps_heading(line) and self._numbered(f"{number} {line}", number_start):
                return
        if re.fullmatch(r"\d{1,3}", line):
            self.pending_number = (line, start)  # a chapter number above its title
            return
        self.after_break = after_break
        rules = (self._markdown, self._container, self._section_word, self._numbered, self._clause)
        if any(rule(line, start) for rule in rules):
            return
        if after_break and _is_caps_heading(line):
            self._add(start, "caps", "", "", line.rstrip("."), 2)

    def _add(self, start: int, kind: str, number: str, key: str, title: str, level: int) -> None:
        self.headings.append(Heading(start=start, kind=kind, number=number, key=key, title=title, level=level))

    def _markdown(self, line: str, start: int) -> bool:
        match = _MARKDOWN.match(line)
        if match:
            self._add(start, "markdown", "", "", match.group(2), len(match.group(1)))
        return bool(match)

    def _container(self, line: str, start: int) -> bool:
        match = _CONTAINER.match(line)
        if not match:
            return False
        word, label, rest = match.groups()
        if rest and _TOC_ENTRY.search(rest) and len(line.split()) <= 12 and not rest.endswith("."):
            return True  # a table-of-contents entry: neither a heading nor body text
        short_title = len(rest.split()) <= 10 and not rest.endswith(".")
        if rest and not (line.isupper() or (short_title and _heading_like(rest))):
            return False  # "Exhibit A attached hereto ..." wrapped onto a new line
        kind = word.lower()
        value = _container_number(label)
        self._add(start, "container", label, f"{kind}:{value}", _title(rest), 1)
        if kind in {"article", "part", "chapter"} and value.isdigit():
            self.numbers = [int(value)]
        else:
            self.numbers = []  # exhibits and schedules restart their own numbering
        self.letter, self.roman = "", 0
        if not rest:
            self.pending_container = self.headings[-1]
        return True

    def _section_word(self, line: str, start: int) -> bool:
        match = _SECTION_WORD.match(line)
        if not match or (match.group(2) and not _heading_like(match.group(2))):
            return False
        if match.group(2) and _TOC_ENTRY.search(match.group(2)) and len(line.split()) <= 12:
            return True
        parts = [int(p) for p in match.group(1).split(".")]
        if not self.after_break and not (match.group(2) and self._continues(parts)):
            # A wrapped sentence: "... provided under\nSection 4.1.", "... EQUIPMENT UNDER\nSECTION
            # 11.5 DO NOT COUNT ...".
            return False
        self._accept_number(start, match.group(1), parts, match.group(2))
        return True

    def _numbered(self, line: str, start: int) -> bool:
        match = _NUMBERED.match(line)
        if not match or not _heading_like(match.group(3)):
            return False
        number, dot, rest = match.groups()
        parts = [int(p) for p in number.split(".")]
        if len(parts) == 1 and not dot and len(rest.split()) > 8:
            return False  # "3 Business Days after ..." is a wrapped sentence, not a heading
        if _TOC_ENTRY.search(rest) and len(rest.split()) <= 12:
            return True
        if not (self._continues(parts) or self._restarts(parts, rest) or self._opens(parts, rest)):
            return False
        self._accept_number(start, number, parts, rest)
        return True

    def _continues(self, parts: list[int]) -> bool:
        current = self.numbers
        k = next((i for i, (a, b) in enumerate(zip(parts, current)) if a != b), min(len(parts), len(current)))
        if k == len(parts):
            return False  # a repeat of the current number or one of its ancestors
        if k < len(current):
            ok = current[k] < parts[k] <= current[k] + _MAX_GAP
        else:
            ok = parts[k] in (0, 1) or (not current and parts[k] <= 2)
        return ok and all(p in (0, 1) for p in parts[k + 1:])

    def _opens(self, parts: list[int], rest: str) -> bool:
        """The first numbered heading of a document that does not start at 1 (an excerpt, a
        chapter file): only a top-level number with a short, heading-cased title."""
        title = _title(rest)
        return (
            not self.numbers and not self.headings_numbered and parts[0] <= 50 and all(p in (0, 1) for p in parts[1:])
            and len(title.split()) <= 6 and ":" not in rest and (title.isupper() or title.istitle())
        )

    @property
    def headings_numbered(self) -> bool:
        return any(h.kind == "numbered" for h in self.headings)

    def _restarts(self, parts: list[int], rest: str) -> bool:
        """A fresh "1." / "1.1" numbering (a schedule without its own heading), only for a short
        heading-like line: a table row ("1 VL5 Product series: ...") is not one."""
        title = _title(rest)
        return (
            all(p == 1 for p in parts) and len(title.split()) <= 6 and ":" not in rest
            and not rest.endswith(",") and (title.isupper() or title.istitle())
        )

    def _accept_number(self, start: int, number: str, parts: list[int], rest: str) -> None:
        self.numbers = parts
        self.letter, self.roman = "", 0
        self._add(start, "numbered", number.rstrip("."), _numbered_key(number.rstrip(".")), _title(rest), len(parts) + 1)

    def _clause(self, line: str, start: int) -> bool:
        match = _CLAUSE.match(line)
        if not match or not self.numbers:
            return False
        label, rest = match.groups()
        parent = ".".join(str(p) for p in self.numbers)
        depth = len(self.numbers) + 1
        next_letter = chr(ord(self.letter) + 1) if self.letter else "a"
        if label in _ROMAN_CLAUSES and label != next_letter:
            if _roman(label) != self.roman + 1:
                return False  # "(iv)" wrapped to a line start mid-sentence, not a clause
            self.roman = _roman(label)
            prefix = f"{parent}({self.letter})" if self.letter else parent
            self._add(start, "clause", f"{prefix}({label})", f"{prefix}({label})", _title(rest), depth + (2 if self.letter else 1))
        elif label == next_letter:
            self.letter, self.roman = label, 0
            self._add(start, "clause", f"{parent}({label})", f"{parent}({label})", _title(rest), depth + 1)
        else:
            return False
        return True


def _label(heading: Heading) -> str:
    if heading.kind == "container":
        word = heading.key.split(":")[0].title()
        return f"{word} {heading.number} {heading.title}".strip()
    return f"{heading.number} {heading.title}".strip()


def _trim_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _closes(open_heading: Heading, heading: Heading) -> bool:
    """Whether `heading` ends the section of `open_heading`: same or higher level, or numbering
    that is not nested in it (5.1.1 after 4.12 when 5 and 5.1 were lost to extraction)."""
    if open_heading.level >= heading.level:
        return True
    numbered = ("numbered", "clause")
    return (
        open_heading.kind in numbered and heading.kind in numbered
        and not heading.key.startswith(open_heading.key + ".")
        and not heading.key.startswith(open_heading.key + "(")
    )


def _with_spans(headings: list[Heading], text: str) -> list[Heading]:
    """Fill in each heading's path and the end of its section (trailing whitespace left out)."""
    paths, ends = [], [len(text)] * len(headings)
    stack: list[int] = []
    for i, heading in enumerate(headings):
        while stack and _closes(headings[stack[-1]], heading):
            ends[stack.pop()] = heading.start
        stack.append(i)
        paths.append(" > ".join(_label(headings[j]) for j in stack))
    ends = [_trim_end(text, h.start, end) for h, end in zip(headings, ends)]
    return [Heading(**{**h.__dict__, "path": path, "end": end}) for h, path, end in zip(headings, paths, ends)]
