"""Chunks fit the embedder's window, keep to sentence boundaries and know their pages; keyword
tokens keep section numbers and defined terms; BM25 ranks exact matches first."""

import numpy as np
import pytest

from ingest.chunk import chunk_document
from ingest.clean import clean_pages
from ingest.embed import get_embedder
from ingest.keyword import KeywordIndex, keyword_tokens
from ingest.parse import RawPage
from ingest.structure import contents_tables, find_headings
from tests.ingest.conftest import LOREM


def _chunks(text_pages, title="Test Agreement", chunk_tokens=256, overlap=48, skip_contents=False):
    doc = clean_pages(tuple(RawPage(i + 1, str(i + 1), t) for i, t in enumerate(text_pages)))
    skipped = contents_tables(doc.text) if skip_contents else ()
    return doc, chunk_document(
        doc.text, title, find_headings(doc.text), doc.pages, get_embedder(), chunk_tokens, overlap, skipped
    )


def test_chunks_fit_the_model_window_without_truncation():
    embedder = get_embedder()
    giant_word = "x" * 3000
    run_on = "and the Supplier shall " * 400  # one 2,000-token sentence without a full stop
    table = "\n".join(f"{i} | Fee item {i} | {i * 10}.00 | EUR" for i in range(300))
    doc, chunks = _chunks([LOREM * 40, run_on, giant_word, table], title="A title " * 30)
    counts = embedder.count_tokens([c.embed_text for c in chunks])
    assert max(counts) + 2 <= embedder.max_seq_length
    # what the model actually sees is the whole chunk: its tokenizer would not cut anything
    assert all(len(embedder.model.tokenizer(c.embed_text)["input_ids"]) <= embedder.max_seq_length for c in chunks)
    covered = set()
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text and c.embed_text.endswith(c.text)
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())


def test_chunks_end_at_sentences_overlap_and_start_at_sections(contract_text):
    sentences = " ".join(f"Sentence number {i} says the Supplier shall act." for i in range(200))
    doc, chunks = _chunks([sentences])
    assert len(chunks) > 3
    assert all(c.text.endswith("act.") and c.text.startswith("Sentence number") for c in chunks)
    assert all(a.end > b.start for a, b in zip(chunks, chunks[1:])) or all(a.end <= b.start for a, b in zip(chunks, chunks[1:]))
    assert any(a.end > b.start for a, b in zip(chunks, chunks[1:]))  # overlap when a chunk is full

    doc, chunks = _chunks([contract_text])
    starts = {c.text.split("\n")[0] for c in chunks}
    assert {"ARTICLE 9", "ARTICLE 12", "EXHIBIT A"} <= starts
    article_12 = next(c for c in chunks if c.text.startswith("ARTICLE 12"))
    assert article_12.section == "Article 12 TERMINATION"
    assert article_12.embed_text.startswith("Test Agreement | Article 12 TERMINATION\n")


def test_chunk_pages():
    doc, chunks = _chunks([LOREM * 12, LOREM * 12, LOREM * 12])
    assert chunks[0].pages[0] == 1 and chunks[-1].pages[1] == 3
    assert any(c.pages[0] < c.pages[1] for c in chunks)  # a chunk running across a page break


def test_a_chunk_is_labelled_by_the_section_holding_most_of_it():
    names = ["Delivery", "Acceptance", "Warranty", "Invoices", "Audit", "Insurance", "Notices", "Assignment"]
    text = "ARTICLE 1\nGENERAL\n" + "\n".join(
        f"1.{n} {name}\n" + " ".join(f"The Supplier shall meet obligation {i} of the {name.lower()} terms."
                                    for i in range(7 + 5 * (n % 3)))
        for n, name in enumerate(names, start=1)
    )
    doc, chunks = _chunks([text], chunk_tokens=128, overlap=24)
    first = chunks[0]  # the article's heading line, then mostly 1.1
    assert first.text.startswith("ARTICLE 1\nGENERAL\n1.1 Delivery") and first.section == "Article 1 GENERAL > 1.1 Delivery"
    assert first.embed_text.startswith("Test Agreement | Article 1 GENERAL > 1.1 Delivery\n")
    headings = [h for h in find_headings(doc.text) if h.kind != "clause"]
    for c in chunks:  # the deepest section holding over half of the chunk, when one does
        holding = [h.path for h in headings if 2 * (min(c.end, h.end) - max(c.start, h.start)) > c.end - c.start]
        assert c.section == max(holding, key=lambda path: path.count(" > "), default=c.section), c.text[:80]
    assert max(get_embedder().count_tokens([c.embed_text for c in chunks])) + 2 <= 128


CONTENTS_PAGE = "SUPPLY AGREEMENT\nBetween Acme Corp. and Widget Ltd.\nTABLE OF CONTENTS\n" + "\n".join(
    f"{n} {name} ........................ {n + 1}" for n, name in enumerate(
        ["DEFINITIONS", "SUPPLY OF GOODS", "PRICES AND PAYMENT", "TERM AND TERMINATION"], start=1)
)


def test_a_contents_table_is_kept_out_of_the_chunks(contract_text):
    doc, chunks = _chunks([CONTENTS_PAGE, contract_text], skip_contents=True)
    (start, end), = contents_tables(doc.text)
    assert doc.text[start:end].startswith("TABLE OF CONTENTS") and doc.text[end:].startswith("\n")
    assert all(c.end <= start or c.start >= end for c in chunks)  # none holds or spans the table
    assert chunks[0].text == "SUPPLY AGREEMENT\nBetween Acme Corp. and Widget Ltd." and chunks[0].pages == (1, 1)
    assert chunks[1].text.startswith("MASTER SERVICES AGREEMENT") and chunks[1].pages[0] == 2
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace() and not start <= i < end)
    _, unskipped = _chunks([CONTENTS_PAGE, contract_text])
    assert any("TERM AND TERMINATION ...." in c.text for c in unskipped)


def test_keyword_tokens_keep_contract_terms():
    tokens = keyword_tokens("Under Section 9.2 and 12.3(a), the Licensee's Non-Compete covers $1,000,000; see Affiliates.")
    assert {"9.2", "12.3(a)", "12.3", "licensee", "non-compete", "non", "compete", "1000000", "affiliate"} <= set(tokens)
    assert "the" not in tokens and "section" in tokens
    assert keyword_tokens("Section 9") == ["section", "9"]


@pytest.mark.parametrize("query, best", [(["9.2"], 1), (["12.3(a)"], 2), (["indemnify"], 0)])
def test_bm25_prefers_exact_terms(query, best):
    texts = ["The Supplier shall indemnify the Customer.", "As stated in Section 9.2 the fee is due.",
             "Under 12.3(a) the licence ends. Section 9 applies."]
    vocabulary = {}
    rows = []
    for i, text in enumerate(texts):
        tokens = keyword_tokens(text)
        ids = [vocabulary.setdefault(t, len(vocabulary)) for t in tokens]
        unique, counts = np.unique(np.array(ids, dtype=np.int32), return_counts=True)
        rows.append((f"c{i}", unique.astype(np.int32).tobytes(), counts.astype(np.int32).tobytes(), len(tokens)))
    index = KeywordIndex.build(rows)
    scores = index.scores([vocabulary[t] for t in keyword_tokens(" ".join(query))])
    assert int(np.argmax(scores)) == best and sorted(scores)[-2] < scores[best]
    assert list(index.scores([vocabulary["9.2"]], 1, 3)) == [scores_for(index, vocabulary, "9.2")[1], 0.0]


def scores_for(index, vocabulary, term):
    return index.scores([vocabulary[term]])
