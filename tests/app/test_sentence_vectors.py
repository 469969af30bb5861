"""Sentence embeddings computed once and reused (app/sentence_vectors.py), and the web server's
background preparation of them (app/ui/prepare.py)."""

import shutil
import threading
import time

import numpy as np
import pytest

from app.context import Source
from app.evidence import sentences
from app.extractive import SENTENCE_VECTORS
from app.qa import Assistant
from app.sentence_vectors import BATCH, SentenceVectors, between_batches
from app.ui.prepare import Preparation
from app.ui.turns import TurnQueue

TEXT = " ".join(f"Clause {i}: the Supplier shall deliver item number {i} within {i + 2} days of the order."
                for i in range(40))


class CountingEmbedder:
    """Deterministic vectors from the text; counts what it was asked to embed."""

    dimension = 8
    identity = "counting/8"

    def __init__(self):
        self.embedded: list[str] = []

    def encode(self, texts, batch_size=32):
        self.embedded += texts
        return np.stack([self._vector(t) for t in texts])

    def encode_query(self, text):
        self.embedded.append(text)
        return self._vector(text)

    def _vector(self, text):
        vector = np.random.default_rng(abs(hash(text)) % 2**32).normal(size=self.dimension).astype(np.float32)
        return vector / np.linalg.norm(vector)


def passage(start: int, end: int) -> list:
    return sentences([Source("doc", "", start, end, TEXT[start:end], "", "retrieved")])


def test_a_sentence_is_embedded_once_and_served_from_memory_after():
    embedder = CountingEmbedder()
    vectors = SentenceVectors(embedder)
    first = vectors.get(passage(0, 600))
    asked = len(embedder.embedded)
    again = vectors.get(passage(0, 600) + passage(0, 600))
    assert asked == len(passage(0, 600)) and len(embedder.embedded) == asked
    assert np.array_equal(again[:len(first)], first)
    assert np.allclose(first[0], embedder._vector(passage(0, 600)[0].text))


def test_a_prepared_document_leaves_a_question_nothing_to_embed():
    embedder = CountingEmbedder()
    vectors = SentenceVectors(embedder)
    count = vectors.prepare("doc", TEXT)
    assert count == len(embedder.embedded) == 40 and vectors.prepared("doc")
    candidates = passage(TEXT.index("Clause 7:"), TEXT.index("Clause 12:"))
    got = vectors.get(candidates)
    assert len(embedder.embedded) == 40  # nothing new
    assert np.allclose(got, np.stack([embedder._vector(c.text) for c in candidates]))
    assert vectors.prepare("doc", TEXT) == 0


def test_long_embeddings_report_each_batch_and_a_raise_there_stops_them():
    embedder = CountingEmbedder()
    vectors = SentenceVectors(embedder)
    seen = []

    def stop_after_two(done, total):
        seen.append((done, total))
        if len(seen) == 2:
            raise KeyboardInterrupt  # what Streamlit's Stop does at the page's next call

    token = between_batches.set(stop_after_two)
    try:
        with pytest.raises(KeyboardInterrupt):
            vectors.get(passage(0, len(TEXT)))
    finally:
        between_batches.reset(token)
    assert seen == [(BATCH, 40), (2 * BATCH, 40)]
    assert len(embedder.embedded) == len(vectors) == 2 * BATCH  # the finished batches are kept


def test_forget_drops_a_documents_vectors():
    vectors = SentenceVectors(CountingEmbedder())
    vectors.prepare("doc", TEXT)
    vectors.forget(["doc"])
    assert len(vectors) == 0 and not vectors.prepared("doc") and vectors.documents() == set()


def test_a_prepared_document_is_saved_and_loaded_by_the_next_process(tmp_path):
    SentenceVectors(CountingEmbedder(), tmp_path).prepare("doc", TEXT)
    later = CountingEmbedder()
    vectors = SentenceVectors(later, tmp_path)
    assert vectors.prepare("doc", TEXT) == 0 and later.embedded == [] and vectors.documents() == {"doc"}
    assert np.allclose(vectors.get(passage(0, 300)), np.stack([later._vector(c.text) for c in passage(0, 300)]))
    changed = CountingEmbedder()
    assert SentenceVectors(changed, tmp_path).prepare("doc", TEXT.replace("Supplier", "Vendor")) == 40
    vectors.forget(["doc"])
    assert list(tmp_path.iterdir()) == []


def test_answers_are_the_same_with_prepared_documents(library, msa, manual):
    fresh, prepared = Assistant(library), Assistant(library)
    for doc_id in (msa, manual):
        assert prepared.extractor.prepare(doc_id) > 0
    for question in ("When can the customer terminate?", "What is the cap on liability?",
                     "How do I reset the drive after a fault?", "Is there a non-compete?"):
        a, b = fresh.ask(question), prepared.ask(question)
        assert (a.text, a.citations, a.covered) == (b.text, b.citations, b.covered)


def test_preparation_waits_while_a_request_runs_then_prepares_every_document(library):
    shutil.rmtree(library.path / SENTENCE_VECTORS, ignore_errors=True)  # saved by an earlier test
    turns = TurnQueue()
    assistant = Assistant(library)
    preparation = Preparation(library, assistant.extractor, turns)
    assert preparation.unprepared() == len(library.documents()) == 2
    held, release = threading.Event(), threading.Event()

    def request():
        with turns.turn():
            held.set()
            release.wait(10)

    worker = threading.Thread(target=request)
    worker.start()
    held.wait(10)
    preparation.start()
    time.sleep(0.5)
    assert len(assistant.extractor.sentence_vectors) == 0  # waiting for the request
    release.set()
    worker.join()
    assert preparation.wait(120)
    assert preparation.unprepared() == 0
    assert sorted(f.stem for f in (library.path / SENTENCE_VECTORS).iterdir()) == sorted(
        d.doc_id for d in library.documents())
