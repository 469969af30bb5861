"""Ingestion settings: one frozen dataclass, validated on construction.

Everything that changes what is stored for a document (chunk sizes, the chunker's version, the
embedder) goes into `IngestSettings.key()`; a document stored under another key is re-chunked the
next time its file is ingested.
"""

import hashlib
import json
from dataclasses import dataclass

from ingest.errors import IngestError

# Bump when cleaning, structure detection or chunking change what a document's chunks contain.
CHUNKER_VERSION = 4

DEFAULT_STORE = ".tome"


@dataclass(frozen=True)
class IngestSettings:
    # The whole embedded text of a chunk (context header + body + the model's two special
    # tokens) stays within this many tokens; 256 is all-MiniLM-L6-v2's max_seq_length.
    chunk_tokens: int = 256
    # Trailing sentences carried into the next chunk when a chunk ends mid-section, so a
    # clause cut at a chunk edge is still whole in one of the two.
    overlap_tokens: int = 48
    # Files larger than this are refused with a clear message instead of being parsed.
    max_file_bytes: int = 200 * 2**20
    # A PDF page that takes longer than this to extract is a parser loop on a malformed file.
    page_timeout_s: float = 60.0
    # Address-space limit of the PDF parser process: a decompression bomb fails, not the machine.
    parser_memory_bytes: int = 4 * 2**30

    def __post_init__(self) -> None:
        if not 32 <= self.chunk_tokens <= 8192:
            raise IngestError(f"chunk_tokens={self.chunk_tokens}: expected 32 to 8192")
        if not 0 <= self.overlap_tokens <= self.chunk_tokens // 2:
            raise IngestError(
                f"overlap_tokens={self.overlap_tokens}: expected 0 to half of chunk_tokens"
            )
        if self.max_file_bytes <= 0:
            raise IngestError(f"max_file_bytes={self.max_file_bytes}: expected a positive size")
        if self.page_timeout_s <= 0:
            raise IngestError(f"page_timeout_s={self.page_timeout_s}: expected a positive time")
        if self.parser_memory_bytes < 256 * 2**20:
            raise IngestError(f"parser_memory_bytes={self.parser_memory_bytes}: expected >= 256 MiB")

    def key(self, embedder: str) -> str:
        """A short hash of everything that shapes stored chunks, plus the embedder's identity."""
        shaping = {
            "chunker": CHUNKER_VERSION,
            "chunk_tokens": self.chunk_tokens,
            "overlap_tokens": self.overlap_tokens,
            "embedder": embedder,
        }
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]
