"""Questions about a kind of clause find it even when they share no words with it; questions
about a contract's title, parties or date find its opening lines."""

import numpy as np
import pytest

import ingest.clauses
from ingest import Store, ingest_paths
from ingest.clauses import CLAUSE_TYPES, asked_clause, clause_vectors
from ingest.embed import get_embedder
from ingest.settings import IngestSettings
from ingest.store import _names_only

# Sections a supply contract might have. The restraint on competition never says "compete" and
# shares no content word with the question below.
SUPPLY_CONTRACT = """SUPPLY AGREEMENT

This Supply Agreement is made on 3 March 2021 between Harrow Components Ltd ("Harrow") and
Lindqvist Medical AB ("Lindqvist").

1. Supply of Goods

1.1 Harrow shall manufacture the Goods to the Specification and deliver them to the Delivery
Point within the lead times stated in Schedule 2. Every delivery shall carry a delivery note
dated and signed by Harrow's dispatch office, stating the order number and quantities.

1.2 Lindqvist shall issue purchase orders no later than the tenth day of each month. Orders
placed after that day shall be treated as placed on the first day of the following month.

2. Prices and Payment

2.1 The prices are set out in Schedule 1 and are exclusive of VAT. Harrow shall invoice each
delivery on the date of dispatch, and Lindqvist shall pay each invoice within forty-five days of
the invoice date.

2.2 Late payments bear interest at four percent above the base rate, accruing daily from the
due date until the date of payment.

3. Restrictions on Harrow

3.1 While this Agreement is in force and for eighteen months after it ends, Harrow shall not,
directly or indirectly, own, operate or engage in any business that manufactures or sells
infusion pump housings in the Nordic countries, other than for Lindqvist.

4. Quality

4.1 Harrow shall keep a quality system certified to ISO 13485 and shall give Lindqvist thirty
days' notice of any change to materials, processes or sites. Certificates shall be dated and
signed by Harrow's quality manager.

5. Term

5.1 This Agreement starts on the date above and continues for five years. Each annual review
shall be held in the month of the anniversary date, and the minutes dated and signed by both.
"""


@pytest.fixture(scope="module")
def vectors():
    return clause_vectors(get_embedder())


def test_every_question_form_finds_its_own_clause_type(vectors):
    embedder = get_embedder()
    for clause in CLAUSE_TYPES:
        for question in clause.questions:
            match = asked_clause(embedder.encode_query(question), vectors)
            assert match.clause == clause and match.weight == 1.0, question


@pytest.mark.parametrize("question", [
    "What tightening torque applies to the encoder module's cable connector?",
    "Which parameter sets the drive's Modbus address?",
    "Who is the Plant Director of the Guadalajara Facility?",
])
def test_questions_about_particular_things_ask_no_clause_type(vectors, question):
    assert asked_clause(get_embedder().encode_query(question), vectors) is None


def test_the_library_vectors_are_kept_in_the_store_folder(tmp_path, monkeypatch, vectors):
    embedder = get_embedder()
    first = clause_vectors(embedder, tmp_path)
    [saved] = tmp_path.glob("clauses-*.npy")
    with monkeypatch.context() as patched:
        patched.setattr(embedder, "encode", lambda texts: pytest.fail("embedded again"))
        again = clause_vectors(embedder, tmp_path)
    assert np.array_equal(first.forms, again.forms) and np.array_equal(first.wordings, again.wordings)
    assert np.allclose(again.forms, vectors.forms, atol=1e-6)
    saved.write_bytes(b"not a numpy file")
    assert np.allclose(clause_vectors(get_embedder(), tmp_path).wordings, vectors.wordings, atol=1e-6)


@pytest.mark.parametrize("question, wanted", [
    ("Is either party barred from competing?", "3.1 While this Agreement is in force"),
    ("When was this agreement signed?", "SUPPLY AGREEMENT"),
])
def test_clause_questions_find_clauses_they_share_no_words_with(tmp_path, monkeypatch, question, wanted):
    path = tmp_path / "supply.txt"
    path.write_text(SUPPLY_CONTRACT)
    # Small chunks, so that each section is a chunk of its own, as in a long contract.
    with Store(tmp_path / "store", settings=IngestSettings(chunk_tokens=64, overlap_tokens=0)) as store:
        ingest_paths([path], store)
        doc_id = store.documents()[0].doc_id
        assert store.documents()[0].chunks >= 6

        assert wanted in store.search(question, k=1, doc_id=doc_id)[0].text
        monkeypatch.setattr(ingest.clauses, "MATCH_FROM", 2.0)  # no question asks a clause type
        assert wanted not in store.search(question, k=1, doc_id=doc_id)[0].text


@pytest.mark.parametrize("query, name, named", [
    ("termination for convenience", "Termination for convenience", True),
    ("Governing law", "Governing law", True),
    ("force majeure clause", "Force majeure", True),
    ("Is there a non-compete?", "Non-compete", True),
    ("Can either party terminate this agreement for convenience?", "Termination for convenience", False),
    ("Is either party barred from competing?", "Non-compete", False),
])
def test_a_query_that_is_a_clause_types_name_is_searched_as_typed(query, name, named):
    assert _names_only(query, next(c for c in CLAUSE_TYPES if c.name == name)) is named
