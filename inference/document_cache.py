"""Read once, ask many: model states after a document prefix, kept on disk.

    cache = DocumentCache(".tome/states", max_bytes=8 << 30)
    state = cache.get_or_build(model, tokenizer, prefix_messages, doc_hash, prompt_version=PROMPT_VERSION)
    gen.stream(prefix_messages + [question], state=state)    # reads only the question's tokens
    cache.purge(doc_hash)                                    # the document was removed

`prefix_messages` (with `documents=`, if the prompt passes the document that way) is the start of
every conversation about the document, typically the system turn holding the whole text. The
state after it (Mamba conv and SSM states, attention K/V, the token ids) is saved in the
`HybridCache` file format under `folder/<doc_hash>/<key>.safetensors`, the key being the model's
fingerprint, its dtype and the prompt version. A file is used only if it loads for this model
and dtype and its token ids equal the freshly rendered prefix; anything else (another template
or tokenizer, an edited prompt, a damaged or truncated file) is rebuilt and replaces it.

The folder stays under `max_bytes`: after each save the least recently used states (by file
modification time, refreshed on every hit) are deleted. The most recent state also stays in
memory, with the prefix text it was rendered from, so consecutive questions about one document
neither re-read the file nor re-encode the prefix; a state larger than `max_bytes` is kept that
way only (an empty `<key>.in-memory` file marks it, so `purge`, from any process, ends its use).
"""

import hashlib
import os
import re
import tempfile
from pathlib import Path

from inference.cache import HybridCache
from inference.errors import CacheMismatchError, InferenceError
from inference.generate import Generator
from inference.memory import check_fits
from inference.model import HybridModel
from inference.tokenizer import Tokenizer

SUFFIX = ".safetensors"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class DocumentCache:
    def __init__(self, folder: str | Path, max_bytes: int):
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise InferenceError(f"max_bytes = {max_bytes!r} must be a positive number of bytes")
        self.folder, self.max_bytes = Path(folder), max_bytes
        self._recent: tuple[Path, HybridCache] | None = None  # the last state used, kept in memory

    def get_or_build(self, model: HybridModel, tokenizer: Tokenizer, prefix_messages: list[dict], doc_hash: str,
                     *, prompt_version: str = "", documents: list[dict] | None = None, progress=None) -> HybridCache:
        """The state after `prefix_messages` (rendered without a generation prompt), from disk if valid.

        progress: as for `Generator` (None: a bar on stderr when building a long prefix).
        """
        path = self.path(model, doc_hash, prompt_version)
        # Rendering is ~100x cheaper than encoding (0.4 vs 45 ms at 20K tokens): a repeat question
        # about the state in memory is recognised by its text and encodes nothing.
        text = tokenizer.render_chat(prefix_messages, documents, add_generation_prompt=False, sanitize=True)
        state = self._in_memory(path, text)
        if state is None:
            prefix = tokenizer.encode(text)
            state = self._load(model, path, prefix)
            if state is None:
                check_fits(model.config, model.dtype, len(prefix), what=f"reading document {doc_hash}")
                state = Generator(model, tokenizer, progress=progress).prefill(prefix)
                self._save(state, path, doc_hash, prompt_version)
            state.prompt_text = text
        self._recent = (path, state)
        return state

    def path(self, model: HybridModel, doc_hash: str, prompt_version: str = "") -> Path:
        """Where the state of this document, model, dtype and prompt version is kept."""
        if not isinstance(doc_hash, str) or not SAFE_NAME.fullmatch(doc_hash):
            raise InferenceError(f"doc_hash {doc_hash!r} must be 1-128 letters, digits, '.', '_' or '-'")
        identity = "\n".join([model.fingerprint, str(model.dtype), prompt_version])
        return self.folder / doc_hash / (hashlib.sha256(identity.encode()).hexdigest()[:24] + SUFFIX)

    def contains(self, model: HybridModel, doc_hash: str, prompt_version: str = "") -> bool:
        """Whether a state of this document is ready without reading it: saved on disk, or (too
        large for the cap) kept in memory by this cache. A changed prompt is only found on use."""
        path = self.path(model, doc_hash, prompt_version)
        in_memory = self._recent is not None and self._recent[0] == path and _memory_only_sign(path).is_file()
        return path.is_file() or in_memory

    def purge(self, doc_hash: str) -> int:
        """Delete every cached state of a document (all models and prompt versions); bytes freed."""
        if not isinstance(doc_hash, str) or not SAFE_NAME.fullmatch(doc_hash):
            raise InferenceError(f"doc_hash {doc_hash!r} must be 1-128 letters, digits, '.', '_' or '-'")
        folder = self.folder / doc_hash
        if self._recent is not None and self._recent[0].parent == folder:
            self._recent = None
        freed = 0
        for file in folder.glob("*") if folder.is_dir() else ():
            freed += _remove(file)
        if folder.is_dir():
            folder.rmdir()
        return freed

    @property
    def nbytes(self) -> int:
        """Bytes of all states on disk."""
        return sum(size for _, size, _ in self._entries())

    def _in_memory(self, path: Path, text: str) -> HybridCache | None:
        """The recent state if it is this one and still kept: on disk, or (too large for the cap)
        in memory only; a purge, from any process, removes either sign."""
        if self._recent is None or self._recent[0] != path or self._recent[1].prompt_text != text:
            return None  # another document or prompt (or the state was continued: it has no text then)
        if path.is_file():
            os.utime(path)  # most recently used
        elif not _memory_only_sign(path).is_file():
            return None
        return self._recent[1]

    def _load(self, model: HybridModel, path: Path, prefix: list[int]) -> HybridCache | None:
        if not path.is_file():
            return None
        try:
            state = model.load_cache(path)
        except CacheMismatchError:
            return None  # another format version, a damaged file: rebuilt below
        if state.batch_size != 1 or state.length != len(prefix) or state.token_ids[0].tolist() != prefix:
            return None  # the prompt, template or tokenizer changed since it was saved
        os.utime(path)  # most recently used
        return state

    def _save(self, state: HybridCache, path: Path, doc_hash: str, prompt_version: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if state.nbytes > self.max_bytes:
            _memory_only_sign(path).touch()  # larger than the whole cache: kept in memory only
            return
        _memory_only_sign(path).unlink(missing_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-", suffix=SUFFIX)
        os.close(handle)
        try:
            state.save(temporary, metadata={"doc_hash": doc_hash, "prompt_version": prompt_version})
            os.replace(temporary, path)  # atomic: a reader sees the old file or the whole new one
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        self._evict(keep=path)

    def _evict(self, keep: Path) -> None:
        entries = sorted(self._entries(), key=lambda entry: entry[2])  # least recently used first
        total = sum(size for _, size, _ in entries)
        for file, size, _ in entries:
            if total <= self.max_bytes:
                break
            if file != keep:
                total -= _remove(file)
                if self._recent is not None and self._recent[0] == file:
                    self._recent = None

    def _entries(self) -> list[tuple[Path, int, float]]:
        found = []
        for file in self.folder.glob(f"*/*{SUFFIX}"):
            if file.name.startswith(".partial-"):
                continue  # being written by another process
            try:
                stat = file.stat()
            except FileNotFoundError:  # deleted by another process meanwhile
                continue
            found.append((file, stat.st_size, stat.st_mtime))
        return found


def _memory_only_sign(path: Path) -> Path:
    """An empty file beside where the state would be saved: it is in memory, and not purged."""
    return path.with_suffix(".in-memory")


def _remove(file: Path) -> int:
    try:
        size = file.stat().st_size
        file.unlink()
        return size
    except FileNotFoundError:
        return 0

