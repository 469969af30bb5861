"""Sentence embeddings of the stored documents, kept in memory and reused across questions.

Embedding the two or three dozen sentences of a question's passages is most of what an
extractive answer costs (seconds on a busy machine); the same clauses come back in follow-ups,
other questions and summaries. `SentenceVectors` keeps every vector it computes, keyed by the
sentence's span in its document, and `prepare` embeds a whole document ahead of time (the web
server does it in the background), so that a question only embeds itself.

Documents are keyed by content hash and the embedder is one per process, so a cached vector
never goes stale. A span the whole-document split did not produce (a passage cut elsewhere) is
simply embedded when asked for. With a folder (the Q&A keeps `<store>/sentence-vectors/`), a
prepared document's vectors are saved there, one file per document, and loaded by the next
process instead of embedded again; a file made by another embedder or for another text is
ignored.

Embeddings run in batches, calling the `between_batches` hook (if set in the calling context)
after each one: the web page uses it to show progress and to let Stop interrupt.
"""

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from pathlib import Path

import numpy as np

from app.context import Source
from app.evidence import Sentence, sentences
from ingest.embed import Embedder

# Sentences embedded per call: small enough that a hook (a Stop, a progress line) or a waiting
# question gets its turn soon (16 long clauses took up to 7 s at load average 12 on 2 cores,
# at most half that with 8), large enough to batch well.
BATCH = 8
# Up to this many sentences are embedded one at a time on one thread (`encode_query`): on a busy
# machine a multi-threaded batch of a few short texts waits seconds for its threads, one
# thread takes a tenth of a second each (measured at load average 16 on 2 cores).
FEW = 4
# Vectors kept (384 float32 each, 1.5 kB): 100,000 is about 150 MB, some 80 long contracts.
MAX_VECTORS = 100_000

# Called with (embedded, total) after each batch of a long embedding, in the caller's context
# (a thread or a Streamlit script run); None outside the web page.
between_batches: ContextVar[Callable[[int, int], None] | None] = ContextVar("between_batches", default=None)

Key = tuple[str, int, int]  # (doc_id, start, end)


class SentenceVectors:
    def __init__(self, embedder: Embedder, folder: Path | None = None):
        self.embedder, self.folder = embedder, folder
        self._vectors: dict[Key, np.ndarray] = {}
        self._prepared: set[str] = set()
        self._lock = threading.Lock()

    def get(self, candidates: list[Sentence]) -> np.ndarray:
        """One unit vector per candidate, embedding only those not seen before."""
        if not candidates:
            return np.zeros((0, self.embedder.dimension), np.float32)
        known = self._vectors  # a rebind (forget, overflow) leaves this snapshot whole
        keys = [_key(c) for c in candidates]
        fresh = self._embed([(key, c.text) for key, c in dict(zip(keys, candidates)).items() if key not in known])
        return np.stack([fresh[key] if key in fresh else known[key] for key in keys])

    def prepared(self, doc_id: str) -> bool:
        return doc_id in self._prepared

    def documents(self) -> set[str]:
        """The doc_ids some vector is kept for, in memory or in the folder."""
        saved = {f.stem for f in self.folder.glob("*.npz")} if self.folder and self.folder.is_dir() else set()
        return {key[0] for key in self._vectors} | saved

    def prepare(self, doc_id: str, text: str, pause: Callable[[], None] = lambda: None) -> int:
        """Embed every quotable sentence of a document not embedded yet; `pause()` is called
        before each batch (the server waits there while a question runs). Returns the count."""
        if doc_id in self._prepared:
            return 0
        whole = Source(doc_id, "", 0, len(text), text, "", "section")
        found = [(_key(s), s.text) for s in sentences([whole])]
        if len(self._vectors) + len(found) > MAX_VECTORS:
            return 0  # the library outgrows the cache: its questions embed on demand
        saved = self._load(doc_id, text)
        with self._lock:
            self._vectors.update(saved)
        missing = [(key, sentence) for key, sentence in found if key not in self._vectors]
        for i in range(0, len(missing), BATCH):
            pause()
            self._embed(missing[i:i + BATCH])
        if missing:
            vectors = self._vectors
            self._save(doc_id, text, {key: vectors[key] for key, _ in found if key in vectors})
        self._prepared.add(doc_id)
        return len(missing)

    def forget(self, doc_ids: Iterable[str]) -> None:
        """Drop the vectors of documents no longer stored, in memory and in the folder."""
        gone = set(doc_ids)
        with self._lock:
            self._vectors = {k: v for k, v in self._vectors.items() if k[0] not in gone}
            self._prepared -= gone
        for doc_id in gone:
            if self.folder is not None:
                saved_file(self.folder, doc_id).unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._vectors)

    def _embed(self, items: list[tuple[Key, str]]) -> dict[Key, np.ndarray]:
        hook = between_batches.get()
        fresh: dict[Key, np.ndarray] = {}
        step = 1 if len(items) <= FEW else BATCH
        for i in range(0, len(items), step):
            batch = items[i:i + step]
            if step == 1:
                vectors = [self.embedder.encode_query(batch[0][1])]
            else:
                vectors = self.embedder.encode([text for _, text in batch], batch_size=BATCH)
            with self._lock:
                if len(self._vectors) + len(batch) > MAX_VECTORS:
                    self._vectors = {}  # rare: a library beyond the cap; start over rather than grow
                    self._prepared = set()
                for (key, _), vector in zip(batch, vectors):
                    self._vectors[key] = fresh[key] = vector
            if hook is not None:
                hook(min(i + step, len(items)), len(items))
        return fresh


    def _stamp(self, text: str) -> str:
        """What a saved file must match: the embedder and the document's text."""
        identity = getattr(self.embedder, "identity", type(self.embedder).__name__)
        return f"{identity} {hashlib.sha256(text.encode()).hexdigest()}"

    def _load(self, doc_id: str, text: str) -> dict[Key, np.ndarray]:
        path = saved_file(self.folder, doc_id) if self.folder else None
        if path is None or not path.exists():
            return {}
        try:
            with np.load(path, allow_pickle=False) as saved:
                if str(saved["stamp"]) != self._stamp(text):
                    return {}
                spans, vectors = saved["spans"], saved["vectors"]
        except (OSError, ValueError, KeyError):
            return {}  # unreadable (a write cut short): embed again and overwrite it
        return {(doc_id, int(start), int(end)): vector for (start, end), vector in zip(spans, vectors)}

    def _save(self, doc_id: str, text: str, vectors: dict[Key, np.ndarray]) -> None:
        if self.folder is None or not vectors:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = self.folder / f"{doc_id}.{threading.get_native_id()}.partial"
            with open(partial, "wb") as out:
                np.savez(out, stamp=np.array(self._stamp(text)), spans=np.array([k[1:] for k in vectors], np.int64),
                         vectors=np.stack(list(vectors.values())))
            os.replace(partial, saved_file(self.folder, doc_id))  # readers see the old file or the new
        except OSError:
            pass  # a read-only store: the vectors stay in memory for this process


def saved_file(folder: Path, doc_id: str) -> Path:
    """Where a document's sentence vectors are kept in `folder`."""
    return folder / f"{doc_id}.npz"


def _key(sentence: Sentence) -> Key:
    return sentence.doc_id, sentence.start, sentence.end
