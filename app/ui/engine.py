"""What one `tome serve` process shares between its browser sessions: the store, the assistant,
the generator and the queue of turns on it. The page loads one `Engine` per (store, model) with
`st.cache_resource`; nothing here imports Streamlit.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.models import ModelInfo, ModelNotFoundError, describe, resolve_model
from app.prompts import ENABLE_GENERATION
from app.qa import Assistant
from app.ui.prepare import Preparation
from app.ui.turns import TurnQueue
from ingest import IngestError, Progress, Store, ingest_bytes

UPLOAD_TYPES = ("pdf", "txt", "md")
OUTCOMES = ("added", "replaced", "unchanged", "failed")


@dataclass(frozen=True)
class ModelStatus:
    """Which generator answers: "granite" (a loaded checkpoint) or "extractive" (no model)."""

    generator: str
    info: ModelInfo | None = None  # the model folder found, also when it cannot be used
    note: str = ""  # why generation is off and how to turn it on; "" when it is on

    def __post_init__(self):
        if self.generator not in ("granite", "extractive"):
            raise ValueError(f"generator {self.generator!r}: expected granite or extractive")

    @property
    def facts(self) -> list[str]:
        """ "1.46 B parameters", "bfloat16", "2.9 GB", "context 131,072 tokens" (what is known)."""
        info = self.info
        if info is None or info.problem:
            return []
        facts = [f"{info.parameters / 1e9:.2f} B parameters", info.dtype, f"{info.size_bytes / 1e9:.1f} GB"]
        if info.context_budget:
            facts.append(f"context {info.context_budget:,} tokens")
        return facts + ([info.layout] if info.layout else [])


def load_generator(model_dir: str | None = None):
    """(llm or None, ModelStatus). An explicit folder that is not a model raises
    ModelNotFoundError; a model found but unusable means extractive answers, with the reason."""
    try:
        folder = resolve_model(model_dir)
    except ModelNotFoundError as error:
        if model_dir:
            raise
        # None found is the usual case: say how to add one. A $TOME_MODEL that is not a model
        # folder is a mistake: say that.
        note = ENABLE_GENERATION if str(error).startswith("no model") else str(error)
        return None, ModelStatus("extractive", note=note)
    info = describe(folder)
    if info.problem:
        return None, ModelStatus("extractive", info, f"{folder.name} cannot be loaded: {info.problem}")
    try:
        from inference.langchain import ChatGranite
    except ImportError:
        return None, ModelStatus("extractive", info, f"found {folder.name}, but generated answers need "
                                 "inference.langchain, which this version does not have yet")
    return ChatGranite(model_path=str(folder)), ModelStatus("granite", info)


@dataclass(frozen=True)
class FileOutcome:
    """What became of one uploaded file."""

    name: str
    outcome: str  # one of OUTCOMES
    pages: int = 0
    chunks: int = 0
    detail: str = ""  # the reason a file failed, or a note ("pages 3, 4 need OCR")
    doc_id: str = ""
    seconds: float = 0.0


class Engine:
    def __init__(self, store_dir: str | Path, model_dir: str | None = None):
        self.store = Store(store_dir)
        self.llm, self.status = load_generator(model_dir)
        self.assistant = Assistant(self.store, self.llm)
        self.turns = TurnQueue()
        self.preparation = Preparation(self.store, self.assistant.extractor, self.turns)
        vectors = self.assistant.extractor.sentence_vectors
        self.store.on_removal(lambda removal: vectors.forget([removal.doc_id]))
        self._warm()
        self.preparation.start()

    def _warm(self) -> None:
        """Load what the first question would otherwise wait for: the embedding model and, when
        there are documents, the keyword index. (The documents' sentences are embedded after,
        in the background: see Preparation.)"""
        from ingest.embed import get_embedder

        get_embedder().encode(["warm up"])
        if self.store.documents():
            self.store.search("warm up", k=1)

    def upload(self, name: str, data: bytes, on_progress: Callable[[Progress], None] | None = None) -> FileOutcome:
        """Ingest one uploaded file. A file that fails leaves the store as it was."""
        began = time.monotonic()
        try:
            report = ingest_bytes(name, data, self.store, on_progress)
        except IngestError as error:  # the store itself (busy, unwritable), not this file
            return FileOutcome(name, "failed", detail=str(error), seconds=time.monotonic() - began)
        seconds = time.monotonic() - began
        self.preparation.start()
        if report.failed:
            return FileOutcome(name, "failed", detail=report.failed[0][1], seconds=seconds)
        for outcome in ("added", "replaced", "unchanged"):
            for result in getattr(report, outcome):
                return FileOutcome(name, outcome, result.pages, result.chunks, result.note, result.doc_id, seconds)
        return FileOutcome(name, "failed", detail="nothing was stored", seconds=seconds)
