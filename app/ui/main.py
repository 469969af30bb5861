"""The page: a sidebar with the generator and the library, and three tabs (Ask, Summarize,
Library). Only the open tab runs. The engine (store, assistant, model) is loaded once per
process and shared by every browser session; conversations live in each session's state.
"""

import logging

import streamlit as st

from app.errors import AppError
from app.models import ModelNotFoundError
from app.ui import ask, library, sidebar, summary
from app.ui.engine import Engine
from ingest import IngestError

VIEWS = ("Ask", "Summarize", "Library")

# Reading width for text, a framed page viewer, and citations that stay compact.
STYLE = """<style>
.block-container { max-width: 68rem; padding-top: 3.6rem; }
[data-testid="stBottomBlockContainer"] { max-width: 68rem; }
.tome-page { white-space: pre-wrap; font-family: Georgia, 'Times New Roman', serif; font-size: 0.98rem;
  line-height: 1.55; max-height: 62vh; overflow-y: auto; padding: 1rem 1.25rem; border: 1px solid #e3e5e8;
  border-radius: 0.5rem; background: #fcfcfa; color: #1f2328; }
.tome-page mark { background: #fff0a8; padding: 0.05rem 0; }
[data-testid="stExpander"] blockquote, [data-testid="stExpander"] blockquote p { color: #2b313b; }
</style>"""

log = logging.getLogger("tome.ui")


@st.cache_resource(show_spinner="Opening the library and loading the model…")
def load_engine(store: str, model: str | None) -> Engine:
    return Engine(store, model)


def main(store: str, model: str | None = None) -> None:
    st.set_page_config(page_title="Tome", page_icon=":material/menu_book:", layout="wide")
    st.html(STYLE)
    try:
        engine = load_engine(store, model)
    except (AppError, IngestError, ModelNotFoundError) as error:
        st.error(f"Tome cannot open its library or model: {error}", icon=":material/error:")
        st.stop()
    sidebar.render(engine)
    # An empty library opens on Library. Decided once per session: a default that changed when
    # the first upload lands would make the tabs a new widget and jump away from the results.
    default = st.session_state.setdefault("first_view", "Ask" if engine.store.documents() else "Library")
    tabs = st.tabs(VIEWS, key="view", default=default, on_change="rerun", bind="query-params")
    ask_tab, summary_tab, library_tab = tabs
    if ask_tab.open:
        # The chat box belongs to the main area, where Streamlit pins it to the window's bottom.
        question = ask.chat_box(engine)
        with ask_tab:
            _guarded(ask.render, engine, question)
    elif summary_tab.open:
        with summary_tab:
            _guarded(summary.render, engine)
    elif library_tab.open:
        with library_tab:
            _guarded(library.render, engine)


def _guarded(render, engine: Engine, *args) -> None:
    """Show a failure where it happened, in plain words, and keep the rest of the page."""
    try:
        render(engine, *args)
    except (AppError, IngestError) as error:
        st.error(str(error), icon=":material/error:")
    except Exception as error:  # noqa: BLE001 — shown with its type; the trace goes to the server log
        log.exception("page failed")
        st.error(f"Something failed in Tome ({type(error).__name__}: {error}). The details are in the "
                 "server log.", icon=":material/error:")
