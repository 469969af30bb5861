"""One decoded token through a whole decoder layer, as one op (a layer of inference/model.py):

    h     = rms_norm(x)
    mixed = mixer step(h)                         (Mamba-2: kernels/mamba.py; attention: below)
    x     = x + m * mixed;   h = rms_norm(x)
    out   = x + m * down(silu(gate(h)) * up(h))   (the shared SwiGLU MLP, [gate; up] fused)
            (+ m * the routed experts of h, in a MoE layer: kernels/moe.py's moe_block)

Composed here from the single ops, so on a GPU the fast path is theirs; on a CPU the C kernel in
`layer_native.py` runs the same kernels in one call per layer. A decoded token is ~30 such
layers of a few dozen microseconds of arithmetic each outside the weight reads, and the Python
and small PyTorch ops around them cost about as much as the reads themselves on h-350m.

The attention step of a decoded token: its query, key and value; the key and value are written
into the cache at the slot the caller made for them; the query attends to every position, the
new one included (one segment after another, merged by their log-sum-exp); the output is
projected back.
"""

import dataclasses

import torch
import torch.nn.functional as F

import kernels
from kernels.attention import decode_attention_ref, merge
from kernels.matmul import linear
from kernels.mamba import MambaStep, mamba_step_ref
from kernels.moe import moe_block, moe_experts_ref, moe_route_ref
from kernels.norm import add_rms_norm_ref, rms_norm_ref


@dataclasses.dataclass(frozen=True)
class AttentionStep:
    """What one decode step of an attention mixer reads (no RoPE: the hybrids use none)."""

    q_proj: torch.Tensor  # [heads * head_dim, hidden]
    k_proj: torch.Tensor  # [kv_heads * head_dim, hidden]
    v_proj: torch.Tensor
    o_proj: torch.Tensor  # [hidden, heads * head_dim]
    biases: tuple[torch.Tensor | None, ...]  # of q, k, v, o
    heads: int
    kv_heads: int
    head_dim: int
    scale: float


@dataclasses.dataclass(frozen=True)
class KVSlot:
    """The cache as a decoded token's attention sees it: `earlier` segments (keys, values)
    [b, kv_heads, n_i, d] shared with a state this one continues, then the layer's own positions
    `keys`, `values` [b, kv_heads, n + 1, d] whose last position is the new token's, written by the op."""

    earlier: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    keys: torch.Tensor
    values: torch.Tensor


@dataclasses.dataclass(frozen=True)
class ExpertsStep:
    """A MoE layer's routed experts (beside the shared MLP)."""

    router: torch.Tensor  # [experts, hidden]
    w_in: torch.Tensor  # [experts, 2 * width, hidden]: gate rows, then up rows
    w_out: torch.Tensor  # [experts, hidden, width]
    top_k: int


@dataclasses.dataclass(frozen=True)
class LayerStep:
    """What one decode step of a decoder layer reads: its norms, mixer, shared MLP and (a MoE layer) experts."""

    input_norm: torch.Tensor  # [hidden]
    post_norm: torch.Tensor  # [hidden]
    eps: float
    residual: float  # residual_multiplier
    mixer: MambaStep | AttentionStep
    mlp_in: torch.Tensor  # [2 * width, hidden]: gate rows, then up rows
    mlp_out: torch.Tensor  # [hidden, width]
    experts: ExpertsStep | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class LayerRun:
    """Consecutive decoder layers, in order, as a decoded token goes through them. Kept by the caller
    between tokens (a model keeps one): the C path keeps its checked arguments for all the layers
    with it."""

    steps: tuple[LayerStep, ...]


def layer_step_ref(x, step: LayerStep, state):
    """Same contract as `layer_step`, from the single ops' references."""
    mixer = mamba_step_ref if isinstance(step.mixer, MambaStep) else _attention_step_ref
    return _composed(x, step, state, rms_norm_ref, add_rms_norm_ref, mixer, moe_route_ref, moe_experts_ref)


def layer_step(x, step: LayerStep, state):
    """The layer's output for one decoded token, advancing its state in place.

    Args:
        x: [b, 1, hidden] the residual stream, fp32.  step: the layer's parameters.
        state: (conv_state, ssm_state) for a Mamba mixer (see kernels.mamba_step); a KVSlot for
            attention (the new position's key and value are written into it).

    Returns:
        [b, 1, hidden] fp32, the residual stream after the layer.
    """
    mixer = kernels.mamba_step if isinstance(step.mixer, MambaStep) else attention_step
    return _composed(x, step, state, kernels.rms_norm, kernels.add_rms_norm, mixer, kernels.moe_route,
                     kernels.moe_experts)


def layers_step_ref(x, run: LayerRun, states):
    """Same contract as `layers_step`, from `layer_step_ref`."""
    for step, state in zip(run.steps, states, strict=True):
        x = layer_step_ref(x, step, state)
    return x


def layers_step(x, run: LayerRun, states):
    """`layer_step` through each layer of `run` in turn, states[i] the state of layer i (as
    `layer_step` takes it). On a CPU the C kernel runs them all in one call: called layer by layer
    from Python, each call checking its arguments, a decoded h-350m token took ~10% longer."""
    for step, state in zip(run.steps, states, strict=True):
        x = kernels.layer_step(x, step, state)
    return x


def attention_step(h, step: AttentionStep, slot: KVSlot):
    """The attention mixer's output [b, 1, hidden] for one token h [b, 1, hidden] (see the top)."""
    return _attention(h, step, slot, kernels.decode_attention)


def _attention_step_ref(h, step, slot):
    return _attention(h, step, slot, decode_attention_ref)


def _attention(h, step, slot, attend):
    b, d = h.shape[0], step.head_dim
    q_bias, k_bias, v_bias, o_bias = step.biases
    q = linear(h, step.q_proj, q_bias).view(b, step.heads, 1, d)
    slot.keys[:, :, -1:].copy_(linear(h, step.k_proj, k_bias).view(b, step.kv_heads, 1, d))
    slot.values[:, :, -1:].copy_(linear(h, step.v_proj, v_bias).view(b, step.kv_heads, 1, d))
    q = q.to(slot.keys.dtype)  # as the prefill's attention does: the query meets the keys in their dtype
    out = merge([attend(q, keys, values, step.scale) for keys, values in (*slot.earlier, (slot.keys, slot.values))])
    return linear(out.float().reshape(b, 1, step.heads * d), step.o_proj, o_bias)


def _composed(x, step, state, rms_norm, add_rms_norm, mixer, route, experts):
    h = rms_norm(x, step.input_norm, step.eps)
    mixed = mixer(h, step.mixer, *state) if isinstance(step.mixer, MambaStep) else mixer(h, step.mixer, state)
    x, h = add_rms_norm(x, mixed, step.residual, step.post_norm, step.eps)
    gate, up = linear(h, step.mlp_in).chunk(2, dim=-1)
    ffn = linear(F.silu(gate).mul_(up), step.mlp_out)
    if step.experts is not None:
        e = step.experts
        routed = moe_block(h.reshape(-1, h.shape[-1]), e.router, e.w_in, e.w_out, e.top_k, route, experts)
        ffn = routed.view(ffn.shape) + ffn
    return torch.add(x, ffn, alpha=step.residual)
