"""The model's building blocks other than the Mamba mixer: norm, shared MLP, MoE, attention.

Module and attribute names mirror the checkpoint's tensor names (`../shared/reference`, §2), so
loading a checkpoint is an identity mapping of names.
"""

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

import kernels
from inference.cache import KVState
from inference.config import HybridConfig


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kernels.rms_norm(x, self.weight, self.eps)


class SharedMLP(nn.Module):
    """SwiGLU with a fused [gate; up] input projection."""

    def __init__(self, hidden: int, width: int):
        super().__init__()
        self.input_linear = nn.Linear(hidden, 2 * width, bias=False)
        self.output_linear = nn.Linear(width, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.input_linear(x).chunk(2, dim=-1)
        return self.output_linear(F.silu(gate) * up)


class Weight(nn.Module):
    """A bare parameter under the name `weight` (the expert tensors are stored this way)."""

    def __init__(self, *shape: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(*shape))


class Router(nn.Module):
    def __init__(self, hidden: int, experts: int):
        super().__init__()
        self.layer = nn.Linear(hidden, experts, bias=False)


class MoE(nn.Module):
    """Top-k routing on the raw router logits, softmax over the k, routed SwiGLU experts."""

    def __init__(self, config: HybridConfig):
        super().__init__()
        e, i, h = config.num_local_experts, config.intermediate_size, config.hidden_size
        self.top_k = config.num_experts_per_tok
        self.router = Router(h, e)
        self.input_linear = Weight(e, 2 * i, h)  # [gate; up] per expert
        self.output_linear = Weight(e, h, i)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(-1, x.shape[-1])  # [b*t, H]
        top_logits, top_index = self.router.layer(tokens).float().topk(self.top_k, dim=-1)
        top_weights = top_logits.softmax(dim=-1).to(x.dtype)
        out = kernels.moe_experts(tokens, top_index, top_weights, self.input_linear.weight, self.output_linear.weight)
        return out.view(x.shape)


@dataclasses.dataclass(frozen=True)
class AttentionInputs:
    """What every attention layer of one forward call shares (built once per call)."""

    mask: torch.Tensor | None  # bool [b, 1, t, s] (True = attend), or None
    is_causal: bool  # let SDPA apply the causal mask itself (no cache, no padding)
    rope: tuple[torch.Tensor, torch.Tensor] | None  # cos, sin [b, t, head_dim], or None (NoPE)


class Attention(nn.Module):
    """GQA attention scaled by attention_multiplier; RoPE only when the config asks for it."""

    def __init__(self, config: HybridConfig):
        super().__init__()
        h, hd, bias = config.hidden_size, config.head_dim, config.attention_bias
        self.n_heads, self.n_kv_heads, self.head_dim = config.num_attention_heads, config.num_key_value_heads, hd
        self.scale = config.attention_multiplier
        self.q_proj = nn.Linear(h, self.n_heads * hd, bias=bias)
        self.k_proj = nn.Linear(h, self.n_kv_heads * hd, bias=bias)
        self.v_proj = nn.Linear(h, self.n_kv_heads * hd, bias=bias)
        self.o_proj = nn.Linear(self.n_heads * hd, h, bias=bias)

    def forward(self, x: torch.Tensor, kv: KVState | None, inputs: AttentionInputs) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # [b, nh, t, hd]
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)  # [b, nkv, t, hd]
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if inputs.rope is not None:
            q, k = apply_rope(q, k, *inputs.rope)
        if kv is not None:
            k, v = kv.append(k, v)  # [b, nkv, s, hd], s = all positions so far
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=inputs.mask, is_causal=inputs.is_causal, scale=self.scale,
            enable_gqa=self.n_heads != self.n_kv_heads,
        )
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


def attention_inputs(config: HybridConfig, valid: torch.Tensor | None, past: int, t: int,
                     positions: torch.Tensor, dtype: torch.dtype) -> AttentionInputs:
    """The mask and rotary tables for t new positions after `past` cached ones.

    `valid` is [b, past + t] (False at padding) or None. A padded query row keeps its own
    position so no row is fully masked (its output is never used, but must not be nan).
    """
    rope = rotary_tables(config, positions, dtype) if config.uses_rope else None
    if valid is None and (past == 0 or t == 1):
        return AttentionInputs(mask=None, is_causal=past == 0 and t > 1, rope=rope)
    query = torch.arange(past, past + t, device=positions.device)[:, None]
    key = torch.arange(past + t, device=positions.device)[None, :]
    mask = (key <= query)[None, None]  # [1, 1, t, s]
    if valid is not None:
        mask = mask & (valid[:, None, None, :] | (key == query))
    return AttentionInputs(mask=mask, is_causal=False, rope=rope)


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
