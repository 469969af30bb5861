"""The benchmark's CUAD splits: the dev contracts retrieval was tuned on never leak into the
held-out figures, and both are the same from run to run."""

from ingest.bench import DEV_DOCS, cuad_contracts

NAMES = [f"cuad-{i:03d}.pdf" for i in range(0, 650, 10)]  # 65 contracts, like the PDF set


def test_dev_and_held_out_split_the_contracts():
    dev = cuad_contracts(NAMES, "dev", None, 0)
    held_out = cuad_contracts(NAMES, "held-out", None, 0)
    assert len(dev) == DEV_DOCS and not set(dev) & set(held_out)
    assert sorted(dev + held_out) == NAMES == cuad_contracts(list(reversed(NAMES)), "all", None, 0)
    assert cuad_contracts(list(reversed(NAMES)), "dev", None, 0) == dev  # input order does not matter


def test_a_seeded_sample_stays_within_its_split():
    held_out = set(cuad_contracts(NAMES, "held-out", None, 0))
    sample = cuad_contracts(NAMES, "held-out", 16, 1)
    assert len(sample) == 16 and set(sample) <= held_out
    assert sample == cuad_contracts(NAMES, "held-out", 16, 1) != cuad_contracts(NAMES, "held-out", 16, 2)
    assert cuad_contracts(NAMES, "all", 16, 0) == cuad_contracts(NAMES, "dev", None, 0)  # earlier runs' `--docs 16`
