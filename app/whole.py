"""Whole-document reading: the built-in Granite runtime reads one document in full, once, and
answers every later question about it from the saved state.

    reader = WholeReader(citer, llm)              # llm: ChatGranite (.model, .tokenizer, .generator)
    plan = reader.plan(doc_id, "auto")            # Plan(whole, reason, over_budget, tokens, cached, read_s)
    draft = yield from reader.answer(doc_id, question)   # yields Reading items, then text pieces

The conversation starts with one system turn: the rules and the document's full text in the
Granite documents format (`prompts.whole_system_prompt`). The model state after that turn is kept
by `inference.DocumentCache` under `<store>/doc-states/`, keyed by the document's content hash,
the model and PROMPT_VERSION, so the second question about a document reads only the question.
A read runs in a worker thread that reports its progress as `Reading`s (tokens, rate, time left)
after each layer of each piece; closing the generator stops it after the layer being read (a
fortieth of a piece on h-1b) or, in attention late in a long document, after 4,096 of the cached
positions; nothing of a stopped read is saved.

`plan` reads a document whole when: the prompt plus room for the reply fits the model's
`context_budget`; the memory estimate fits what is free; and, for "auto", the state is cached or
the estimated read (inference.timing) takes at most `max_read_s`. Asked for "whole", a long read
is not a reason to decline.
"""

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.citations import Citer
from app.errors import AppError
from app.prompts import PROMPT_VERSION, whole_system_prompt

STATES_FOLDER = "doc-states"  # under the store folder


@dataclass(frozen=True)
class WholeSettings:
    # granite-4.0-h-1b's state: 8 MB per 1,000 tokens (bf16 K/V of its 4 attention layers) plus
    # ~60 MB of Mamba states, so 4 GiB keep about eighteen 20K-token contracts, or three at 128K.
    cache_bytes: int = 4 << 30
    # "auto" waits this long for an uncached read; a longer one is answered from retrieved passages.
    max_read_s: float = 120.0
    # Context kept free after the document for the question and the answer.
    reply_tokens: int = 512

    def __post_init__(self):
        if not isinstance(self.cache_bytes, int) or self.cache_bytes < 1:
            raise AppError(f"cache_bytes = {self.cache_bytes!r}: expected a positive number of bytes")
        if not self.max_read_s >= 0:
            raise AppError(f"max_read_s = {self.max_read_s!r}: expected seconds, 0 or more")
        if not isinstance(self.reply_tokens, int) or self.reply_tokens < 1:
            raise AppError(f"reply_tokens = {self.reply_tokens!r}: expected a positive number of tokens")


@dataclass(frozen=True)
class Reading:
    """Progress of a whole-document read, yielded between text pieces (the UI draws a bar)."""

    tokens_read: int
    tokens_total: int
    tokens_per_s: float
    eta_s: float | None  # None until the first piece gives a rate (or an estimate)


@dataclass(frozen=True)
class Plan:
    whole: bool
    reason: str = ""  # why not, "" when reading whole
    over_budget: bool = False  # the reason is the context budget (a summary can read it in parts)
    tokens: int = 0  # the system turn with the document
    cached: bool = False  # the state after it is saved: only the question will be read
    read_s: float = 0.0  # estimated seconds to read it (0 when cached)


def is_runtime(llm) -> bool:
    """Whether `llm` is the built-in runtime (whole-document reading needs its generator and cache).
    Checked without reading the attributes: ChatGranite loads its weights on first access."""
    if llm is None:
        return False
    names = set(dir(type(llm))) | set(getattr(llm, "__dict__", {}))
    return {"model", "tokenizer", "generator"} <= names


def part_key(doc_id: str, part: int, parts: int) -> str:
    """The cache key of one part of a document read in parts (app/model_summary.py)."""
    return f"{doc_id}.part{part}of{parts}"


def purge_states(store_path: Path, doc_id: str) -> int:
    """Delete a removed document's saved states (its parts' too); bytes freed. Loads the runtime
    only if there are any."""
    folder = Path(store_path) / STATES_FOLDER
    keys = [path.name for path in (*folder.glob(doc_id), *folder.glob(f"{doc_id}.part*")) if path.is_dir()]
    if not keys:
        return 0
    from inference import DocumentCache

    cache = DocumentCache(folder, 1)
    return sum(cache.purge(key) for key in keys)


class _Stopped(Exception):
    """Raised inside the reading thread when its consumer went away."""


class WholeReader:
    def __init__(self, citer: Citer, llm, settings: WholeSettings = WholeSettings()):
        from inference import DocumentCache

        self.citer, self.llm, self.settings = citer, llm, settings
        self.cache = DocumentCache(citer.store.path / STATES_FOLDER, settings.cache_bytes)
        self._tokens: dict[str, int] = {}

    @property
    def model(self):
        return self.llm.model

    def prefix(self, doc_id: str) -> list[dict]:
        """The conversation's start: one system turn holding the rules and the whole document."""
        return [{"role": "system", "content": whole_system_prompt(self.citer.title(doc_id), self.citer.text(doc_id))}]

    def tokens(self, doc_id: str) -> int:
        if doc_id not in self._tokens:
            ids = self.llm.tokenizer.encode_chat(self.prefix(doc_id), add_generation_prompt=False)
            self._tokens[doc_id] = len(ids)
        return self._tokens[doc_id]

    def is_cached(self, doc_id: str) -> bool:
        return self.cache.contains(self.model, doc_id, PROMPT_VERSION)

    def plan(self, doc_id: str, requested: str) -> Plan:
        """Whether to read `doc_id` whole for a question asked in mode `requested` ("auto"/"whole")."""
        from inference import MemoryLimitError
        from inference.memory import check_fits
        from inference.timing import prefill_seconds

        config, tokens, reply = self.model.config, self.tokens(doc_id), self.settings.reply_tokens
        if tokens + reply > config.context_budget:
            return Plan(False, f"the document is {tokens:,} tokens; with {reply} for the reply that exceeds the "
                               f"model's context budget of {config.context_budget:,} tokens", True, tokens)
        try:
            check_fits(config, self.model.dtype, tokens + reply, what="reading the whole document")
        except MemoryLimitError as error:
            return Plan(False, str(error), False, tokens)
        cached = self.is_cached(doc_id)
        read_s = 0.0 if cached else prefill_seconds(config, tokens, self.model.dtype)
        if requested == "auto" and read_s > self.settings.max_read_s:
            return Plan(False, f"reading the whole document ({tokens:,} tokens) would take about {read_s:,.0f} s "
                               f"here (the limit is {self.settings.max_read_s:,.0f} s; choose whole-document mode "
                               "to read it anyway)", False, tokens, cached, read_s)
        return Plan(True, "", False, tokens, cached, read_s)

    def read(self, doc_id: str, plan: Plan | None = None):
        """Yields `Reading` items while the document is read, returns its state (a generator's
        return value). An uncached read runs in a thread; closing this generator stops it."""
        if plan is not None and not plan.cached:
            yield Reading(0, plan.tokens, 0.0, plan.read_s or None)
        return (yield from self.read_prefix(doc_id, self.prefix(doc_id)))

    def read_prefix(self, key: str, prefix: list[dict], before: int = 0, total: int | None = None):
        """`read` for any conversation start, its state saved under `key`. Reading items count
        `before` tokens already read of `total` (default: this prefix's own count)."""
        if self.cache.path(self.model, key, PROMPT_VERSION).is_file():
            return self._state(key, prefix, progress=False)  # saved: loaded, not read, so no thread
        events: queue.Queue = queue.Queue()
        stop = threading.Event()
        began = time.monotonic()

        def progress(done: int, count: int) -> None:
            if stop.is_set():
                raise _Stopped
            rate = done / max(time.monotonic() - began, 1e-6)
            whole = total or count
            events.put(Reading(before + done, whole, rate, (whole - before - done) / rate))

        def work() -> None:
            try:
                events.put(self._state(key, prefix, progress))
            except BaseException as error:  # handed to the consumer, which raises it
                events.put(error)

        worker = threading.Thread(target=work, name=f"read-{key}", daemon=True)
        worker.start()
        try:
            while True:
                item = events.get()
                if isinstance(item, Reading):
                    yield item
                elif isinstance(item, BaseException):
                    raise item
                else:
                    return item
        finally:
            stop.set()
            worker.join()

    def _state(self, key: str, prefix: list[dict], progress):
        from inference import InferenceError

        try:
            return self.cache.get_or_build(self.model, self.llm.tokenizer, prefix, key,
                                           prompt_version=PROMPT_VERSION, progress=progress)
        except InferenceError as error:
            raise AppError(str(error)) from None

    def reply(self, messages: list[dict], state=None) -> Iterator[str]:
        """The model's reply to `messages`, reading only what follows the saved `state` (if given,
        its tokens must begin the prompt). Closing the iterator stops the generation."""
        from inference import InferenceError

        options = {"max_new_tokens": getattr(self.llm, "max_tokens", None) or self.settings.reply_tokens,
                   "temperature": getattr(self.llm, "temperature", None) or 0.0}
        try:
            stream = self.llm.generator.stream(messages, state=state, **options)
        except InferenceError as error:  # e.g. a question too long for the room left after the document
            raise AppError(str(error)) from None
        with stream as pieces:
            yield from pieces

    def answer(self, doc_id: str, question: str, plan: Plan | None = None):
        """Yields Reading items, then the answer's text in pieces; returns its verified Draft."""
        from app.generated import verify_quoted

        state = yield from self.read(doc_id, plan)
        pieces = []
        for piece in self.reply(self.prefix(doc_id) + [{"role": "user", "content": question}], state):
            pieces.append(piece)
            yield piece
        return verify_quoted("".join(pieces), question, doc_id, self.citer)
