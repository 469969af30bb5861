"""Attention layers: GQA scaled by attention_multiplier, RoPE only when the config asks for it.

Memory stays linear in the length: a forward call's t queries attend, in separate parts, to every
earlier position (the KV cache, held in segments, see `KVState`) without any mask, and to the
call's own t positions causally. Each part is one call of PyTorch's flash-attention kernel for CPU
(a decode step's single query: `kernels.decode_attention`, which reads the cache at memory speed),
which also returns each query's log-sum-exp; the parts are merged with those weights

    lse = logsumexp_i lse_i        out = sum_i exp(lse_i - lse) * out_i

which is exactly softmax attention over all the keys. So no [t, length] mask or score matrix is
ever built: reading a 64K-token document in 1K-token chunks keeps only kernel tiles of scores.
Padding (left-padded batches) is an additive key bias of [batch, length] kept by the cache.
"""

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

import kernels
from inference.cache import KVState
from inference.config import HybridConfig
from inference.layers import Linear
from kernels.attention import flash, flash_all, flash_available, merge
from kernels.layer import AttentionStep

# Keys per part on the plain-PyTorch path (non-CPU devices, or a torch without the CPU flash
# kernel): bounds its [t, keys] score matrix to t * 4096 floats per head.
REFERENCE_BLOCK = 4096
# Cached keys per part when a read can be stopped (AttentionInputs.check is set): 1,024 queries
# over 128K cached keys are ~0.8 TFLOP in one h-1b attention layer, seconds on this CPU with no
# chance to stop; a part is 1/32 of that, and merging parts adds one pass over the output each.
STOP_BLOCK = 4096


@dataclasses.dataclass(frozen=True)
class AttentionInputs:
    """What every attention layer of one forward call shares (built once per call)."""

    key_bias: torch.Tensor | None  # [b, past + t] additive: 0 at real tokens, -inf at padding; None: no padding
    rope: tuple[torch.Tensor, torch.Tensor] | None  # cos, sin [b, t, head_dim], or None (NoPE)
    check: Callable[[], None] | None = None  # called between parts of the cached keys; may raise to stop


class Attention(nn.Module):
    def __init__(self, config: HybridConfig):
        super().__init__()
        h, hd, bias = config.hidden_size, config.head_dim, config.attention_bias
        self.n_heads, self.n_kv_heads, self.head_dim = config.num_attention_heads, config.num_key_value_heads, hd
        self.scale = config.attention_multiplier
        self.q_proj = Linear(h, self.n_heads * hd, bias=bias)
        self.k_proj = Linear(h, self.n_kv_heads * hd, bias=bias)
        self.v_proj = Linear(h, self.n_kv_heads * hd, bias=bias)
        self.o_proj = Linear(self.n_heads * hd, h, bias=bias)

    def forward(self, x: torch.Tensor, kv: KVState | None, inputs: AttentionInputs) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # [b, nh, t, hd]
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)  # [b, nkv, t, hd]
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if inputs.rope is not None:
            q, k = apply_rope(q, k, *inputs.rope)
        if kv is not None:
            kv.append(k, v)
        segments = [(k, v)] if kv is None else kv.segments()
        out = attend(q, segments, t, self.scale, inputs.key_bias, inputs.check).to(x.dtype)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))

    def decode_step(self) -> AttentionStep:
        """The parameters a decoded token's step reads (`kernels.layer_step`)."""
        biases = tuple(p.bias for p in (self.q_proj, self.k_proj, self.v_proj, self.o_proj))
        return AttentionStep(self.q_proj.weight, self.k_proj.weight, self.v_proj.weight, self.o_proj.weight, biases,
                             self.n_heads, self.n_kv_heads, self.head_dim, self.scale)


def attend(q: torch.Tensor, segments: list[tuple[torch.Tensor, torch.Tensor]], t: int, scale: float,
           key_bias: torch.Tensor | None = None, check: Callable[[], None] | None = None) -> torch.Tensor:
    """Causal attention of t queries over all positions so far.

    Args:
        q: [b, nh, t, d] the queries of the last t positions.
        segments: (keys, values) [b, nkv, s_i, d] covering every position in order; the last t
            positions (the end of the last segment) are the queries' own. nh is a multiple of nkv.
        t: the number of query positions.  scale: multiplies the scores.
        key_bias: [b, sum s_i] added to the scores (-inf masks a padding key), or None.
        check: if given, the earlier keys are read in parts of STOP_BLOCK and it is called
            between them (it may raise to stop a long read).

    Returns:
        [b, nh, t, d] in the keys' dtype (q is cast to it).
    """
    q = q.to(segments[-1][0].dtype).contiguous()  # contiguous: the GQA fold below is then a view
    *earlier, (k_last, v_last) = segments
    own_start = k_last.shape[2] - t
    if t == 1:  # a single query sees every key: no causal part, no GQA copies
        past, new = earlier + [(k_last, v_last)], None
    else:
        past = earlier + ([(k_last[:, :, :own_start], v_last[:, :, :own_start])] if own_start else [])
        new = (k_last[:, :, own_start:], v_last[:, :, own_start:])
    parts, offset = [], 0
    for keys, values in _blocks(past, STOP_BLOCK if check is not None else None):
        if parts and check is not None:
            check()
        bias = None if key_bias is None else key_bias[:, offset : offset + keys.shape[2]]
        parts += _attend_all(q, keys, values, bias, scale)
        offset += keys.shape[2]
    if new is not None:
        bias = None if key_bias is None else key_bias[:, offset:]
        parts.append(_attend_causal(q, *new, bias, scale))
    return merge(parts)


def _blocks(segments: list[tuple[torch.Tensor, torch.Tensor]], size: int | None):
    """The (keys, values) segments cut into parts of at most `size` keys (None: left whole)."""
    for keys, values in segments:
        step = size or max(keys.shape[2], 1)
        for lo in range(0, keys.shape[2], step):
            yield keys[:, :, lo : lo + step], values[:, :, lo : lo + step]


def _attend_all(q, keys, values, bias, scale) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every query to every key of one segment: [(out [b, nh, t, d], lse [b, nh, t]), ...]."""
    if q.shape[2] == 1 and q.device.type == "cpu":  # a decode step: one read of the keys and one of the values
        return [kernels.decode_attention(q, keys, values, scale, bias)]
    if not flash_available(q):
        return [_reference(q, keys[:, :, lo : lo + REFERENCE_BLOCK], values[:, :, lo : lo + REFERENCE_BLOCK],
                           None if bias is None else bias[:, lo : lo + REFERENCE_BLOCK], scale, causal=False)
                for lo in range(0, keys.shape[2], REFERENCE_BLOCK)]
    return [flash_all(q, keys, values, scale, bias)]


def _attend_causal(q, keys, values, bias, scale) -> tuple[torch.Tensor, torch.Tensor]:
    """The t queries to their own t positions, causally (a padded query may see nothing: out 0)."""
    b, nh, t, d = q.shape
    group = nh // keys.shape[1]
    keys, values = (x.repeat_interleave(group, dim=1) for x in (keys, values))  # t positions only: cheap
    if not flash_available(q):
        return _reference(q, keys, values, bias, scale, causal=True)
    return flash(q, keys, values, True, None if bias is None else bias[:, None, None, :], scale)


def _reference(q, keys, values, bias, scale, causal):
    """Plain PyTorch (out, lse) for one part, in fp32; rows with no visible key give out 0, lse -inf."""
    b, nh, t, d = q.shape
    group = nh // keys.shape[1]
    keys, values = (x.float().repeat_interleave(group, dim=1) for x in (keys, values))
    scores = (q.float() @ keys.transpose(-1, -2)) * scale  # [b, nh, t, s]
    if bias is not None:
        scores = scores + bias.float()[:, None, None, :]
    if causal:
        above = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(diagonal=1)
        scores = scores.masked_fill(above, -torch.inf)
    lse = scores.logsumexp(dim=-1)
    weights = (scores - lse[..., None]).exp().nan_to_num(0.0)
    return (weights @ values).to(q.dtype), lse


def attention_inputs(config: HybridConfig, key_bias: torch.Tensor | None, positions: torch.Tensor | None,
                     dtype: torch.dtype, check: Callable[[], None] | None = None) -> AttentionInputs:
    """The key bias, rotary tables and stop check shared by the attention layers of one forward call
    (positions [b, t] are needed only when the config uses RoPE)."""
    rope = rotary_tables(config, positions, dtype) if config.uses_rope else None
    return AttentionInputs(key_bias=key_bias, rope=rope, check=check)


def rotary_tables(config: HybridConfig, positions: torch.Tensor, dtype: torch.dtype):
    """cos, sin [b, t, head_dim] for the default RoPE (only the non-hybrid micro uses it)."""
    d = config.head_dim
    inv_freq = 1.0 / config.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float32, device=positions.device) / d)
    angles = positions[..., None].float() * inv_freq  # [b, t, d/2]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    cos, sin = cos[:, None], sin[:, None]  # broadcast over heads

    def rotate_half(x: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=-1)
        return torch.cat([-second, first], dim=-1)

    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
