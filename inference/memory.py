"""How much memory reading a document will take, checked before starting.

    estimate = memory.estimate(config, torch.bfloat16, tokens=120_000)
    estimate.total, estimate.describe()            # bytes; "weights 0.68 GB + KV cache 0.49 GB + ..."
    memory.check_fits(config, torch.bfloat16, 120_000)   # raises MemoryLimitError with the numbers

The peak of a chunked prefill is the weights, the attention KV cache (linear in the length), the
Mamba states (fixed), and a transient that depends on the chunk size only: the activations of one
layer for one piece of `chunk` tokens, plus (bf16 weights on a CPU without fast bf16 matmuls) the
largest weight upcast to fp32. The transient per token is the sum of the tensors alive at the
Mamba layer's peak (inside the SSD scan) times ALLOCATOR_SLACK, measured: freed temporaries are
not all returned to the system, so the resident peak exceeds the live tensors.
"""

import dataclasses
import os

import torch

from inference.config import ATTENTION, MAMBA, HybridConfig
from inference.errors import InferenceError
from kernels.matmul import compute_dtype
from kernels.ssd import CPU_BLOCK

# Fitted on h-350m and two small shapes (fp32 and bf16, pieces of 256-2048 tokens, 1 and 2
# threads): resident peak - weights - KV - states = RUNTIME_BYTES + ALLOCATOR_SLACK x live tensors,
# each point within 13%. The first-use part is not a constant of the code: the same prefill in two
# virtualenvs of identical packages grew 40-70 MB beyond its live tensors after the imports (a
# warm-up forward before the baseline removed the difference), so RUNTIME_BYTES sits inside it.
ALLOCATOR_SLACK = 1.5  # freed temporaries the allocator keeps resident
RUNTIME_BYTES = 40 << 20  # first-use buffers and code of the math libraries and thread pools
HEADROOM = 0.9  # refuse when the estimate exceeds this share of the memory available now


class MemoryLimitError(InferenceError):
    """The estimated peak does not fit in the memory available."""


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    kv_cache: int
    states: int
    transient: int  # activations of one piece, upcast weights, library buffers

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.states + self.transient

    def describe(self) -> str:
        parts = [("weights", self.weights), ("KV cache", self.kv_cache), ("Mamba states", self.states),
                 ("working memory", self.transient)]
        return " + ".join(f"{name} {_gb(size)}" for name, size in parts) + f" = {_gb(self.total)}"


def estimate(config: HybridConfig, dtype: torch.dtype, tokens: int, chunk: int | None = None,
             batch: int = 1, device: str = "cpu") -> MemoryEstimate:
    """Expected peak memory of a model in `dtype` holding `tokens` positions, read `chunk` at a time."""
    from inference.model import PREFILL_CHUNK  # here: model imports this package's siblings only

    size = _itemsize(dtype)
    compute = _itemsize(compute_dtype(dtype, device))
    piece = min(chunk or PREFILL_CHUNK, tokens)
    kinds = config.layer_types
    kv = batch * tokens * kinds.count(ATTENTION) * 2 * config.num_key_value_heads * config.head_dim * size
    states = batch * kinds.count(MAMBA) * (
        config.mamba_conv_dim * (config.mamba_d_conv - 1) * size
        + config.mamba_n_heads * config.mamba_d_head * config.mamba_d_state * 4)
    transient = batch * piece * _live_bytes_per_token(config, compute) * ALLOCATOR_SLACK
    if compute != size:
        transient += _largest_weight(config) * compute  # the fp32 copy of one weight during its product
    return MemoryEstimate(parameter_count(config) * size, kv, states, int(transient) + RUNTIME_BYTES)


def check_fits(config: HybridConfig, dtype: torch.dtype, tokens: int, what: str = "reading the prompt",
               chunk: int | None = None, available: int | None = None) -> MemoryEstimate:
    """Raise MemoryLimitError, with the numbers, when `tokens` more positions would not fit.

    The weights are assumed loaded already (they are part of what is available otherwise).
    """
    needed = estimate(config, dtype, tokens, chunk)
    free = available_bytes() if available is None else available
    extra = needed.total - needed.weights
    if extra > HEADROOM * free:
        raise MemoryLimitError(
            f"{what}: {tokens:,} tokens need about {_gb(extra)} beyond the loaded weights "
            f"({needed.describe()}), but only {_gb(free)} is available; use a shorter document, "
            "a smaller model or fewer tokens"
        )
    return needed


def parameter_count(config: HybridConfig) -> int:
    """Parameters of the model (every expert included), from the config alone."""
    from inference.model import HybridModel

    with torch.device("meta"):
        return sum(p.numel() for p in HybridModel(config).parameters())


def available_bytes() -> int:
    """Memory the system can give this process now (MemAvailable), or the total if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _live_bytes_per_token(config: HybridConfig, size: int) -> float:
    """Bytes per token alive at the peak of one layer (a Mamba layer's SSD scan, or the MLP)."""
    hidden = 2 * config.hidden_size  # the residual stream and the normed input
    if MAMBA not in config.layer_types:
        return size * (hidden + 3 * config.hidden_size + 3 * config.shared_intermediate_size)
    heads, d_inner = config.mamba_n_heads, config.mamba_d_inner
    projection = 2 * d_inner + 2 * config.mamba_n_groups * config.mamba_d_state + heads
    block = min(config.mamba_chunk_size, CPU_BLOCK)
    ssd = (4 * d_inner  # x * dt, its blocked copy, the within-block output, the inputs to the block states
           + 2 * config.mamba_n_groups * config.mamba_d_state  # B and C in blocks
           + 2 * heads * config.mamba_d_head * config.mamba_d_state / block)  # block states and start states
    decays = 3 * heads * block  # the [q, q] decay matrix per head: float64 differences, then fp32
    mlp = 3 * config.shared_intermediate_size
    return size * (hidden + projection + config.mamba_conv_dim + max(ssd + decays, mlp))


def _largest_weight(config: HybridConfig) -> int:
    widths = [2 * config.shared_intermediate_size * config.hidden_size]
    if MAMBA in config.layer_types:
        widths.append((2 * config.mamba_d_inner + 2 * config.mamba_n_groups * config.mamba_d_state
                       + config.mamba_n_heads) * config.hidden_size)
    return max(widths)


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


def _gb(size: float) -> str:
    return f"{size / 1e9:.2f} GB"
