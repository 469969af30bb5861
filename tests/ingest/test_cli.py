"""`tome ingest`, `tome docs`, `tome search` and `tome rm` end to end, text and JSON."""

import json
import subprocess
import sys
from pathlib import Path

TOME = Path(sys.executable).with_name("tome")


def _tome(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([TOME, *args], capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_cli_round_trip(tmp_path, contract_text):
    store = str(tmp_path / "store")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "msa.txt").write_text(contract_text)
    (tmp_path / "docs" / "notes.md").write_text("# Site Notes\n\nThe pump room is on level 2.\n")
    (tmp_path / "docs" / "ignored.csv").write_text("a,b\n")

    report = json.loads(_tome("ingest", str(tmp_path / "docs"), "--store", store, "--json").stdout)
    assert sorted(Path(r["source"]).name for r in report["added"]) == ["msa.txt", "notes.md"]
    assert report["failed"] == [] and report["unchanged"] == []

    docs = json.loads(_tome("docs", "--json", "--store", store).stdout)
    assert {d["title"] for d in docs} == {"MASTER SERVICES AGREEMENT", "Site Notes"}
    assert set(docs[0]) >= {"doc_id", "source", "title", "pages", "chunks"}
    table = _tome("docs", "--store", store).stdout
    assert table.splitlines()[0].split() == ["DOC_ID", "PAGES", "CHUNKS", "TITLE", "SOURCE"]

    hits = json.loads(_tome("search", "termination for convenience", "--doc", "msa.txt", "-k", "2", "--json",
                            "--store", store).stdout)
    assert len(hits) == 2 and "ninety (90) days" in hits[0]["text"]
    assert set(hits[0]) >= {"text", "doc_id", "source", "title", "pages", "section", "score", "start", "end",
                            "dense_score", "keyword_score"}
    printed = _tome("search", "pump room", "--store", store, "-k", "1").stdout
    assert printed.startswith("1. Site Notes · p. 1") and "level 2" in printed

    msa = next(d for d in docs if d["title"] == "MASTER SERVICES AGREEMENT")
    assert _tome("rm", msa["doc_id"][:6], "--store", store).stdout.startswith(f"removed {msa['doc_id']}")
    missing = _tome("rm", msa["doc_id"], "--store", store, check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("tome: error: no document matches")
    assert [d["title"] for d in json.loads(_tome("docs", "--json", "--store", store).stdout)] == ["Site Notes"]
    bad = _tome("search", "x", "-k", "0", "--store", store, check=False)
    assert bad.returncode == 2 and "k=0" in bad.stderr
    typo = _tome("docs", "--store", str(tmp_path / "typo"), check=False)
    assert typo.returncode == 2 and "no Tome store here" in typo.stderr and not (tmp_path / "typo").exists()
