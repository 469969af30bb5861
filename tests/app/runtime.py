"""The built-in runtime as the app sees it, over a tiny random checkpoint, until
`inference.langchain.ChatGranite` is available: the public attributes the app uses (`model`,
`tokenizer`, `generator`, `model_path`, `temperature`, `max_tokens`) and LangChain's `stream`
for the retrieval path. `Scripted` stands in for the generator when a test needs fixed output.
"""

import shutil
from pathlib import Path
from types import SimpleNamespace

import torch

from inference import Generator, HybridModel, Tokenizer
from tests.inference import granite_style
from tests.inference.tiny import Tiny, write

# NoPE attention after two Mamba layers: positions beyond max_position_embeddings are fine, so the
# context budget can be raised for long documents.
TINY = Tiny("app-dense-attn-last", ("mamba", "mamba", "attention"), groups=2, tied=False)
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def write_model(folder: Path) -> Path:
    """A complete tiny model folder: checkpoint plus a Granite-style tokenizer."""
    write(TINY, folder, seed=7)
    granite_style.build(folder)
    return folder


def copy_model(source: Path, folder: Path) -> Path:
    shutil.copytree(source, folder)
    return folder


class Runtime:
    def __init__(self, folder: Path, context_budget: int | None = None, max_tokens: int = 16):
        self.model_path = str(folder)
        self.model = HybridModel.from_pretrained(folder, dtype=torch.float32, context_budget=context_budget)
        self.tokenizer = Tokenizer.from_pretrained(folder)
        self.generator = Generator(self.model, self.tokenizer, progress=False)
        self.temperature, self.max_tokens = 0.0, max_tokens

    def stream(self, messages):
        turns = [{"role": _ROLES[m.type], "content": m.content} for m in messages]
        for piece in self.generator.stream(turns, max_new_tokens=self.max_tokens):
            yield SimpleNamespace(content=piece)


class Scripted:
    """A generator that replies with fixed pieces (or `pieces(messages)`), recording what it was asked."""

    def __init__(self, pieces):
        self.pieces, self.calls = pieces, []

    def stream(self, messages, state=None, **options):
        self.calls.append({"messages": messages, "state": state, **options})
        return _Pieces(self.pieces(messages) if callable(self.pieces) else self.pieces)


class _Pieces:
    def __init__(self, pieces):
        self._it, self.closed = iter(pieces), False

    def __iter__(self):
        return self._it

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True
