"""The Summarize tab: pick a document, watch its summary stream in field by field, read each
field with its sources, download it as Markdown."""

from pathlib import Path

import streamlit as st

from app.errors import AppError
from app.summarize import stream_summary
from app.ui import viewer
from app.ui.ask import MODES, USED
from app.ui.conversation import Relay, embedding_reports, progress_text
from app.ui.engine import Engine
from app.ui.present import (FieldStream, citation_label, count, duration, escape, field_markdown, oneline,
                            summary_markdown, waiting)
from ingest import IngestError

READING = ":material/summarize: Reading the document field by field…"


def render(engine: Engine) -> None:
    docs = {d.doc_id: d for d in engine.store.documents()}
    if not docs:
        st.info("Add a document in the Library tab to summarise it.", icon=":material/upload_file:")
        return
    if st.session_state.get("summary_doc") not in docs:
        st.session_state.pop("summary_doc", None)
    pick, mode, go = st.columns([5, 3, 2], vertical_alignment="bottom")
    doc_id = pick.selectbox("Document", list(docs), key="summary_doc",
                            format_func=lambda d: f"{docs[d].title} · {count(docs[d].pages, 'page')}")
    chosen = "auto"
    if engine.status.generator == "granite":
        chosen = mode.selectbox("Reading", list(MODES), format_func=MODES.get, key="summary_mode")
    summaries = st.session_state.setdefault("summaries", {})
    stopped = st.session_state.pop("summarizing", None)  # still set: the last run was interrupted
    if go.button("Summarize", type="primary", icon=":material/summarize:", width="stretch"):
        _summarize(engine, doc_id, chosen, summaries)
    elif stopped == doc_id:
        st.info("Summary stopped. Summarize again to start over.", icon=":material/stop_circle:")
    if doc_id in summaries:
        _show(engine, summaries[doc_id], docs[doc_id].source)
    else:
        st.caption("Key terms (parties, term, renewal, payment, termination, liability, confidentiality, "
                   "governing law, unusual obligations) for a contract; purpose, structure, procedures and "
                   "safety warnings for a manual; then an overview. Every statement cites its page.")


def _summarize(engine: Engine, doc_id: str, mode: str, summaries: dict) -> None:
    status, bar, body = st.empty(), st.empty(), st.container(border=True)
    st.button("Stop", icon=":material/stop_circle:", key="stop_summary", type="tertiary")

    def on_wait(ahead: int) -> None:
        status.info(waiting(ahead), icon=":material/hourglass_top:")

    def on_progress(part) -> None:
        bar.progress(min(1.0, part.tokens_read / max(1, part.tokens_total)), text=progress_text(part))

    def on_embedding(done: int, total: int) -> None:
        status.caption(f"{READING} (weighing {done:,} of {total:,} sentences)")

    st.session_state["summarizing"] = doc_id
    try:
        with engine.turns.turn(on_wait):
            status.caption(READING)
            parts = stream_summary(engine.store, doc_id, llm=engine.llm, mode=mode, assistant=engine.assistant)
            relay = Relay(parts, on_progress, markdown=FieldStream())
            try:
                with body, embedding_reports(on_embedding):
                    st.write_stream(relay.text())
            finally:
                relay.close()
    except (AppError, IngestError) as error:
        del st.session_state["summarizing"]
        status.error(str(error), icon=":material/error:")
        return
    del st.session_state["summarizing"]
    summaries[doc_id] = (relay.result, relay.seconds)
    st.rerun()


def _show(engine: Engine, stored, source: str) -> None:
    summary, seconds = stored
    label, color, icon = USED[summary.mode]
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        st.badge(label, color=color, icon=icon)
        st.badge(summary.kind.capitalize(), color="gray")
        st.caption(f"{count(len(summary.citations), 'citation')} · {duration(seconds)}")
        st.download_button("Download Markdown", summary_markdown(summary, Path(source).name),
                           file_name=f"{Path(source).stem or summary.doc_id}-summary.md", mime="text/markdown",
                           icon=":material/download:", on_click="ignore")
    for note in summary.notes:
        st.caption(f":material/info: {escape(note)}")
    for index, field in enumerate(summary.fields):
        with st.container(border=True):
            st.markdown(f"##### {escape(field.name)}")
            st.markdown(field_markdown(field.text))
            if field.citations:
                with st.expander(f"Sources ({len(field.citations)})"):
                    for citation in field.citations:
                        st.markdown(f"**{citation_label(citation)}**  \n{escape(oneline(citation.quote))}")
                        if st.button(f"View page {citation.pages[0]}", key=f"sum-{index}-{citation.number}",
                                     icon=":material/find_in_page:", type="tertiary"):
                            viewer.show_page(engine, summary.doc_id, citation.pages[0],
                                             (citation.start, citation.end))
