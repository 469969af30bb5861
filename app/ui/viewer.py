"""The page viewer: a cited page's text, the quoted span marked, without leaving the app.

It shows the text Tome read from the page (running headers, footers and page numbers removed),
which is exactly what answers and citations are made from.
"""

import streamlit as st

from app.ui.engine import Engine
from app.ui.present import escape, page_html

SCROLL_TO_MARK = """<script>
const marks = document.querySelectorAll("mark#tome-cited");
if (marks.length) marks[marks.length - 1].scrollIntoView({block: "center"});
</script>"""


@st.dialog("Page viewer", width="large")
def show_page(engine: Engine, doc_id: str, page: int, span: tuple[int, int] | None = None) -> None:
    """Page `page` (1-based) of a document; `span`, offsets into the document's text, is marked
    on whichever pages it covers."""
    citer = engine.assistant.citer
    pages = engine.store.pages(doc_id)
    title, top = st.columns([4, 1], vertical_alignment="bottom")
    number = top.number_input("Page", min_value=1, max_value=len(pages), value=page, key=f"viewer-{doc_id}-{span}")
    shown = pages[number - 1]
    printed = f" (printed {escape(shown.label)})" if shown.label != str(shown.number) else ""
    title.markdown(f"**{escape(citer.title(doc_id))}**  \npage {shown.number} of {len(pages)}{printed}")
    text = citer.text(doc_id)[shown.start:shown.end]
    marked = None
    if span is not None and span[0] < shown.end and span[1] > shown.start:
        marked = (max(span[0], shown.start) - shown.start, min(span[1], shown.end) - shown.start)
    if text.strip():
        st.html(page_html(text, marked))
        if marked:
            # Our own script, apart from the (escaped) document text: bring the mark into view.
            st.html(SCROLL_TO_MARK, unsafe_allow_javascript=True)
    else:
        st.info("This page has no text layer (a scanned page needs OCR), so Tome has nothing from it.")
    st.caption("The text Tome read from this page, without running headers, footers and page numbers. "
               + ("The cited passage is highlighted." if marked else ""))
