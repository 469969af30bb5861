"""`tome ask`, `tome chat` and `tome summarize` run in-process on the test library."""

import json

import pytest

from app.cli import main
from tests.app.texts import MANUAL


@pytest.fixture
def no_model(monkeypatch, tmp_path):
    """No TOME_MODEL and no models/ folder: the extractive default runs."""
    monkeypatch.delenv("TOME_MODEL", raising=False)
    monkeypatch.chdir(tmp_path)


def test_ask_prints_the_answer_and_its_sources(library, no_model, capsys):
    status = main(["ask", "How much notice is needed to terminate for convenience?", "--store", str(library.path)])
    out, err = capsys.readouterr()
    assert status == 0
    assert "ninety (90) days' written notice" in out
    assert "Sources [extractive" in out and "[1] p. 1" in out and "12.1 Termination for Convenience" in out
    assert "--model DIR" in err


def test_ask_json_and_errors(library, no_model, capsys):
    assert main(["ask", "What is the monthly fee?", "--doc", "msa.txt", "--json", "--store", str(library.path)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["mode"] == "extractive" and "USD 12,000" in answer["citations"][0]["quote"]
    assert main(["ask", "What is the fee?", "--doc", "missing.pdf", "--store", str(library.path)]) == 2
    assert "tome: error: no document matches 'missing.pdf'" in capsys.readouterr().err
    assert main(["ask", "What is the fee?", "--model", "nowhere", "--store", str(library.path)]) == 2
    assert "nowhere: not a model folder" in capsys.readouterr().err


def test_chat_understands_follow_ups(library, no_model, capsys, monkeypatch):
    lines = iter(["When does the agreement expire?", "and can it be renewed?", "/exit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["chat", "--doc", "msa.txt", "--store", str(library.path)]) == 0
    out = capsys.readouterr().out
    assert "(read as: Can the agreement be renewed?)" in out and "successive one (1) year periods" in out


def test_summarize_a_new_file_ingests_it_first(tmp_path, no_model, capsys):
    path = tmp_path / "pump.txt"
    path.write_text(MANUAL)
    store = tmp_path / "store"
    assert main(["summarize", str(path), "--store", str(store)]) == 0
    out, err = capsys.readouterr()
    assert "tome: ingested" in err
    assert "## Safety warnings" in out and "WARNING: Hazardous voltage." in out and "Sources [extractive" in out
    assert main(["summarize", "pump.txt", "--store", str(store), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "manual" and summary["mode"] == "extractive"
    assert main(["summarize", "other.pdf", "--store", str(store)]) == 2
