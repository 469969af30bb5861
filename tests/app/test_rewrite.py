"""Follow-up rewriting without a model, on a fixed set of conversations: each rewritten question
must be exactly the expected standalone question, and every one must be well formed."""

import re

import pytest

from app.rewrite import rewrite_rules

# (previous standalone question, follow-up, party names the document defines, expected)
CASES = [
    ("What is the date of this contract?", "And when does it become effective?", (),
     "When does this contract become effective?"),
    ("When does this contract become effective?", "When does it expire?", (), "When does this contract expire?"),
    ("When does this contract expire?", "Can it be renewed?", (), "Can this contract be renewed?"),
    ("Can this contract be renewed?", "How much notice is needed to stop it from renewing?", (),
     "How much notice is needed to stop this contract from renewing?"),
    ("Does the contract contain a license granted by one party to its counterparty?",
     "Can the licensee transfer it?", (), "Can the licensee transfer the license?"),
    ("Can the licensee transfer the license?", "Does it extend to affiliates?", (),
     "Does the license extend to affiliates?"),
    ("Does the contract include a cap on liability?", "Are there exceptions where it does not apply?", (),
     "Are there exceptions where the cap on liability does not apply?"),
    ("What must the Customer pay on termination?", "What about the other party?", ("Customer", "Provider"),
     "What must the Provider pay on termination?"),
    ("What is the notice period for termination for convenience?", "and for cause?", (),
     "What is the notice period for termination for cause?"),
    ("What is the governing law?", "What about the NDA?", (), "What is the governing law in the NDA?"),
    ("What is the governing law of the NDA?", "what about the supply agreement?", (),
     "What is the governing law of the supply agreement?"),
    ("When does the agreement expire?", "And the renewal term?", (),
     "What does the agreement say about the renewal term?"),
    ("What is the liability cap?", "Is that mutual?", (), "Is the liability cap mutual?"),
    ("Who pays for shipping?", "what about insurance?", (), "Who pays for insurance?"),
    ("What is the Provider's indemnity obligation?", "Is it capped?", (),
     "Is the Provider's indemnity obligation capped?"),
    ("What are the payment terms?", "Also, what is the late payment interest?", (),
     "What is the late payment interest?"),
]

_PRONOUN = re.compile(r"\b(?:it|its|they|them|their)\b", re.I)


@pytest.mark.parametrize("previous, follow_up, roles, expected", CASES)
def test_rewrites_the_fixed_set(previous, follow_up, roles, expected):
    rewritten = rewrite_rules(follow_up, previous, roles)
    assert rewritten == expected
    assert rewritten[0].isupper() and rewritten.endswith("?") and rewritten.count("?") == 1
    assert not _PRONOUN.search(rewritten.replace("its counterparty", ""))


def test_a_first_question_is_only_tidied():
    assert rewrite_rules("  what is the   fee ", None) == "What is the fee?"
