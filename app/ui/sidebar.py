"""The sidebar: what Tome is, which generator answers, what the library holds, whether the model
is busy with another tab's request."""

import streamlit as st

from app.ui.engine import Engine
from app.ui.present import count, escape


def render(engine: Engine) -> None:
    with st.sidebar:
        st.markdown("## :material/menu_book: Tome")
        st.caption("Questions and summaries over long contracts and manuals, every statement with its page.")
        st.divider()
        _generator(engine)
        st.divider()
        _library(engine)
        if engine.turns.busy:
            waiting = engine.turns.waiting
            queued = f"; {count(waiting, 'request')} waiting" if waiting else ""
            st.caption(f":material/hourglass_top: The model is working on a request{queued}.")


def _generator(engine: Engine) -> None:
    status = engine.status
    st.markdown("**Generator**")
    if status.generator == "granite":
        st.markdown(f":material/memory: {escape(status.info.path.name)}")
        st.caption(" · ".join(escape(fact) for fact in status.facts))
        rate = st.session_state.get("last_rate")
        if rate:
            st.caption(f"Last answer: {rate:.1f} tokens/s")
        return
    st.markdown(":material/format_quote: Extractive — answers quote your documents, no model")
    st.caption(escape(status.note))


def _library(engine: Engine) -> None:
    docs = engine.store.documents()
    st.markdown("**Library**")
    if not docs:
        st.caption("No documents yet.")
        return
    pages = sum(d.pages for d in docs)
    st.caption(f"{count(len(docs), 'document')} · {count(pages, 'page')} · {count(sum(d.chunks for d in docs), 'passage')}")
    unprepared = engine.preparation.unprepared()
    if unprepared:
        st.caption(f":material/pending: Preparing {count(unprepared, 'document')} for quick answers; until then "
                   "a question about them takes a few seconds longer.")
