"""Fixtures for the Q&A and summary tests: one small contract and one small manual, ingested
once per session (embedding is the slow part)."""

import inspect

import pytest

from ingest import Store, ingest_paths
from tests.app.texts import CONTRACT, MANUAL


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(collector, name, obj):
    """The langchain-tests suites hold a few coroutine tests: mark those for pytest-asyncio (one
    of their dependencies, in strict mode) before it sorts the collected items, and leave the
    synchronous ones unmarked. Innermost wrapper (trylast), so this runs before its own."""
    outcome = yield
    if inspect.iscoroutinefunction(obj):
        result = outcome.get_result()
        for item in result if isinstance(result, list) else [result] if result else []:
            item.add_marker(pytest.mark.asyncio)


@pytest.fixture(scope="session")
def library(tmp_path_factory) -> Store:
    """A store holding the contract (msa.txt) and the manual (manual.txt)."""
    folder = tmp_path_factory.mktemp("library")
    (folder / "msa.txt").write_text(CONTRACT)
    (folder / "manual.txt").write_text(MANUAL)
    store = Store(folder / "store", lock_timeout_s=5)
    report = ingest_paths([folder / "msa.txt", folder / "manual.txt"], store)
    assert report.failed == []
    yield store
    store.close()


@pytest.fixture(scope="module")
def one_doc(tmp_path_factory) -> Store:
    """A store holding only the contract (per module: model states saved in it stay local)."""
    folder = tmp_path_factory.mktemp("one-doc")
    (folder / "msa.txt").write_text(CONTRACT)
    store = Store(folder / "store", lock_timeout_s=5)
    assert ingest_paths([folder / "msa.txt"], store).failed == []
    yield store
    store.close()


@pytest.fixture(scope="session")
def assistant(library):
    from app.qa import Assistant

    return Assistant(library)


@pytest.fixture(scope="session")
def msa(library) -> str:
    return library.resolve("msa.txt")


@pytest.fixture(scope="session")
def manual(library) -> str:
    return library.resolve("manual.txt")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A tiny random Granite 4.0 H model folder (checkpoint and tokenizer)."""
    from tests.app.runtime import write_model

    return write_model(tmp_path_factory.mktemp("model") / "granite-tiny")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread (their ops are too small to share), and so do the
    embedder's small batches on a machine shared with other jobs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
