"""Session-wide tiny checkpoints (written once, shared by the inference tests)."""

import logging
import shutil

import pytest

from tests.inference import granite_style
from tests.inference.tiny import MATRIX, write

logging.getLogger("transformers").setLevel(logging.ERROR)  # its "falling back to torch" notices


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {tiny.name: write(tiny, root / tiny.name, seed=i) for i, tiny in enumerate(MATRIX)}


@pytest.fixture(scope="session")
def tiny_folder(tiny_folders):
    """The MoE hybrid checkpoint most single-model tests use."""
    return tiny_folders["moe-attn-middle-g2-untied-rope"]


@pytest.fixture(scope="session")
def model_folder(tiny_folder, tmp_path_factory):
    """A complete model folder: the tiny MoE hybrid checkpoint plus a Granite-style tokenizer."""
    folder = tmp_path_factory.mktemp("model") / "granite-tiny"
    shutil.copytree(tiny_folder, folder)
    granite_style.build(folder)
    return folder


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Run the tiny models on one thread: their ops are too small to gain from a second one, and
    on a loaded machine OpenMP's barriers made each decode step 40x slower (5.8 vs 223 ms)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
