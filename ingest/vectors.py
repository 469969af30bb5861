"""The dense half of the store: a Chroma PersistentClient collection of chunk embeddings.

Chroma only sees vectors we computed (never its default embedding function, which downloads a
model), with cosine distance. One client per store folder per process, shared by every `Store`
on that folder: Chroma caches its system per path, so a second client could not reload it.
"""

import threading
from pathlib import Path

import numpy as np

COLLECTION = "chunks"

_clients_lock = threading.Lock()
_clients: dict[Path, "VectorIndex"] = {}


def vector_index(folder: Path) -> "VectorIndex":
    with _clients_lock:
        if folder not in _clients:
            _clients[folder] = VectorIndex(folder / "chroma")
        return _clients[folder]


class VectorIndex:
    def __init__(self, path: Path):
        self.path = path
        self._client = None
        self._collection = None
        self.generation = -1  # the catalog generation this view reflects
        self.lock = threading.RLock()  # one thread at a time uses the client

    @property
    def collection(self):
        if self._collection is None:
            self._open()
        return self._collection

    def _open(self) -> None:
        import chromadb
        from chromadb.config import Settings

        self._client = chromadb.PersistentClient(
            path=str(self.path), settings=Settings(anonymized_telemetry=False, allow_reset=False)
        )
        self._collection = self._client.get_or_create_collection(
            COLLECTION, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    def reopen(self) -> None:
        """Drop the in-memory view (another process wrote to the folder) and load it again."""
        self.close()
        self._open()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._collection = None

    def upsert(self, ids: list[str], vectors: np.ndarray, metadatas: list[dict], texts: list[str]) -> None:
        batch = self._client.get_max_batch_size() if self._client else 1000
        batch = min(batch, 1000)
        for start in range(0, len(ids), batch):
            end = start + batch
            self.collection.upsert(
                ids=ids[start:end], embeddings=vectors[start:end], metadatas=metadatas[start:end],
                documents=texts[start:end],
            )

    def delete_document(self, doc_id: str) -> None:
        self.collection.delete(where={"doc_id": doc_id})

    def query(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Up to n (chunk id, cosine similarity) pairs, most similar first (approximate: HNSW).
        Chroma returns all it has when it holds fewer than n, so no count() first (it costs as
        much as the query)."""
        result = self.collection.query(query_embeddings=vector[None, :], n_results=n, include=["distances"])
        return [(i, 1.0 - d) for i, d in zip(result["ids"][0], result["distances"][0])]

    def nearest_among(self, vector: np.ndarray, ids: list[str], n: int) -> list[tuple[str, float]]:
        """Up to n of `ids` (one document's chunks), most similar first, compared one by one.
        A document holds tens to hundreds of chunks: reading their vectors is far cheaper than
        a `where` query, which walks the whole HNSW graph skipping other documents' chunks,
        and exact where the graph is approximate."""
        found, similarities = self._similarities(ids, vector)
        order = np.argsort(-similarities, kind="stable")[:n]
        return [(found[i], float(similarities[i])) for i in order]

    def similarities(self, ids: list[str], vector: np.ndarray) -> dict[str, float]:
        found, similarities = self._similarities(ids, vector)
        return dict(zip(found, similarities.tolist()))

    def _similarities(self, ids: list[str], vector: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(the ids Chroma holds, in its order; their cosine similarities to `vector`)."""
        if not ids:
            return [], np.zeros(0, np.float32)
        result = self.collection.get(ids=ids, include=["embeddings"])
        vectors = np.asarray(result["embeddings"], dtype=np.float32).reshape(len(result["ids"]), -1)
        return result["ids"], vectors @ vector

    def ids(self) -> set[str]:
        """Every chunk id in the collection (for consistency checks)."""
        return set(self.collection.get(include=[])["ids"])
