"""Choosing the next token from logits: repetition penalty, then greedy or temperature/top-k/top-p.

The order and the repetition penalty follow transformers' `generate` (penalty on every id seen
so far, prompt included: divide positive logits, multiply negative ones), so greedy decoding with
a penalty gives the same tokens.
"""

import dataclasses

import torch

from inference.errors import InferenceError


@dataclasses.dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self):
        if not self.temperature >= 0:
            raise InferenceError(f"temperature = {self.temperature} must be >= 0")
        if not 0 < self.top_p <= 1:
            raise InferenceError(f"top_p = {self.top_p} must be in (0, 1]")
        if self.top_k < 0:
            raise InferenceError(f"top_k = {self.top_k} must be >= 0")
        if not self.repetition_penalty > 0:
            raise InferenceError(f"repetition_penalty = {self.repetition_penalty} must be > 0")

    def generator(self, device) -> torch.Generator | None:
        return None if self.seed is None else torch.Generator(device).manual_seed(self.seed)


def next_tokens(logits: torch.Tensor, seen: torch.Tensor, seen_valid: torch.Tensor | None, sampling: Sampling,
                generator: torch.Generator | None) -> torch.Tensor:
    """logits [b, vocab] float; seen [b, s] ids so far (seen_valid [b, s] False at padding) -> [b] ids."""
    if sampling.repetition_penalty != 1.0:
        logits = penalize_repetition(logits, seen, seen_valid, sampling.repetition_penalty)
    if sampling.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / sampling.temperature
    if sampling.top_k:
        kth = logits.topk(min(sampling.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -torch.inf)
    if sampling.top_p < 1:
        logits = _nucleus(logits, sampling.top_p)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)[:, 0]


def penalize_repetition(logits: torch.Tensor, seen: torch.Tensor, seen_valid: torch.Tensor | None,
                        penalty: float) -> torch.Tensor:
    if seen_valid is not None:  # padding is not "seen": point it at the row's last id (a repeat is harmless)
        seen = torch.where(seen_valid, seen, seen[:, -1:])
    scores = logits.gather(1, seen)
    scores = torch.where(scores < 0, scores * penalty, scores / penalty)
    return logits.scatter(1, seen, scores)


def _nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the most likely tokens whose probabilities sum to top_p (always at least one)."""
    ordered, order = logits.sort(dim=-1, descending=True)
    probabilities = ordered.softmax(dim=-1)
    drop_sorted = probabilities.cumsum(dim=-1) - probabilities > top_p  # mass before it already reaches top_p
    drop = torch.empty_like(drop_sorted).scatter(1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, -torch.inf)
