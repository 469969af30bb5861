"""Generation: prompts in, streamed text out, with a result carrying counts and the finish reason.

    gen = Generator(model, tokenizer)
    stream = gen.stream(messages, documents=None, tools=None, stop=None, max_new_tokens=256,
                        temperature=0.0, state=None)       # also top_p, top_k, repetition_penalty, seed
    for text in stream: ...                                  # never half a UTF-8 character
    stream.result                                            # GenerationResult, after exhaustion
    with gen.stream(...) as stream: ...                      # leaving early (or stream.close()) ends
                                                             # it: result.finish_reason "cancelled"

Prompts are encoded with control tokens in user content kept as plain text (see
`Tokenizer.render_chat(sanitize=True)`). A batch of prompts (`generate_batch`) is one left-padded,
masked forward per step. `state` is a cache that already holds a prefix of the prompt (e.g. the
system turn with a document, made by `prefill` from `render_chat(..., sanitize=True)` text): only
the rest of the prompt is processed, after checking that the prompt really starts with the cached
tokens. A state from `DocumentCache` keeps its rendered text (`prompt_text`), and a prompt that
continues that text at a special token encodes only its new part. The state itself is never
modified, and its attention K/V is shared, not copied.

A prompt longer than the model's `prefill_chunk` is read in pieces (memory does not grow with the
length beyond the KV cache); from LONG_PREFILL tokens on a progress bar shows on stderr, or the
`progress(done, total)` callable given to the Generator is called instead (False: none).
"""

import dataclasses
import time
from collections.abc import Iterator, Sequence

import torch

from inference.cache import HybridCache
from inference.config import HybridConfig
from inference.errors import CacheMismatchError, InferenceError, PromptTooLongError
from inference.model import HybridModel
from inference.progress import LONG_PREFILL, ProgressBar
from inference.sampling import Sampling, next_tokens
from inference.tokenizer import IncrementalDecoder, Tokenizer

FINISH_REASONS = ("eos", "stop", "length", "cancelled")


@dataclasses.dataclass(frozen=True)
class GenerationResult:
    text: str  # the completion, without the EOS token and without the stop string
    prompt_tokens: int
    completion_tokens: int  # tokens generated, the EOS or stop-completing token included
    finish_reason: str  # "eos" | "stop" | "length" | "cancelled" (closed before the end)
    token_ids: tuple[int, ...] = ()  # the generated ids
    cached_tokens: int = 0  # prompt tokens taken from `state` rather than processed
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Options:
    """Everything that shapes one generation besides the prompt (validated on construction)."""

    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    sampling: Sampling = Sampling()

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise InferenceError(f"max_new_tokens = {self.max_new_tokens} must be at least 1")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise InferenceError(f"stop strings must be non-empty strings, got {list(self.stop)!r}")

    @classmethod
    def of(cls, stop: str | Sequence[str] | None = None, max_new_tokens: int = 256, temperature: float = 0.0,
           top_p: float = 1.0, top_k: int = 0, repetition_penalty: float = 1.0, seed: int | None = None) -> "Options":
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        return cls(max_new_tokens, stops, Sampling(temperature, top_p, top_k, repetition_penalty, seed))


class GenerationStream:
    """Iterate for the text pieces; `result` is set once the iteration is over or the stream closed.

    Closing the stream early (`close()`, or leaving a `with` block) stops the generation; `result`
    then holds what was streamed so far with finish_reason "cancelled".
    """

    def __init__(self, run: "_Run"):
        self._run, self._pieces = run, run.stream()

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    def __enter__(self) -> "GenerationStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._pieces.close()
        self._run.cancel()

    @property
    def result(self) -> GenerationResult:
        if self._run.results is None:
            raise InferenceError("the generation has not finished: iterate the stream to the end or close() it first")
        return self._run.results[0]


class Generator:
    def __init__(self, model: HybridModel, tokenizer: Tokenizer, progress=None):
        """progress: None shows a bar on stderr for long prompts; a callable(done, total) gets the
        updates instead (e.g. a UI's own bar); False shows nothing."""
        self.model, self.tokenizer, self.progress = model, tokenizer, progress
        config = model.config
        self.eos_token_ids = frozenset(config.eos_token_ids) | ({tokenizer.eos_token_id} - {None})
        self.pad_token_id = next(i for i in (config.pad_token_id, tokenizer.pad_token_id, min(self.eos_token_ids))
                                 if i is not None)

    def stream(self, messages: list[dict], documents: list[dict] | None = None, tools: list[dict] | None = None,
               stop: str | Sequence[str] | None = None, max_new_tokens: int = 256, temperature: float = 0.0,
               state: HybridCache | None = None, top_p: float = 1.0, top_k: int = 0,
               repetition_penalty: float = 1.0, seed: int | None = None) -> GenerationStream:
        """Stream the assistant's reply to a conversation rendered with the model's chat template."""
        options = Options.of(stop, max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed)
        return GenerationStream(_Run(self, [self._encode(messages, documents, tools, state)], options, state))

    def _encode(self, messages: list[dict], documents: list[dict] | None, tools: list[dict] | None,
                state: HybridCache | None) -> list[int]:
        """The prompt's ids; after a state made from rendered text that the prompt continues, only
        the new part is encoded (a 20K-token document turn takes ~40 ms to encode)."""
        text = self.tokenizer.render_chat(messages, documents, tools, sanitize=True)
        rest = None if state is None else self.tokenizer.encode_after(text, state.prompt_text)
        return self.tokenizer.encode(text) if rest is None else state.token_ids[0].tolist() + rest

    def stream_text(self, prompt: str, state: HybridCache | None = None, **options) -> GenerationStream:
        """Stream a raw completion of `prompt` (no chat template); options as for `stream`."""
        return self.stream_ids(self.tokenizer.encode(prompt), state=state, **options)

    def stream_ids(self, prompt_ids: Sequence[int], state: HybridCache | None = None, **options) -> GenerationStream:
        return GenerationStream(_Run(self, [list(prompt_ids)], Options.of(**options), state))

    def generate(self, messages: list[dict], documents: list[dict] | None = None, tools: list[dict] | None = None,
                 **options) -> GenerationResult:
        stream = self.stream(messages, documents, tools, **options)
        for _ in stream:
            pass
        return stream.result

    def generate_batch(self, conversations: list[list[dict]], documents: list[dict] | None = None,
                       tools: list[dict] | None = None, **options) -> list[GenerationResult]:
        """Replies to several conversations at once: one padded, masked forward per step."""
        prompts = [self.tokenizer.encode_chat(messages, documents, tools) for messages in conversations]
        return self.generate_batch_ids(prompts, **options)

    def generate_batch_ids(self, prompts: list[Sequence[int]], **options) -> list[GenerationResult]:
        run = _Run(self, [list(p) for p in prompts], Options.of(**options), None)
        for _ in run.stream():
            pass
        return run.results

    def prefill(self, prompt_ids: Sequence[int]) -> HybridCache:
        """A state holding `prompt_ids` processed, for `state=` (save it with `.save(path)`)."""
        ids = list(prompt_ids)
        _check_prompt(ids, self.model.config)
        cache = self.model.new_cache(batch_size=1)
        self.model(torch.tensor([ids], device=self.model.device), cache=cache, last_only=True,
                   progress=self.progress_for(len(ids)))
        return cache

    def progress_for(self, tokens: int):
        """What reports the progress of reading `tokens` prompt tokens (None: nothing)."""
        if self.progress is False or (self.progress is None and tokens < LONG_PREFILL):
            return None
        return self.progress if callable(self.progress) else ProgressBar()


class _Row:
    """One prompt's completion: ids, text, stop-string handling and what was already streamed."""

    def __init__(self, decoder: IncrementalDecoder, stops: tuple[str, ...]):
        self.decoder, self.stops = decoder, stops
        self.ids: list[int] = []
        self.text, self.emitted, self.scanned = "", 0, 0
        self.finish: str | None = None

    def accept(self, piece: str) -> str:
        """Add decoded text; return what can be streamed now (text that might start a stop string waits)."""
        self.text += piece
        match = self._first_stop()
        if match is not None:
            self.text, self.finish = self.text[:match], "stop"
            return self._emit(len(self.text))
        self.scanned = len(self.text)
        return self._emit(len(self.text) - self._held_back())

    def cancel(self) -> None:
        """Stop where the stream stopped: the text is what was emitted, nothing held back."""
        if self.finish is None:
            self.text, self.finish = self.text[: self.emitted], "cancelled"

    def end(self, reason: str) -> str:
        out = self.accept(self.decoder.flush())
        if self.finish is None:
            self.finish = reason
        return out + self._emit(len(self.text))

    def _first_stop(self) -> int | None:
        found = [self.text.find(s, max(0, self.scanned - len(s) + 1)) for s in self.stops]
        found = [i for i in found if i >= 0]
        return min(found) if found else None

    def _held_back(self) -> int:
        longest = max((len(s) - 1 for s in self.stops), default=0)
        for k in range(min(longest, len(self.text)), 0, -1):
            if any(s.startswith(self.text[-k:]) for s in self.stops):
                return k
        return 0

    def _emit(self, upto: int) -> str:
        out = self.text[self.emitted : upto] if upto > self.emitted else ""
        self.emitted = max(self.emitted, upto)
        return out


class _Run:
    """One generation over a batch of prompts; `stream()` yields row 0's text pieces."""

    def __init__(self, generator: Generator, prompts: list[list[int]], options: Options, state: HybridCache | None):
        self.gen, self.prompts, self.options, self.state = generator, prompts, options, state
        self.model, budget = generator.model, generator.model.config.context_budget
        for prompt in prompts:
            _check_prompt(prompt, self.model.config)
        if state is not None:
            _check_state(state, prompts, self.model)
        self.max_new = min(options.max_new_tokens, budget - max(len(p) for p in prompts))
        self.rows = [_Row(generator.tokenizer.decoder(), options.stop) for _ in prompts]
        self.started = self.prefilled = None
        self.results: list[GenerationResult] | None = None

    def stream(self) -> Iterator[str]:
        try:
            yield from self._generate()
        except GeneratorExit:
            self.cancel()
            raise

    def cancel(self) -> None:
        """End early: each unfinished row keeps the text already streamed, finish "cancelled"."""
        if self.results is None:
            for row in self.rows:
                row.cancel()
            self._finish()

    def _generate(self) -> Iterator[str]:
        rows = self.rows
        rng = self.options.sampling.generator(self.model.device)
        self.started = time.perf_counter()
        cache, logits = self._prefill()
        self.prefilled = time.perf_counter()
        for step in range(self.max_new):
            tokens = next_tokens(logits, cache.token_ids, cache.attention_mask, self.options.sampling, rng).tolist()
            pieces = [self._advance(row, token) for row, token in zip(rows, tokens)]
            if pieces[0]:
                yield pieces[0]
            if all(row.finish for row in rows) or step == self.max_new - 1:
                break
            feed = [token if row.finish is None else self.gen.pad_token_id for row, token in zip(rows, tokens)]
            logits = self.model(torch.tensor(feed, device=self.model.device)[:, None], cache=cache, last_only=True)
        tails = [row.end("length") if row.finish is None else "" for row in rows]
        if tails[0]:
            yield tails[0]
        self._finish()

    def _finish(self) -> None:
        now = time.perf_counter()
        started = self.started or now
        prefilled = self.prefilled or now
        self.results = [self._result(row, prompt, prefilled - started, now - prefilled)
                        for row, prompt in zip(self.rows, self.prompts)]

    def _advance(self, row: _Row, token: int) -> str:
        if row.finish is not None:
            return ""
        row.ids.append(token)
        if token in self.gen.eos_token_ids:
            return row.end("eos")
        return row.accept(row.decoder.push(token))

    def _prefill(self) -> tuple[HybridCache, torch.Tensor]:
        device, cached = self.model.device, self._cached_tokens()
        if self.state is not None:
            cache = self.state.copy(headroom=len(self.prompts[0]) - cached + self.max_new)
            ids = torch.tensor([self.prompts[0][cached:]], device=device)
            return cache, self.model(ids, cache=cache, last_only=True, progress=self.gen.progress_for(ids.shape[1]))
        width = max(len(p) for p in self.prompts)
        ids = torch.tensor([[self.gen.pad_token_id] * (width - len(p)) + p for p in self.prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in self.prompts], device=device)
        cache = self.model.new_cache(batch_size=len(self.prompts))
        cache.reserve(width + self.max_new)
        return cache, self.model(ids, cache=cache, last_only=True, attention_mask=mask,
                                 progress=self.gen.progress_for(width))

    def _cached_tokens(self) -> int:
        return 0 if self.state is None else self.state.length

    def _result(self, row: _Row, prompt: list[int], prefill: float, decode: float) -> GenerationResult:
        return GenerationResult(text=row.text, prompt_tokens=len(prompt), completion_tokens=len(row.ids),
                                finish_reason=row.finish, token_ids=tuple(row.ids),
                                cached_tokens=self._cached_tokens(), prefill_seconds=prefill, decode_seconds=decode)


def _check_prompt(prompt: list[int], config: HybridConfig) -> None:
    if not prompt:
        raise InferenceError("the prompt is empty")
    bad = next((i for i in prompt if not 0 <= i < config.vocab_size), None)
    if bad is not None:
        raise InferenceError(f"token id {bad} is out of range for vocab_size {config.vocab_size}")
    if len(prompt) >= config.context_budget:
        raise PromptTooLongError(
            f"prompt is {len(prompt)} tokens, but the context budget is {config.context_budget} tokens "
            "(config.context_budget), which leaves no room for a reply"
        )


def _check_state(state: HybridCache, prompts: list[list[int]], model: HybridModel) -> None:
    if len(prompts) != 1 or state.batch_size != 1 or state.attention_mask is not None:
        raise CacheMismatchError("state= continues a single unpadded prompt")
    if state.model_id != model.fingerprint:
        raise CacheMismatchError("state was made by another model")
    prefix, prompt = state.token_ids[0].tolist(), prompts[0]
    if len(prompt) <= len(prefix) or prompt[: len(prefix)] != prefix:
        diverge = next((i for i, (a, b) in enumerate(zip(prefix, prompt)) if a != b), min(len(prefix), len(prompt)))
        raise CacheMismatchError(
            f"the prompt does not extend the state's {len(prefix)} cached tokens (they differ from token {diverge} "
            f"of the {len(prompt)}-token prompt)"
        )
