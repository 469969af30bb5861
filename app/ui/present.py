"""Text for the page: Markdown that shows document text literally, labels, times and the
summary export. Plain functions, no Streamlit, so they are tested directly.

Contracts are full of `$` amounts, `*` footnote marks, `_` blanks and numbered lines; Streamlit's
Markdown would turn `$5 and $10` into math and `1. ` into a list. Everything quoted from a
document or produced by a model goes through `escape` (or `MarkdownStream` while streaming).
"""

import html
import re
from collections.abc import Iterable

from app.answer import Citation

# Characters that mean something inline in Streamlit's Markdown (math `$`, emphasis, code,
# strikethrough, tables, links and raw HTML): a backslash makes each literal.
_INLINE = re.compile(r"([\\`*_~$|<>\[\]])")
# What a line may start with that would make it a heading, quote, list item or rule.
_LINE_START = re.compile(r"^(#|[-+](?=\s)|\d+(?=[.)]\s)|=+\s*$|-+\s*$)")


def escape(text: str) -> str:
    """`text` as Markdown that renders exactly as the characters given, line breaks kept."""
    stream = MarkdownStream()
    return stream.feed(text) + stream.finish()


class MarkdownStream:
    """Escapes text that arrives in pieces; a piece may begin or end anywhere in a line. The
    start of a line is held back until it shows whether it would begin a list, a heading or a
    rule ("1" might become "12. "); `finish()` returns whatever is still held."""

    def __init__(self):
        self._head: str | None = ""  # the held start of the current line; None once past it

    def feed(self, piece: str) -> str:
        out = []
        for part in re.split(r"(\n)", piece):
            if part == "\n":
                out.append(self.finish() + "  \n")  # a hard break: one sentence per line, as written
                self._head = ""
            elif part and self._head is None:
                out.append(_INLINE.sub(r"\\\1", part))
            elif part:
                self._head += part
                if _decided(self._head):
                    out.append(self.finish())
        return "".join(out)

    def finish(self) -> str:
        head, self._head = self._head, None
        if not head:
            return ""
        return _LINE_START.sub(_escape_marker, _INLINE.sub(r"\\\1", head.lstrip()))


def _decided(head: str) -> bool:
    """Whether a line's start shows what it is: its first word is complete, or it starts with
    a character no block marker starts with."""
    text = head.lstrip()
    return bool(text) and (text[0] not in "#-+=0123456789" or re.match(r"\S+\s", text) is not None)


def _escape_marker(match: re.Match) -> str:
    marker = match.group(1)
    if marker[0].isdigit():
        return marker + "\\"  # "12. " -> "12\. "
    return "\\" + marker


def oneline(text: str) -> str:
    """A quote as one line: document line breaks and runs of spaces become single spaces."""
    return " ".join(text.split())


def page_html(page_text: str, highlight: tuple[int, int] | None = None) -> str:
    """A page's text as HTML, the cited span (offsets into `page_text`) marked."""
    if highlight is None:
        return f'<div class="tome-page">{html.escape(page_text)}</div>'
    start, end = highlight
    parts = (page_text[:start], page_text[start:end], page_text[end:])
    marked = f'{html.escape(parts[0])}<mark id="tome-cited">{html.escape(parts[1])}</mark>{html.escape(parts[2])}'
    return f'<div class="tome-page">{marked}</div>'


def citation_label(citation: Citation) -> str:
    """ "[3] p. 16 (printed 12) · 12.4 Termination for Convenience", escaped for Markdown."""
    section = citation.section.split(" > ")[-1] if citation.section else ""
    where = " · ".join(part for part in (citation.where, section) if part)
    return f"\\[{citation.number}\\] {escape(where)}"


def duration(seconds: float) -> str:
    """ "0.4 s", "12 s", "3 min 20 s", "1 h 05 min": how long, to a reader's precision."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def size(num_bytes: float) -> str:
    """ "200 MB": binary multiples, as the upload widget and most file managers count them."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "bytes" or num_bytes >= 10 else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return ""


def count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def waiting(ahead: int) -> str:
    """What a queued request shows while the model finishes the ones before it."""
    return f"Waiting for the model to finish {count(ahead, 'earlier request')} (another tab's, or one just stopped)…"


def sources_markdown(citations: Iterable[Citation]) -> str:
    """Numbered sources for a Markdown file: document, page, section and the quote."""
    lines = []
    for c in citations:
        where = ", ".join(part for part in (c.where, c.section) if part)
        lines.append(f"{c.number}. {escape(c.title)}, {escape(where)}: “{escape(oneline(c.quote))}”")
    return "\n".join(lines)


def summary_markdown(summary, source: str = "") -> str:
    """An `app.summarize.Summary` as a Markdown file: title, fields, numbered sources.

    Escaped like the page (a `$` shown as `\\$` in the file renders as `$` in any Markdown
    viewer, where a bare one could start math on GitHub and in many editors)."""
    mode = "extractive: sentences quoted from the document" if summary.mode == "extractive" else summary.mode
    head = [f"# Summary: {escape(summary.title)}", "", f"_{escape(source or summary.doc_id)} · {summary.kind} · {mode}_", ""]
    body = []
    for field in summary.fields:
        body += [f"## {escape(field.name)}", "", field_markdown(field.text), ""]
    if summary.citations:
        body += ["## Sources", "", sources_markdown(summary.citations), ""]
    return "\n".join(head + body)


def field_markdown(text: str) -> str:
    """A summary field's text: its "- " list items kept as a list, everything else literal."""
    lines = []
    for line in text.splitlines():
        if line.startswith("- "):
            lines.append("- " + escape(line[2:]))
        else:
            lines.append(escape(line) + "  ")
    return "\n".join(lines)


class FieldStream:
    """Summary fields as `app.summarize` streams them ("## Name\\ntext\\n\\n", one per piece), in
    Markdown: a heading and the field's literal text."""

    def feed(self, piece: str) -> str:
        name, _, text = piece.removeprefix("## ").partition("\n")
        return f"##### {escape(name)}\n{field_markdown(text.strip())}\n\n"

    def finish(self) -> str:
        return ""
