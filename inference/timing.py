"""How long reading a document takes on this machine, before reading it.

    seconds = timing.prefill_seconds(model.config, tokens=120_000, dtype=torch.bfloat16)
    seconds = timing.decode_seconds(model.config, new_tokens=200, context=120_000, dtype=torch.bfloat16)

A prompt costs its FLOPs: 2 x the active non-embedding parameters per token (the projections)
plus the attention over the text before it, which grows with the position. Each kind runs at its
measured share of this machine's GEMM rate (`python -m inference.bench`, BENCHMARKS.md): the
projections at PROJECTION_SHARE of it, attention at ATTENTION_SHARE. The GEMM rate itself is
probed once per process (about 0.2 s), so the estimate follows the machine it runs on, including
how busy it is at that moment. Decoding reads every weight per token: its time is the bytes read
over the measured read bandwidth, at DECODE_SHARE of that bound.
"""

import functools
import time

import torch

from inference.config import ATTENTION, HybridConfig

# Shares of this module's probed rates the runtime reaches (BENCHMARKS.md, "Long documents (inference
# runtime)"). The probe is a best-of-5 product, above what a long read sustains, hence shares well under
# the bench's CPU-time ones. Checked on an idle machine, h-350m bf16: 27.5 / 133.1 / 901.6 s predicted
# against 27.6 / 133.6 / 916.4 s measured at 4K / 16K / 64K tokens, so the attention share holds up to
# where attention is 43% of the FLOPs; h-1b reads 6-26% slower than predicted. Decode, with the C
# kernels of a decode step: 54 ms predicted against 47-53 ms measured per h-350m bf16 token after 16K
# (2026-12-03; the read probe itself varies 2x on this VM).
PROJECTION_SHARE = 0.55  # prefill FLOPs of the projections / GEMM rate
ATTENTION_SHARE = 0.35  # attention FLOPs / GEMM rate
DECODE_SHARE = 0.45  # decode tokens/s / (read bandwidth / bytes read per token)


def projection_flops(config: HybridConfig) -> float:
    """FLOPs per token of everything but attention's QK and PV: 2 x active non-embedding parameters."""
    from inference.memory import parameter_count

    embeddings = config.vocab_size * config.hidden_size * (1 if config.tie_word_embeddings else 2)
    params = parameter_count(config) - embeddings
    if config.has_experts:  # only the routed experts run
        expert = 3 * config.intermediate_size * config.hidden_size
        params -= config.num_hidden_layers * expert * (config.num_local_experts - config.num_experts_per_tok)
    return 2.0 * params


def attention_flops(config: HybridConfig, position: float) -> float:
    """FLOPs of one token's attention (QK and PV, all attention layers) over `position` earlier tokens."""
    return 4.0 * config.layer_types.count(ATTENTION) * config.num_attention_heads * config.head_dim * position


def prefill_flops(config: HybridConfig, tokens: int, past: int = 0) -> float:
    """FLOPs to read `tokens` tokens after `past` already read."""
    return tokens * projection_flops(config) + attention_flops(config, past + tokens / 2) * tokens


def prefill_seconds(config: HybridConfig, tokens: int, dtype: torch.dtype = torch.bfloat16, past: int = 0,
                    gemm_rate: float | None = None) -> float:
    """Expected seconds to read `tokens` tokens (after `past` cached ones) on this machine."""
    rate = gemm_rate or measured_gemm_rate(config.hidden_size)
    projections = tokens * projection_flops(config) / (rate * PROJECTION_SHARE)
    attention = attention_flops(config, past + tokens / 2) * tokens / (rate * ATTENTION_SHARE)
    return projections + attention


def decode_seconds(config: HybridConfig, new_tokens: int, context: int, dtype: torch.dtype = torch.bfloat16,
                   read_rate: float | None = None) -> float:
    """Expected seconds to generate `new_tokens` after a `context`-token prompt."""
    size = torch.empty(0, dtype=dtype).element_size()
    weights = (projection_flops(config) / 2 + config.vocab_size * config.hidden_size) * size
    kv = 2 * config.layer_types.count(ATTENTION) * config.num_key_value_heads * config.head_dim * size * context
    rate = read_rate or measured_read_rate()
    return new_tokens * (weights + kv) / (rate * DECODE_SHARE)


@functools.cache
def measured_gemm_rate(hidden: int) -> float:
    """fp32 FLOP/s of a prefill-sized product on this machine, with the threads torch uses now."""
    x, w = torch.randn(512, hidden), torch.randn(4 * hidden, hidden)
    return 2 * x.shape[0] * hidden * w.shape[0] / _best_seconds(lambda: torch.nn.functional.linear(x, w))


@functools.cache
def measured_read_rate() -> float:
    """Bytes/s of reading a buffer far larger than the caches."""
    big = torch.ones(32 << 20)  # 128 MB
    return big.numel() * 4 / _best_seconds(big.sum)


def _best_seconds(fn, repeat: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best
