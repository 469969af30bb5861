"""Mixture-of-experts dispatch: each token runs through the k experts it was routed to.

Expert e is a SwiGLU with fused weights: gu = x w_in[e]^T, the first half of gu is the gate and
the second the up projection, out = (silu(gate) * up) w_out[e]^T. A token's output is the
routing-weighted sum over its k experts. `moe_experts_ref` computes every expert for every
token (obviously correct, wasteful); `moe_experts` groups tokens by expert and computes only the
routed pairs. `moe_route` picks the experts (top-k on the raw logits, softmax over the k). The
Triton kernels are in `moe_triton.py`.

Shapes (T tokens, H hidden, E experts, I expert width, k experts per token):
    x [T, H]   top_k_index [T, k] int64   top_k_weights [T, k]   w_in [E, 2I, H]   w_out [E, H, I]
"""

import torch
import torch.nn.functional as F

from kernels.dispatch import KernelError
from kernels.matmul import linear


def moe_route_ref(logits, k):
    """Same contract as `moe_route`: an explicit softmax over the sorted top k."""
    ordered, order = torch.sort(logits.float(), dim=-1, descending=True, stable=True)
    top = ordered[:, :k]
    weights = torch.exp(top - top[:, :1])
    return weights / weights.sum(dim=-1, keepdim=True), order[:, :k]


def moe_route(logits, k):
    """Pick each token's k experts: top-k on the raw router logits, then a softmax over those k.

    Args:
        logits: [T, E] router logits (any float dtype; routed in fp32).  k: experts per token.

    Returns:
        weights: [T, k] fp32, summing to 1 per token, largest first.
        index: [T, k] int64 expert ids.
    """
    if logits.dim() != 2 or not 1 <= k <= logits.shape[-1]:
        raise KernelError(f"moe_route: cannot pick k = {k} experts from logits of shape {tuple(logits.shape)}")
    top, index = logits.float().topk(k, dim=-1)
    return top.softmax(dim=-1), index


def _check(x, top_k_index, top_k_weights, w_in, w_out) -> None:
    experts, width2, hidden = w_in.shape
    if (
        x.shape[-1] != hidden
        or w_out.shape != (experts, hidden, width2 // 2)
        or top_k_index.shape != top_k_weights.shape
        or top_k_index.shape[0] != x.shape[0]
    ):
        raise KernelError(
            f"moe_experts: x {tuple(x.shape)}, index {tuple(top_k_index.shape)}, "
            f"weights {tuple(top_k_weights.shape)}, w_in {tuple(w_in.shape)}, w_out {tuple(w_out.shape)}"
        )


def _swiglu(x: torch.Tensor, w_in: torch.Tensor, w_out: torch.Tensor) -> torch.Tensor:
    gate, up = linear(x, w_in).chunk(2, dim=-1)  # bf16 experts on a CPU without fast bf16: see matmul.py
    return linear(F.silu(gate) * up, w_out)


def moe_experts_ref(x, top_k_index, top_k_weights, w_in, w_out):
    """Every expert on every token, then a dense routing-weighted sum: same contract as `moe_experts`."""
    _check(x, top_k_index, top_k_weights, w_in, w_out)
    every = torch.stack([_swiglu(x, w_in[e], w_out[e]).to(x.dtype) for e in range(w_in.shape[0])], dim=1)  # [T, E, H]
    routing = torch.zeros(x.shape[0], w_in.shape[0], dtype=x.dtype, device=x.device)
    routing.scatter_add_(1, top_k_index, top_k_weights.to(x.dtype))  # [T, E], zero where not routed
    return torch.einsum("te,teh->th", routing, every)


def moe_experts(x, top_k_index, top_k_weights, w_in, w_out):
    """Run each token through its routed experts only and sum them with the routing weights.

    Args:
        x: [T, H] tokens.
        top_k_index: [T, k] expert ids per token.
        top_k_weights: [T, k] routing weights per token.
        w_in: [E, 2I, H] fused [gate; up] weights.  w_out: [E, H, I].

    Returns:
        [T, H] in x's dtype.
    """
    _check(x, top_k_index, top_k_weights, w_in, w_out)
    k = top_k_index.shape[1]
    flat = top_k_index.reshape(-1)
    order = torch.argsort(flat, stable=True)  # (token, slot) pairs grouped by expert
    token = order // k
    weight = top_k_weights.reshape(-1)[order, None].to(x.dtype)
    counts = torch.bincount(flat, minlength=w_in.shape[0]).tolist()
    out = torch.zeros_like(x)
    start = 0
    for expert, count in enumerate(counts):
        if count:
            rows = slice(start, start + count)
            y = _swiglu(x[token[rows]], w_in[expert], w_out[expert]) * weight[rows]
            out.index_add_(0, token[rows], y.to(out.dtype))
            start += count
    return out


def moe_block(x, router, w_in, w_out, k, route, experts):
    """A MoE layer's routed experts for tokens x [T, H] (fp32 or the model's dtype), with the
    `route` and `experts` ops given (dispatched or references): the router's logits in the compute
    dtype, top-k, then the experts on x and weights rounded to the experts' dtype (the expert
    kernels take tokens in it), their sum back in x's dtype. The model's MoE layer and the decode
    step's composition (`kernels.layer`) both run this.

    Args:
        router: [E, H].  w_in: [E, 2I, H].  w_out: [E, H, I].  k: experts per token.
    """
    top_weights, top_index = route(linear(x, router), k)
    out = experts(x.to(w_in.dtype), top_index, top_weights.to(w_in.dtype), w_in, w_out)
    return out.to(x.dtype)
