"""The Ask tab: a conversation over the whole library or one document. Answers stream in, then
show their mode, the question as Tome read it, and numbered sources with the quoted passages."""

from pathlib import Path

import streamlit as st

from app.errors import AppError
from app.ui import viewer
from app.ui.conversation import Relay, Turn, embedding_reports, progress_text
from app.ui.engine import Engine
from app.ui.present import citation_label, count, duration, escape, oneline, waiting
from ingest import IngestError

MODES = {"auto": "Automatic", "retrieval": "Retrieved passages", "whole": "Whole document"}
USED = {
    "extractive": ("Extractive · quoted from the documents", "gray", ":material/format_quote:"),
    "retrieval": ("Generated from retrieved passages", "blue", ":material/auto_awesome:"),
    "whole": ("Read the whole document", "violet", ":material/menu_book:"),
}
EXAMPLES = (
    "When can either party terminate the agreement?",
    "What is the cap on liability?",
    "Which law governs the agreement?",
    "What are the payment terms?",
)
FINDING = ":material/search: Finding the passages that answer this…"
ASSISTANT = ":material/menu_book:"
USER = ":material/person:"
ALL = ""  # the scope "all documents" (a selectbox option of None would show a clear button)


def chat_box(engine: Engine) -> str | None:
    empty = not engine.store.documents()
    placeholder = "Add documents in the Library tab first" if empty else "Ask about your documents…"
    question = st.chat_input(placeholder, key="question", disabled=empty, max_chars=2000)
    return question or st.session_state.pop("example", None)


def render(engine: Engine, question: str | None) -> None:
    turns: list[Turn] = st.session_state.setdefault("turns", [])
    _recover(turns)
    doc_id, mode = _controls(engine, turns, asking=bool(question))
    for index, turn in enumerate(turns):
        _show(engine, turn, index)
    if question:
        _ask(engine, question, turns, doc_id, mode)
    elif turns:
        return
    elif engine.store.documents():
        st.pills("Try", EXAMPLES, key="examples", on_change=_use_example, label_visibility="collapsed")
    else:
        st.info("The library is empty: add contracts or manuals in the Library tab, then ask here.",
                icon=":material/upload_file:")


def _use_example() -> None:
    st.session_state["example"] = st.session_state.pop("examples", None)


def _controls(engine: Engine, turns: list[Turn], asking: bool) -> tuple[str | None, str]:
    docs = {d.doc_id: d for d in engine.store.documents()}
    if st.session_state.get("scope", ALL) not in (ALL, *docs):
        del st.session_state["scope"]  # deleted meanwhile, maybe from another tab
    scope, mode, new = st.columns([5, 3, 2], vertical_alignment="bottom")
    doc_id = scope.selectbox(
        "Ask about", [ALL, *docs], key="scope",
        format_func=lambda d: f"All documents ({len(docs)})" if d == ALL else docs[d].title,
    )
    chosen = "auto"
    if engine.status.generator == "granite":
        chosen = mode.selectbox("Reading", list(MODES), format_func=MODES.get, key="mode",
                                help="Automatic reads a whole document when it fits the model's context; "
                                     "otherwise the passages retrieved for the question.")
    if new.button("New conversation", icon=":material/add_comment:", disabled=not (turns or asking), width="stretch"):
        turns.clear()
        st.rerun()
    return doc_id or None, chosen


def _recover(turns: list[Turn]) -> None:
    """An answer still pending at the start of a run was interrupted: by Stop, or by any other
    click while it streamed. Keep what it had, marked as stopped."""
    pending = st.session_state.pop("pending", None)
    if pending is not None:
        turns.append(Turn(pending["question"], pending["text"], scope=pending["scope"], stopped=True))


def _history(turns: list[Turn]) -> list:
    return [turn.answer for turn in turns if turn.answer is not None]


def _ask(engine: Engine, question: str, turns: list[Turn], doc_id: str | None, mode: str) -> None:
    scope = engine.assistant.citer.title(doc_id) if doc_id else ""
    pending = st.session_state["pending"] = {"question": question, "text": "", "scope": scope}
    _user(question, scope)
    generating = engine.status.generator == "granite"
    with st.chat_message("assistant", avatar=ASSISTANT):
        status, bar, body, live, stop = _slots()
        # Any click reruns the script, which interrupts this one at its next update: that is the
        # Stop. `_recover` then keeps the partial answer.
        stop.button("Stop", icon=":material/stop_circle:", key="stop", type="tertiary")

        def on_wait(ahead: int) -> None:
            status.info(waiting(ahead), icon=":material/hourglass_top:")

        def on_text(raw: str) -> None:
            pending["text"] = raw
            if generating and relay.pieces % 8 == 0:
                live.caption(f"{count(relay.pieces, 'token')} · {relay.rate:.1f} tokens/s")

        def on_progress(part) -> None:
            bar.progress(min(1.0, part.tokens_read / max(1, part.tokens_total)), text=progress_text(part))

        def on_embedding(done: int, total: int) -> None:
            status.caption(f"{FINDING} (weighing {done} of {total} sentences)")

        try:
            with engine.turns.turn(on_wait) as waited:
                status.caption(FINDING)
                relay = Relay(engine.assistant.stream(question, _history(turns), doc_id, mode), on_progress, on_text)
                try:
                    with body, embedding_reports(on_embedding):
                        st.write_stream(_after_first(relay.text(), lambda: (status.empty(), bar.empty())))
                finally:
                    relay.close()
        except (AppError, IngestError) as error:
            turn = Turn(question, error=str(error), scope=scope)
        else:
            turn = Turn(question, relay.raw, relay.result, scope=scope, seconds=relay.seconds, first_s=relay.first_s,
                        waited_s=waited, tokens=relay.pieces if generating else 0)
            if generating:
                st.session_state["last_rate"] = relay.rate
        turns.append(turn)
        st.session_state.pop("pending", None)
        for placeholder in (status, bar, live, stop):
            placeholder.empty()
        # The finished answer is completed in place rather than by a rerun: a rerun drops the
        # updates not yet sent to the browser, so a quick answer would appear only once the
        # whole page had been drawn again (about a second on a busy machine).
        if turn.error:
            st.error(turn.error, icon=":material/error:")
        else:
            _details(engine, turn, len(turns) - 1)
    if generating:
        st.rerun()  # the sidebar shows the new tokens/s


def _after_first(pieces, action):
    first = True
    for piece in pieces:
        if first:
            action()
            first = False
        yield piece


def _user(question: str, scope: str) -> None:
    with st.chat_message("user", avatar=USER):
        st.markdown(escape(question))
        if scope:
            st.caption(f":material/description: {escape(scope)}")


def _show(engine: Engine, turn: Turn, index: int) -> None:
    _user(turn.question, turn.scope)
    with st.chat_message("assistant", avatar=ASSISTANT):
        if turn.error:
            st.error(turn.error, icon=":material/error:")
            return
        body = _slots()[2]
        if turn.text:
            body.markdown(escape(turn.text))
        _details(engine, turn, index)


def _slots():
    """(status, progress bar, body, live counter, stop) of an answer. The answer being asked and
    the answers shown later lay out the same slots, so that its sources keep their place and an
    expander opened under a fresh answer stays open across the next rerun."""
    return st.empty(), st.empty(), st.container(), st.empty(), st.empty()


def _details(engine: Engine, turn: Turn, index: int) -> None:
    """What follows an answer's text: how it was made, notes, and its sources."""
    if turn.stopped or turn.answer is None:
        st.caption(":material/stop_circle: Stopped before the answer was complete.")
        return
    _about(turn)
    for note in (*turn.answer.notes, *turn.answer.warnings):
        st.caption(f":material/info: {escape(note)}")
    _sources(engine, turn, index)


def _about(turn: Turn) -> None:
    """Mode, coverage, the question as read, and timing, on one line."""
    answer = turn.answer
    label, color, icon = USED[answer.mode]
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        st.badge(label, color=color, icon=icon)
        if not answer.covered:
            st.badge("Not in the documents", color="orange", icon=":material/search_off:")
        timing = f"{duration(turn.seconds)}"
        if turn.tokens:
            timing += f" · {count(turn.tokens, 'token')} at {turn.tokens / max(turn.seconds - turn.first_s, 1e-3):.1f}/s"
        if turn.waited_s >= 0.5:
            timing += f" · waited {duration(turn.waited_s)} for the model"
        st.caption(timing)
    if answer.standalone_question != answer.question:
        st.caption(f":material/edit_note: Read as: {escape(answer.standalone_question)}")


def _sources(engine: Engine, turn: Turn, index: int) -> None:
    if not turn.answer.citations:
        return
    st.markdown("**Sources**")
    for doc_id, title, cites in turn.answer.by_document():
        st.markdown(f":material/description: **{escape(title)}** :gray[{escape(Path(cites[0].source).name)}]")
        for citation in cites:
            with st.expander(citation_label(citation)):
                st.markdown("> " + escape(oneline(citation.quote)))
                if st.button(f"View page {citation.pages[0]}", key=f"page-{index}-{citation.number}",
                             icon=":material/find_in_page:", type="tertiary"):
                    viewer.show_page(engine, doc_id, citation.pages[0], (citation.start, citation.end))
