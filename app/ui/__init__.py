"""Tome's web page (Streamlit), started by `tome serve`.

    streamlit_app.py   the script Streamlit runs: reads --store/--model, calls main.main
    main.py            page setup, the shared Engine (st.cache_resource), the three tabs
    ask.py, summary.py, library.py, viewer.py, sidebar.py    the tabs, the page dialog, the sidebar
    engine.py          Engine: store + assistant + generator + turn queue; uploads (no Streamlit)
    turns.py           TurnQueue: one model, requests from many tabs served in order
    conversation.py    Turn, and Relay: an assistant stream split into text, progress, result
    present.py         Markdown escaping (amounts never become math), labels, the summary export

Streamlit puts this folder on sys.path when it runs streamlit_app.py, so no module here may
share a name with a top-level module (tests/app/test_ui_units.py checks).
"""
