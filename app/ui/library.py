"""The Library tab: upload files (progress per file and stage, an outcome per file), the table
of documents, a page reader, and deleting a document after confirmation."""

from datetime import datetime
from pathlib import Path

import streamlit as st

from app.ui import viewer
from app.ui.engine import UPLOAD_TYPES, Engine, FileOutcome
from app.ui.present import count, duration, escape, size

STAGES = ("parse", "chunk", "embed", "index")
STAGE_TEXT = {"parse": "reading the text", "chunk": "finding sections and clauses", "embed": "embedding passages",
              "index": "adding to the index", "done": "done"}
SHOWN = {
    "added": ("Added", ":material/check_circle:"),
    "replaced": ("Replaced the earlier version", ":material/published_with_changes:"),
    "unchanged": ("Already in the library, unchanged", ":material/check:"),
    "failed": ("Failed", ":material/error:"),
}


def render(engine: Engine) -> None:
    _upload(engine)
    _outcomes()
    st.markdown("#### Documents")
    docs = engine.store.documents()
    if not docs:
        st.info("The library is empty. Add contracts or manuals above; Tome reads PDFs with a text layer, "
                "plain text and Markdown.", icon=":material/upload_file:")
        return
    st.dataframe(_rows(docs), hide_index=True, width="stretch", column_config={
        "Title": st.column_config.TextColumn(width="medium"),
        "Pages": st.column_config.NumberColumn(width="small"),
        "Passages": st.column_config.NumberColumn(width="small", help="Passages in the search index"),
        "Added": st.column_config.DatetimeColumn(format="YYYY-MM-DD", width="small"),
        "Needs OCR": st.column_config.TextColumn(help="Scanned pages without a text layer, not searchable"),
    })
    titles = {d.doc_id: f"{d.title} ({Path(d.source).name})" for d in docs}
    if st.session_state.get("library_doc") not in titles:
        st.session_state.pop("library_doc", None)  # deleted, here or in another tab
    doc_id = st.selectbox("Document", list(titles), format_func=titles.get, key="library_doc")
    read, delete, _ = st.columns([1, 1, 3])
    if read.button("Read pages", icon=":material/find_in_page:", width="stretch"):
        viewer.show_page(engine, doc_id, 1)
    if delete.button("Delete…", icon=":material/delete:", width="stretch"):
        st.session_state["confirm_delete"] = doc_id
    if st.session_state.get("confirm_delete") == doc_id:
        _confirm_delete(engine, doc_id, titles[doc_id])
    elif "deleted" in st.session_state:
        st.success(f"Deleted {escape(st.session_state.pop('deleted'))}.", icon=":material/delete:")


def _upload(engine: Engine) -> None:
    limit = engine.store.settings.max_file_bytes
    generation = st.session_state.setdefault("uploader", 0)
    st.markdown("#### Add documents")
    files = st.file_uploader(
        "Add documents", type=list(UPLOAD_TYPES), accept_multiple_files=True, key=f"upload-{generation}",
        max_upload_size=max(1, limit // 2**20), label_visibility="collapsed",
    )
    st.caption(f"PDF, TXT or MD, up to {size(limit)} each; several at once. PDFs need a text layer (scanned "
               "pages need OCR first) and must open without a password. A file named like one in the library "
               "replaces it.")
    if st.button("Add to library", type="primary", icon=":material/library_add:", disabled=not files):
        st.session_state["outcomes"] = [_ingest(engine, file) for file in files]
        st.session_state["uploader"] = generation + 1  # a fresh, empty uploader
        st.rerun()


def _ingest(engine: Engine, file) -> FileOutcome:
    """One file, its stages shown as they happen."""
    with st.status(f"{file.name}: waiting", expanded=True) as box:
        bar = st.progress(0.0)

        def on_progress(progress) -> None:
            if progress.stage in STAGES:
                done = STAGES.index(progress.stage) / len(STAGES)
                detail = f" · {count(progress.pages, 'page')}" if progress.pages else ""
                detail += f" · {count(progress.chunks, 'passage')}" if progress.chunks else ""
                bar.progress(done, text=f"{STAGE_TEXT[progress.stage]}{detail}")
                box.update(label=f"{file.name}: {STAGE_TEXT[progress.stage]}…")

        outcome = engine.upload(file.name, file.getvalue(), on_progress)
        bar.progress(1.0)
        box.update(label=f"{file.name}: {SHOWN[outcome.outcome][0].lower()}", expanded=False,
                   state="error" if outcome.outcome == "failed" else "complete")
    return outcome


def _outcomes() -> None:
    outcomes: list[FileOutcome] = st.session_state.get("outcomes", [])
    if not outcomes:
        return
    for outcome in outcomes:
        label, icon = SHOWN[outcome.outcome]
        if outcome.outcome == "failed":
            st.error(f"**{escape(outcome.name)}** — not added: {escape(outcome.detail)}", icon=icon)
            continue
        facts = f"{count(outcome.pages, 'page')}, {count(outcome.chunks, 'passage')}, {duration(outcome.seconds)}"
        note = f" · {escape(outcome.detail)}" if outcome.detail else ""
        st.success(f"**{escape(outcome.name)}** — {label} ({facts}){note}", icon=icon)
    if st.button("Clear messages", type="tertiary", key="clear_outcomes"):
        del st.session_state["outcomes"]
        st.rerun()


def _rows(docs) -> list[dict]:
    """One row per document; the OCR column only when some document has such pages."""
    ocr = any(d.ocr_pages for d in docs)
    return [{
        "Title": d.title,
        "File": ", ".join(Path(s).name for s in d.sources) or Path(d.source).name,
        "Pages": d.pages,
        "Passages": d.chunks,
        "Added": datetime.fromtimestamp(d.added_at) if d.added_at else None,
        **({"Needs OCR": ", ".join(map(str, d.ocr_pages))} if ocr else {}),
    } for d in docs]


def _confirm_delete(engine: Engine, doc_id: str, title: str) -> None:
    st.warning(f"Delete **{escape(title)}** from the library? Its text and index entries are removed; "
               "the original file is not touched.", icon=":material/warning:")
    yes, no, _ = st.columns([1, 1, 3])
    if yes.button("Yes, delete", type="primary", key="delete_yes", width="stretch"):
        engine.store.delete(doc_id)
        st.session_state["deleted"] = title
        del st.session_state["confirm_delete"]
        st.rerun()
    if no.button("Cancel", key="delete_no", width="stretch"):
        del st.session_state["confirm_delete"]
        st.rerun()
