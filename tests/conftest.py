"""Fixtures shared by every test folder. Area-specific fixtures live in each folder's conftest."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
# Evaluation data prepared beside the repository; a user's clone has none, so tests skip.
EVALDATA = Path(os.environ.get("TOME_EVALDATA", REPO.parent / "shared" / "evaldata"))


@pytest.fixture(scope="session")
def evaldata() -> Path:
    if not EVALDATA.is_dir():
        pytest.skip(f"evaluation data not found at {EVALDATA}")
    return EVALDATA


@pytest.fixture(scope="session")
def sample_docs() -> Path:
    return REPO / "sample_docs"
