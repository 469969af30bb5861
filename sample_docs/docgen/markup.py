"""The small markup the sample documents are written in, parsed into blocks.

A source file starts with `@key: value` metadata lines; the rest is blocks separated by blank
lines. A block's first line says what it is:

    [cover] ... [/cover]        cover page lines, each optionally prefixed {size} or {size b}
    [toc]                       the table of contents (front matter, roman page labels)
    [newpage]                   a page break
    # ARTICLE XII | TERMINATION an article/chapter heading (`#!` starts a new page)
    ## 12.3 | Effect of ...     a section heading; with text lines after it in the same block the
                                heading is run in ("12.3 Effect of Termination. Upon ...")
    ### 4.2.1 | Clearances      a subsection heading (on its own line even when text follows it)
    > (a) text                  an indented paragraph (one level per `>`)
    [center] text               a centred paragraph ([right] likewise)
    [WARNING] text              a boxed notice (also CAUTION, NOTE, IMPORTANT)
    [table 20,30,50] / [grid 50,50]   a table (first row is the heading) or a borderless grid;
                                then one row per line, cells separated by ` | `
    anything else               a justified paragraph (its lines are joined with spaces)

`**bold**` marks bold text inside paragraphs (defined terms, run-in headings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


class MarkupError(ValueError):
    """A source file that does not follow the markup; the message names the file and line."""


@dataclass(frozen=True)
class Heading:
    level: int  # 1 article/chapter, 2 section, 3 subsection
    number: str  # "ARTICLE XII", "12.3", "4.2.1" or "" for unnumbered headings
    title: str
    text: str = ""  # the paragraph under the heading (run in after a level-2 heading)
    new_page: bool = False


@dataclass(frozen=True)
class Para:
    text: str
    indent: int = 0
    align: str = "J"


@dataclass(frozen=True)
class Notice:
    kind: str
    text: str


@dataclass(frozen=True)
class Table:
    widths: tuple[float, ...]
    rows: tuple[tuple[str, ...], ...]
    borders: bool = True


@dataclass(frozen=True)
class Cover:
    lines: tuple[tuple[float, bool, str], ...]  # (font size, bold, text); text "" is a gap


@dataclass(frozen=True)
class Toc:
    pass


@dataclass(frozen=True)
class PageBreak:
    pass


Block = Heading | Para | Notice | Table | Cover | Toc | PageBreak

NOTICE_KINDS = ("WARNING", "CAUTION", "NOTE", "IMPORTANT")


@dataclass(frozen=True)
class Source:
    meta: dict[str, str]
    blocks: tuple[Block, ...] = field(default_factory=tuple)


def parse_files(paths: list[Path]) -> Source:
    """Parse several files as one document; metadata may come from any of them."""
    meta: dict[str, str] = {}
    blocks: list[Block] = []
    for path in paths:
        source = parse(path.read_text(encoding="utf-8"), str(path))
        meta.update(source.meta)
        blocks.extend(source.blocks)
    return Source(meta, tuple(blocks))


def parse(text: str, name: str = "<text>") -> Source:
    meta: dict[str, str] = {}
    blocks: list[Block] = []
    for lineno, lines in _raw_blocks(text):
        if lines[0].startswith("@"):
            for line in lines:
                key, sep, value = line[1:].partition(":")
                if not sep:
                    raise MarkupError(f"{name}:{lineno}: metadata line needs 'key: value': {line!r}")
                meta[key.strip()] = value.strip()
            continue
        try:
            blocks.append(_block(lines))
        except ValueError as err:
            raise MarkupError(f"{name}:{lineno}: {err}") from None
    return Source(meta, tuple(blocks))


def _raw_blocks(text: str):
    """Yield (first line number, lines) per block; a [cover] block may hold blank lines."""
    block: list[str] = []
    start = 0
    in_cover = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if line.startswith("%"):  # comment line
            continue
        if not block:
            start = lineno
            in_cover = line == "[cover]"
        if in_cover:
            block.append(line)
            if line == "[/cover]":
                yield start, block
                block, in_cover = [], False
            continue
        if line.strip():
            block.append(line)
        elif block:
            yield start, block
            block = []
    if in_cover:
        raise MarkupError(f"line {start}: [cover] is never closed")
    if block:
        yield start, block


def _block(lines: list[str]) -> Block:
    first = lines[0]
    if first == "[cover]":
        return Cover(tuple(_cover_line(line) for line in lines[1:-1]))
    if first == "[toc]":
        return Toc()
    if first == "[newpage]":
        return PageBreak()
    if first.startswith("#"):
        return _heading(lines)
    if first.startswith(("[table", "[grid")):
        return _table(lines)
    kind = re.match(r"\[(\w+)\]\s*", first)
    if kind and kind.group(1) in NOTICE_KINDS:
        return Notice(kind.group(1), _join([first[kind.end():], *lines[1:]]))
    if kind and kind.group(1) in ("center", "right"):
        return Para(_join([first[kind.end():], *lines[1:]]), align=kind.group(1)[0].upper())
    if kind:
        raise ValueError(f"unknown directive [{kind.group(1)}]")
    indent = len(first) - len(first.lstrip(">"))
    return Para(_join([first[indent:], *lines[1:]]), indent=indent)


def _cover_line(line: str) -> tuple[float, bool, str]:
    spec = re.match(r"\{(\d+(?:\.\d+)?)( b)?\}\s*", line)
    if not spec:
        return (11.0, False, line.strip())
    return (float(spec.group(1)), bool(spec.group(2)), line[spec.end():].strip())


def _heading(lines: list[str]) -> Heading:
    marks = re.match(r"(#{1,3})(!?)\s+", lines[0])
    if not marks:
        raise ValueError(f"bad heading {lines[0]!r}")
    number, bar, title = lines[0][marks.end():].partition("|")
    if not bar:
        number, title = "", number
    level = len(marks.group(1))
    return Heading(level, number.strip(), title.strip(), _join(lines[1:]), bool(marks.group(2)))


def _table(lines: list[str]) -> Table:
    spec = re.fullmatch(r"\[(table|grid) ([\d.,]+)\]", lines[0])
    if not spec:
        raise ValueError(f"bad table spec {lines[0]!r}")
    widths = tuple(float(w) for w in spec.group(2).split(","))
    # A cell may be empty (a form to fill in): the line then ends with " |".
    rows = tuple(tuple(cell.strip() for cell in re.split(r" \|(?: |$)", line))
                 for line in lines[1:])
    for row in rows:
        if len(row) != len(widths):
            raise ValueError(f"row has {len(row)} cells, table has {len(widths)}: {row[0]!r}")
    return Table(widths, rows, borders=spec.group(1) == "table")


def _join(lines: list[str]) -> str:
    return " ".join(line.strip() for line in lines if line.strip())
