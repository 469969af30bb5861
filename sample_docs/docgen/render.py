"""Lay out a parsed source as a PDF that looks like a real contract or manual.

Cover and table of contents are front matter, labelled i, ii, ... in the PDF /PageLabels; the
body restarts at 1, so printed page numbers differ from physical page indexes. Every page but the
cover carries a running header (short title) and footer ("Page 12 of 31"). Rendering runs twice:
the first pass learns the body's page count and the body page of each heading, the second prints
them in the footers and the table of contents. The body always starts on a fresh page and its
numbers count from there, so a longer table of contents cannot move anything in the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from fpdf import FPDF
from fpdf.enums import TableBordersLayout

from .hyphenate import soft_hyphenate
from .markup import Cover, Heading, MarkupError, Notice, PageBreak, Para, Source, Table, Toc

INDENT_MM = 9  # one sub-clause level, roughly the width of "(iv) " plus a gutter
KEEP_WITH_NEXT_MM = 28  # a heading needs room for itself and two lines of its text


@dataclass(frozen=True)
class Style:
    font: str
    size: float
    line_height: float  # mm
    header_left: str
    header_right: str
    footer_left: str
    toc_depth: int
    title: str
    author: str
    subject: str
    created: datetime

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> Style:
        if "title" not in meta:
            raise MarkupError("a document needs an '@title:' metadata line (the PDF title)")
        font, _, size = meta.get("font", "Times 11").partition(" ")
        return cls(
            font=font,
            size=float(size or 11),
            line_height=float(meta.get("line_height", "5.3")),
            header_left=meta.get("header", ""),
            header_right=meta.get("header_right", ""),
            footer_left=meta.get("footer", ""),
            toc_depth=int(meta.get("toc_depth", "2")),
            title=meta["title"],
            author=meta.get("author", ""),
            subject=meta.get("subject", ""),
            created=datetime.fromisoformat(meta.get("date", "2024-01-02")).replace(
                tzinfo=timezone.utc),
        )


@dataclass(frozen=True)
class TocEntry:
    level: int
    text: str
    page: int  # printed (body) page number


def render(source: Source) -> bytes:
    """Return the PDF bytes of `source` (deterministic: same source, same bytes)."""
    style = Style.from_meta(source.meta)
    first = _Document(style, body_total=0, toc=None)
    first.run(source)
    final = _Document(style, body_total=first.body_pages, toc=first.toc_entries)
    final.run(source)
    if final.toc_entries != first.toc_entries or final.body_pages != first.body_pages:
        raise RuntimeError(f"{style.title}: the two layout passes disagree")
    return bytes(final.output())


class _Document(FPDF):
    def __init__(self, style: Style, body_total: int, toc: list[TocEntry] | None):
        super().__init__(format="letter", unit="mm")
        self.style = style
        self.body_total = body_total
        self.known_toc = toc
        self.toc_entries: list[TocEntry] = []
        self.phase = "front"  # "cover", "front" or "body": what the next new page will be
        self.page_phase: dict[int, str] = {}
        self.body_start = 0
        self.core_fonts_encoding = "windows-1252"  # curly quotes, dashes and section signs
        self.set_margins(25.4, 25.4, 25.4)
        self.set_auto_page_break(True, margin=25.4)
        self.set_creation_date(style.created)
        self.set_producer("Tome sample document generator")
        self.set_creator("sample_docs/generate.py")
        self.set_title(style.title)
        self.set_author(style.author)
        self.set_subject(style.subject)

    @property
    def body_pages(self) -> int:
        return self.page - self.body_start + 1 if self.body_start else 0

    def run(self, source: Source) -> None:
        draw = {Cover: self._cover, Toc: self._toc, PageBreak: self._page_break,
                Heading: self._heading, Para: self._para, Notice: self._notice,
                Table: self._table}
        for block in source.blocks:
            if self.phase != "body" and not isinstance(block, (Cover, Toc)):
                self._start_body()
            draw[type(block)](block)

    # -- running header and footer -------------------------------------------------------------

    def header(self) -> None:
        self.page_phase[self.page] = self.phase
        if self.phase == "cover":
            return
        self.set_font(self.style.font, "I", 8.5)
        self.set_y(13)
        self.cell(0, 4, self.style.header_left, align="L")
        self.set_x(self.l_margin)
        self.cell(0, 4, self.style.header_right, align="R")
        self.set_draw_color(120)
        self.line(self.l_margin, 18.5, self.w - self.r_margin, 18.5)
        self.set_y(self.t_margin)
        self._body_font()

    def footer(self) -> None:
        phase = self.page_phase[self.page]
        if phase == "cover":
            return
        self.set_font(self.style.font, "", 8.5)
        self.set_y(-17)
        if phase == "front":
            self.cell(0, 4, _roman(self.page), align="C")
            return
        self.cell(0, 4, self.style.footer_left, align="L")
        self.set_x(self.l_margin)
        number = self.page - self.body_start + 1
        self.cell(0, 4, f"Page {number} of {self.body_total}", align="C")

    # -- blocks --------------------------------------------------------------------------------

    def _cover(self, block: Cover) -> None:
        self.phase = "cover"
        self.add_page(label_style="r", label_start=1)
        self.set_y(55)
        for size, bold, text in block.lines:
            if not text:
                self.ln(size * 0.6)
                continue
            self.set_font(self.style.font, "B" if bold else "", size)
            self.multi_cell(0, size * 0.5, text, align="C", new_x="LMARGIN", new_y="NEXT")
        self.phase = "front"

    def _toc(self, _block: Toc) -> None:
        self.phase = "front"
        self.add_page()
        self.set_font(self.style.font, "B", self.style.size + 1)
        self.cell(0, 8, "TABLE OF CONTENTS", align="C", new_x="LMARGIN", new_y="NEXT")
        self.ln(3)
        for entry in self.known_toc or ():
            self._toc_line(entry)

    def _toc_line(self, entry: TocEntry) -> None:
        indent = (entry.level - 1) * INDENT_MM
        self.set_font(self.style.font, "B" if entry.level == 1 else "", self.style.size - 1)
        height = self.style.line_height * (1.2 if entry.level == 1 else 1.0)
        if self.will_page_break(height):
            self.add_page()
        number = str(entry.page)
        self.set_x(self.l_margin + indent)
        text_w = self.get_string_width(entry.text) + 1
        num_w = 12
        dots_w = self.epw - indent - text_w - num_w
        dots = "." * max(0, int(dots_w / self.get_string_width(".")) - 2)
        self.cell(text_w, height, entry.text)
        self.cell(dots_w, height, dots, align="R")
        self.cell(num_w, height, number, align="R", new_x="LMARGIN", new_y="NEXT")

    def _start_body(self) -> None:
        self.phase = "body"
        self.add_page(label_style="D", label_start=1)
        self.body_start = self.page

    def _page_break(self, _block: PageBreak) -> None:
        self.add_page()

    def _heading(self, block: Heading) -> None:
        if block.new_page and self.y > self.t_margin + 1:
            self.add_page()
        elif self.will_page_break(KEEP_WITH_NEXT_MM):
            self.add_page()
        if block.level <= self.style.toc_depth:
            label = f"{block.number}  {block.title}" if block.number else block.title
            self.toc_entries.append(TocEntry(block.level, label, self.body_pages))
        {1: self._article, 2: self._section, 3: self._subsection}[block.level](block)
        if block.text and block.level != 2:
            self._para(Para(block.text))

    def _article(self, block: Heading) -> None:
        self.ln(4 if self.y > self.t_margin + 1 else 0)
        self.set_font(self.style.font, "B", self.style.size + 1)
        for line in filter(None, (block.number, block.title)):
            self.multi_cell(0, self.style.line_height + 0.6, line, align="C",
                            new_x="LMARGIN", new_y="NEXT")
        self.ln(3)
        self._body_font()

    def _section(self, block: Heading) -> None:
        self.ln(1.5)
        if block.text:
            title = block.title if block.title[-1:] in ".:?" else block.title + "."
            self._para(Para(f"**{block.number} {title}** {block.text}"))
            return
        self.set_font(self.style.font, "B", self.style.size + 0.5)
        self.multi_cell(0, self.style.line_height + 0.4, f"{block.number}  {block.title}",
                        align="L", new_x="LMARGIN", new_y="NEXT")
        self.ln(1.5)
        self._body_font()

    def _subsection(self, block: Heading) -> None:
        self.ln(1)
        self.set_font(self.style.font, "BI", self.style.size)
        self.multi_cell(0, self.style.line_height, f"{block.number}  {block.title}",
                        align="L", new_x="LMARGIN", new_y="NEXT")
        self.ln(1)
        self._body_font()

    def _para(self, block: Para) -> None:
        self._body_font()
        indent = block.indent * INDENT_MM
        self.set_x(self.l_margin + indent)
        self.multi_cell(self.epw - indent, self.style.line_height, soft_hyphenate(block.text),
                        align=block.align, markdown="**" in block.text,
                        new_x="LMARGIN", new_y="NEXT")
        self.ln(self.style.line_height * 0.45)

    def _notice(self, block: Notice) -> None:
        self._body_font()
        self.set_fill_color(235)
        self.set_draw_color(0)
        self.set_line_width(0.4 if block.kind in ("WARNING", "CAUTION") else 0.2)
        self.multi_cell(0, self.style.line_height, f"**{block.kind}:** {block.text}", border=1,
                        fill=True, align="L", markdown=True, padding=(2, 3),
                        new_x="LMARGIN", new_y="NEXT")
        self.set_line_width(0.2)
        self.ln(self.style.line_height * 0.6)

    def _table(self, block: Table) -> None:
        self.set_font(self.style.font, "", self.style.size - 1.5)
        self.set_draw_color(80)
        layout = TableBordersLayout.ALL if block.borders else TableBordersLayout.NONE
        # A borderless grid is a signature block or a list of particulars: roomier lines.
        line_height = self.style.line_height - (0.6 if block.borders else -1.5)
        with self.table(col_widths=block.widths, width=self.epw, text_align="LEFT",
                        line_height=line_height, borders_layout=layout, padding=(1, 1.5),
                        v_align="TOP") as table:
            for row in block.rows:
                table.row(row)
        self.ln(self.style.line_height * 0.8)
        self._body_font()

    def _body_font(self) -> None:
        self.set_font(self.style.font, "", self.style.size)


def _roman(number: int) -> str:
    numerals = ((10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))
    out = ""
    for value, letters in numerals:
        while number >= value:
            out += letters
            number -= value
    return out
