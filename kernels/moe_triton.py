"""Triton kernels for the mixture-of-experts ops of `moe.py` (same contracts, same names).

Routing: one program takes a tile of tokens, picks the k largest router logits by repeated
argmax and softmaxes over them.

Experts, only for the routed (token, slot) pairs:
1. The pairs are sorted by expert (a stable argsort on the device, no host sync) and each
   expert's run of pairs is cut into blocks of BLOCK_M rows, so every block belongs to one expert.
2. `_gate_up_kernel`: per block, act = silu(x W_gate^T) * (x W_up^T) for its rows (grouped matmul).
3. `_down_kernel`: per block, (act W_out^T) * routing weight, written to the pair's own row.
4. The k rows of each token are summed in fp32 (deterministic: no atomics).
"""

import torch
import triton
import triton.language as tl

from kernels.dispatch import KernelError
from kernels.triton_common import MIN_DOT, block, check_device, check_dtype, interpreted

# 64 pairs x 64 output channels x 32 reduction steps: tensor-core friendly tiles that fit a
# consumer GPU's shared memory with the default software pipelining.
BLOCK_M, BLOCK_N, BLOCK_K = 64, 64, 32
# Tokens are processed in slices whose fp32 per-pair outputs ([tokens, k, H]) stay under this
# many bytes, so a long prefill never needs gigabytes of scratch.
SCRATCH_BYTES = 256 << 20
INDEX = (torch.int64, torch.int32)


@triton.jit
def _route_kernel(
    logits_ptr, weights_ptr, index_ptr,
    tokens, experts, sl_t, sl_e,
    K: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
):
    t = (tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)).to(tl.int64)
    e = tl.arange(0, BLOCK_E)
    slot = tl.arange(0, BLOCK_K)
    t_ok = t < tokens
    values = tl.load(logits_ptr + t[:, None] * sl_t + e[None, :] * sl_e,
                     mask=t_ok[:, None] & (e[None, :] < experts), other=0.0).to(tl.float32)
    values = tl.where(e[None, :] < experts, values, float("-inf"))  # padding experts are never picked
    top = tl.full((BLOCK_T, BLOCK_K), float("-inf"), dtype=tl.float32)
    picked = tl.zeros((BLOCK_T, BLOCK_K), dtype=tl.int64)
    for j in tl.static_range(K):
        best = tl.argmax(values, axis=1, tie_break_left=True)  # ties go to the lower expert id
        top = tl.where(slot[None, :] == j, tl.max(values, axis=1)[:, None], top)
        picked = tl.where(slot[None, :] == j, best[:, None].to(tl.int64), picked)
        values = tl.where(e[None, :] == best[:, None], float("-inf"), values)
    # Softmax over the k picked logits; the first pick is the largest.
    exp = tl.where(slot[None, :] < K, tl.exp(top - tl.max(top, axis=1)[:, None]), 0.0)
    weights = exp / tl.sum(exp, axis=1)[:, None]
    out = t[:, None] * K + slot[None, :]
    ok = t_ok[:, None] & (slot[None, :] < K)
    tl.store(weights_ptr + out, weights, mask=ok)
    tl.store(index_ptr + out, picked, mask=ok)


@triton.jit
def _dot(a, b, acc, UPCAST: tl.constexpr):
    # Triton 3.7.1's interpreter multiplies bf16 tiles as raw integers; fp32 copies of 16-bit
    # values give the same exact products and fp32 sums as a 16-bit tensor-core dot on a GPU.
    if UPCAST:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    return tl.dot(a, b, acc, input_precision="ieee")


@triton.jit
def _block_rows(order_ptr, first_ptr, rows_ptr, block_id, TOPK: tl.constexpr, BLOCK_M: tl.constexpr):
    """The sorted positions, pair ids, token ids and validity of one block's rows."""
    first = tl.load(first_ptr + block_id)
    m = tl.arange(0, BLOCK_M)
    ok = m < tl.load(rows_ptr + block_id)
    row = first + m
    pair = tl.load(order_ptr + row, mask=ok, other=0)
    return row, pair, pair // TOPK, ok


@triton.jit
def _gate_up_kernel(
    x_ptr, w_ptr, act_ptr, order_ptr, expert_ptr, first_ptr, rows_ptr,
    hidden, width,
    sx_t, sx_h, sw_e, sw_o, sw_h, sa_r,
    TOPK: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    UPCAST: tl.constexpr,
):
    block_id = tl.program_id(0)
    if tl.load(rows_ptr + block_id) == 0:
        return  # a spare block (the grid is sized for the worst case, without a host sync)
    row, pair, token, ok = _block_rows(order_ptr, first_ptr, rows_ptr, block_id, TOPK, BLOCK_M)
    expert = tl.load(expert_ptr + block_id).to(tl.int64)
    n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok = n < width
    gate = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    up = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    w_rows = w_ptr + expert * sw_e + n[None, :] * sw_o  # gate rows n, up rows width + n
    for k0 in range(0, hidden, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        k_ok = k < hidden
        a = tl.load(x_ptr + token[:, None] * sx_t + k[None, :] * sx_h, mask=ok[:, None] & k_ok[None, :], other=0.0)
        w_mask = k_ok[:, None] & n_ok[None, :]
        w_gate = tl.load(w_rows + k[:, None] * sw_h, mask=w_mask, other=0.0)  # [BLOCK_K, BLOCK_N]
        w_up = tl.load(w_rows + width * sw_o + k[:, None] * sw_h, mask=w_mask, other=0.0)
        gate = _dot(a, w_gate, gate, UPCAST)
        up = _dot(a, w_up, up, UPCAST)
    act = gate / (1.0 + tl.exp(-gate)) * up
    tl.store(act_ptr + row[:, None].to(tl.int64) * sa_r + n[None, :], act.to(act_ptr.dtype.element_ty),
             mask=ok[:, None] & n_ok[None, :])


@triton.jit
def _down_kernel(
    act_ptr, w_ptr, routing_ptr, out_ptr, order_ptr, expert_ptr, first_ptr, rows_ptr,
    hidden, width,
    sa_r, sw_e, sw_o, sw_i, sr_t, sr_k, so_p,
    TOPK: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    UPCAST: tl.constexpr,
):
    block_id = tl.program_id(0)
    if tl.load(rows_ptr + block_id) == 0:
        return
    row, pair, token, ok = _block_rows(order_ptr, first_ptr, rows_ptr, block_id, TOPK, BLOCK_M)
    expert = tl.load(expert_ptr + block_id).to(tl.int64)
    n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # output (hidden) channels
    n_ok = n < hidden
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, width, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        k_ok = k < width
        a = tl.load(act_ptr + row[:, None].to(tl.int64) * sa_r + k[None, :], mask=ok[:, None] & k_ok[None, :],
                    other=0.0)
        w = tl.load(w_ptr + expert * sw_e + n[None, :] * sw_o + k[:, None] * sw_i,
                    mask=k_ok[:, None] & n_ok[None, :], other=0.0)  # [BLOCK_K, BLOCK_N]
        acc = _dot(a, w, acc, UPCAST)
    routing = tl.load(routing_ptr + token * sr_t + (pair % TOPK) * sr_k, mask=ok, other=0.0).to(tl.float32)
    tl.store(out_ptr + pair[:, None] * so_p + n[None, :], acc * routing[:, None], mask=ok[:, None] & n_ok[None, :])


def moe_route(logits, k):
    """Top-k experts per token and their softmax weights (Triton; contract of `moe.moe_route`).

    Args:
        logits: [T, E] router logits, any float dtype and strides.
        k: experts per token, 1 <= k <= E.

    Returns:
        weights: [T, k] fp32, softmax over the k largest logits, largest first.
        index: [T, k] int64 expert ids.
    """
    op = "moe_route"
    check_device(op, _route_kernel, logits=logits)
    check_dtype(op, "logits", logits)
    if logits.dim() != 2 or not isinstance(k, int) or not 1 <= k <= logits.shape[1]:
        raise KernelError(f"{op}: cannot pick k = {k!r} experts from logits of shape {list(logits.shape)}")
    tokens, experts = logits.shape
    weights = torch.empty(tokens, k, dtype=torch.float32, device=logits.device)
    index = torch.empty(tokens, k, dtype=torch.int64, device=logits.device)
    block_e = block(experts, 1024)
    if experts > block_e:
        raise KernelError(f"{op}: {experts} experts exceed the kernel's {block_e}")
    block_t = block(tokens, max(1, 1024 // block_e))  # a [block_t, block_e] tile of at most 1024 logits
    _route_kernel[(triton.cdiv(max(tokens, 1), block_t),)](
        logits, weights, index, tokens, experts, *logits.stride(),
        K=k, BLOCK_T=block_t, BLOCK_E=block_e, BLOCK_K=block(k, 1024),
    )
    return weights, index


def _check_experts(op, x, top_k_index, top_k_weights, w_in, w_out) -> None:
    check_device(op, _gate_up_kernel, x=x, top_k_index=top_k_index, top_k_weights=top_k_weights, w_in=w_in,
                 w_out=w_out)
    for name, tensor in (("x", x), ("top_k_weights", top_k_weights), ("w_in", w_in), ("w_out", w_out)):
        check_dtype(op, name, tensor)
    check_dtype(op, "top_k_index", top_k_index, INDEX)
    shapes_agree = (
        x.dim() == 2 and w_in.dim() == 3 and w_out.dim() == 3 and top_k_index.dim() == 2
        and w_in.shape[2] == x.shape[1] and w_in.shape[1] % 2 == 0
        and tuple(w_out.shape) == (w_in.shape[0], x.shape[1], w_in.shape[1] // 2)
        and tuple(top_k_weights.shape) == tuple(top_k_index.shape) and top_k_index.shape[0] == x.shape[0]
    )
    if not shapes_agree:
        raise KernelError(
            f"{op}: x {list(x.shape)}, index {list(top_k_index.shape)}, weights {list(top_k_weights.shape)}, "
            f"w_in {list(w_in.shape)}, w_out {list(w_out.shape)} are not [T, H], [T, k], [T, k], [E, 2I, H], [E, H, I]"
        )
    if not x.dtype == w_in.dtype == w_out.dtype:
        raise KernelError(f"{op}: x, w_in and w_out must share a dtype, got {x.dtype}, {w_in.dtype}, {w_out.dtype}")


def _blocks(top_k_index: torch.Tensor, experts: int, block_m: int):
    """Pairs sorted by expert, cut into one-expert blocks of block_m rows (all on the device).

    Returns order [pairs] (pair ids, grouped by expert) and, per block, its expert, the position
    in `order` of its first row and its number of rows (0 for spare blocks).
    """
    flat = top_k_index.reshape(-1)
    order = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat, minlength=experts)
    blocks = (counts + block_m - 1) // block_m
    block_end = torch.cumsum(blocks, 0)
    # At most one partly filled block per routed expert: a bound known without a host sync.
    ids = torch.arange(triton.cdiv(flat.numel(), block_m) + min(experts, flat.numel()), device=flat.device)
    expert = torch.searchsorted(block_end, ids, right=True).clamp(max=experts - 1)
    local = ids - (block_end - blocks)[expert]  # block number within its expert
    first = (torch.cumsum(counts, 0) - counts)[expert] + local * block_m
    rows = (counts[expert] - local * block_m).clamp(0, block_m) * (ids < block_end[-1])
    return order, expert, first, rows


def moe_experts(x, top_k_index, top_k_weights, w_in, w_out):
    """Run each token through its routed experts only (Triton; contract of `moe.moe_experts`).

    Args:
        x: [T, H] tokens, any strides.
        top_k_index: [T, k] int64 or int32 expert ids, each in [0, E) (not checked: that would
            cost a device sync per layer).
        top_k_weights: [T, k] routing weights.
        w_in: [E, 2I, H] fused [gate; up] weights.  w_out: [E, H, I].  Same dtype as x.

    Returns:
        [T, H] in x's dtype.
    """
    op = "moe_experts"
    _check_experts(op, x, top_k_index, top_k_weights, w_in, w_out)
    tokens, hidden = x.shape
    k = top_k_index.shape[1]
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    step = max(1, SCRATCH_BYTES // (4 * k * hidden))
    for lo in range(0, tokens, step):
        rows = slice(lo, min(tokens, lo + step))
        out[rows] = _routed_experts(x[rows], top_k_index[rows], top_k_weights[rows], w_in, w_out)
    return out


def _routed_experts(x, top_k_index, top_k_weights, w_in, w_out):
    tokens, hidden = x.shape
    experts, width = w_in.shape[0], w_in.shape[1] // 2
    k = top_k_index.shape[1]
    if k == 0:
        return torch.zeros_like(x)
    order, expert, first, rows = _blocks(top_k_index, experts, BLOCK_M)
    act = torch.empty(tokens * k, width, dtype=x.dtype, device=x.device)  # rows in sorted order
    pair_out = torch.empty(tokens * k, hidden, dtype=torch.float32, device=x.device)  # rows in pair order
    upcast = interpreted(_gate_up_kernel)
    block_n = block(width, BLOCK_N, MIN_DOT)
    _gate_up_kernel[(expert.numel(), triton.cdiv(width, block_n))](
        x, w_in, act, order, expert, first, rows, hidden, width,
        *x.stride(), *w_in.stride(), act.stride(0),
        TOPK=k, BLOCK_M=BLOCK_M, BLOCK_N=block_n, BLOCK_K=block(hidden, BLOCK_K, MIN_DOT), UPCAST=upcast,
        num_warps=8,  # two fp32 accumulators (gate, up): 4 warps would spill
    )
    block_n = block(hidden, BLOCK_N, MIN_DOT)
    _down_kernel[(expert.numel(), triton.cdiv(hidden, block_n))](
        act, w_out, top_k_weights, pair_out, order, expert, first, rows, hidden, width,
        act.stride(0), *w_out.stride(), *top_k_weights.stride(), pair_out.stride(0),
        TOPK=k, BLOCK_M=BLOCK_M, BLOCK_N=block_n, BLOCK_K=block(width, BLOCK_K, MIN_DOT), UPCAST=upcast,
        num_warps=8,  # fp32 weights at 4 warps would spill
    )
    return pair_out.view(tokens, k, hidden).sum(dim=1).to(x.dtype)
