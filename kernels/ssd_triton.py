"""Triton kernels for the Mamba-2 SSD scan and decode step of `ssd.py` (same contracts, same names).

The scan is the chunked SSD algorithm in five launches, over chunks of Q tokens:

1. `_chunk_cumsum_kernel`: cs[l] = dt[0]*A + ... + dt[l]*A within each chunk (log-decay).
2. `_chunk_state_kernel`: what each chunk adds to the state by its end,
   sum_l exp(cs[Q-1] - cs[l]) * dt[l] * x[l] ⊗ B[l].
3. `_state_passing_kernel`: carries the state across chunks, sequentially, starting from the
   initial state; leaves each chunk's starting state in place of its contribution, and the final
   state.
4. `_chunk_cb_kernel`: C[l] · B[s] for every pair in a chunk, once per group (not per head).
5. `_chunk_scan_kernel`: y[l] = exp(cs[l]) * C[l] · start_state (inter-chunk)
   + sum_{s<=l} C[l]·B[s] * exp(cs[l] - cs[s]) * dt[s] * x[s] (intra-chunk) + D * x[l].

Tokens past the end of the sequence are masked to dt = 0, x = B = C = 0, so any length works
without padding copies. Everything is computed in fp32 whatever the input dtype.

The decode step (`_ssd_step_kernel`) updates every head's state in one launch, with the D skip.
The z gate is not applied here: Mamba-2 gates before its grouped norm, so `gated_rms_norm` applies
it in the same pass as the norm.
"""

import torch
import triton
import triton.language as tl

from kernels.dispatch import KernelError
from kernels.triton_common import MIN_DOT, block, check_device, check_dtype, check_shape, check_writable, dot_precision


@triton.jit
def _chunk_cumsum_kernel(
    dt_ptr, A_ptr, cs_ptr,
    length, heads, nchunks,
    sdt_b, sdt_t, sdt_h,
    Q: tl.constexpr, BLOCK_H: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1)
    h = tl.program_id(2) * BLOCK_H + tl.arange(0, BLOCK_H)
    l = tl.arange(0, Q)
    pos = c * Q + l
    h_ok = h < heads
    dt = tl.load(dt_ptr + b * sdt_b + pos[:, None].to(tl.int64) * sdt_t + h[None, :] * sdt_h,
                 mask=(pos[:, None] < length) & h_ok[None, :], other=0.0).to(tl.float32)
    A = tl.load(A_ptr + h, mask=h_ok, other=0.0).to(tl.float32)
    cs = tl.cumsum(dt * A[None, :], axis=0)  # [Q, BLOCK_H]
    out = cs_ptr + ((b * heads + h[None, :]) * nchunks + c) * Q + l[:, None]
    tl.store(out, cs, mask=h_ok[None, :])


@triton.jit
def _chunk_state_kernel(
    x_ptr, B_ptr, dt_ptr, cs_ptr, states_ptr,
    length, heads, nchunks, head_dim, d_state, heads_per_group,
    sx_b, sx_t, sx_h, sx_p, sB_b, sB_t, sB_g, sB_n, sdt_b, sdt_t, sdt_h,
    Q: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr,
    PRECISION: tl.constexpr,
):
    p_blocks = tl.cdiv(head_dim, BLOCK_P)
    p = (tl.program_id(0) % p_blocks) * BLOCK_P + tl.arange(0, BLOCK_P)
    n = (tl.program_id(0) // p_blocks) * BLOCK_N + tl.arange(0, BLOCK_N)
    b = (tl.program_id(1) // nchunks).to(tl.int64)
    c = tl.program_id(1) % nchunks
    h = tl.program_id(2)
    g = h // heads_per_group
    p_ok, n_ok = p < head_dim, n < d_state
    cs_row = cs_ptr + ((b * heads + h) * nchunks + c) * Q
    cs_end = tl.load(cs_row + Q - 1)
    acc = tl.zeros((BLOCK_P, BLOCK_N), dtype=tl.float32)
    for l0 in range(0, tl.minimum(Q, length - c * Q), BLOCK_L):
        l = l0 + tl.arange(0, BLOCK_L)
        pos = (c * Q + l).to(tl.int64)
        ok = pos < length
        x = tl.load(x_ptr + b * sx_b + pos[:, None] * sx_t + h * sx_h + p[None, :] * sx_p,
                    mask=ok[:, None] & p_ok[None, :], other=0.0).to(tl.float32)  # [BLOCK_L, BLOCK_P]
        Bv = tl.load(B_ptr + b * sB_b + pos[:, None] * sB_t + g * sB_g + n[None, :] * sB_n,
                     mask=ok[:, None] & n_ok[None, :], other=0.0).to(tl.float32)  # [BLOCK_L, BLOCK_N]
        dt = tl.load(dt_ptr + b * sdt_b + pos * sdt_t + h * sdt_h, mask=ok, other=0.0).to(tl.float32)
        weight = tl.exp(cs_end - tl.load(cs_row + l)) * dt  # decay from token l to the chunk's end
        acc = tl.dot(tl.trans(x * weight[:, None]), Bv, acc, input_precision=PRECISION)
    out = states_ptr + (((b * nchunks + c) * heads + h) * head_dim + p[:, None]) * d_state + n[None, :]
    tl.store(out, acc, mask=p_ok[:, None] & n_ok[None, :])


@triton.jit
def _state_passing_kernel(
    states_ptr, cs_ptr, init_ptr, final_ptr,
    heads, nchunks, d_state, size,
    si_b, si_h, si_p, si_n,
    Q: tl.constexpr, HAS_INIT: tl.constexpr, BLOCK: tl.constexpr,
):
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)  # flat (p, n) index
    b = tl.program_id(1).to(tl.int64)
    h = tl.program_id(2)
    ok = e < size
    if HAS_INIT:
        running = tl.load(init_ptr + b * si_b + h * si_h + (e // d_state) * si_p + (e % d_state) * si_n,
                          mask=ok, other=0.0).to(tl.float32)
    else:
        running = tl.zeros((BLOCK,), dtype=tl.float32)
    for c in range(0, nchunks):
        slot = states_ptr + ((b * nchunks + c) * heads + h) * size + e
        added = tl.load(slot, mask=ok, other=0.0)
        tl.store(slot, running, mask=ok)  # the state at the start of chunk c replaces its contribution
        decay = tl.exp(tl.load(cs_ptr + ((b * heads + h) * nchunks + c) * Q + Q - 1))
        running = running * decay + added
    tl.store(final_ptr + (b * heads + h) * size + e, running, mask=ok)


@triton.jit
def _chunk_cb_kernel(
    B_ptr, C_ptr, cb_ptr,
    length, nchunks, groups, d_state,
    sB_b, sB_t, sB_g, sB_n, sC_b, sC_t, sC_g, sC_n,
    Q: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_N: tl.constexpr,
    PRECISION: tl.constexpr,
):
    s_blocks: tl.constexpr = Q // BLOCK_S
    l_start = (tl.program_id(0) // s_blocks) * BLOCK_L
    s_start = (tl.program_id(0) % s_blocks) * BLOCK_S
    b = (tl.program_id(1) // nchunks).to(tl.int64)
    c = tl.program_id(1) % nchunks
    g = tl.program_id(2)
    if s_start > l_start + BLOCK_L - 1:
        return  # strictly above the diagonal: never read (s > l)
    l = l_start + tl.arange(0, BLOCK_L)
    s = s_start + tl.arange(0, BLOCK_S)
    pos_l, pos_s = (c * Q + l).to(tl.int64), (c * Q + s).to(tl.int64)
    acc = tl.zeros((BLOCK_L, BLOCK_S), dtype=tl.float32)
    for n0 in range(0, d_state, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        n_ok = n < d_state
        Cv = tl.load(C_ptr + b * sC_b + pos_l[:, None] * sC_t + g * sC_g + n[None, :] * sC_n,
                     mask=(pos_l[:, None] < length) & n_ok[None, :], other=0.0).to(tl.float32)
        Bv = tl.load(B_ptr + b * sB_b + pos_s[None, :] * sB_t + g * sB_g + n[:, None] * sB_n,
                     mask=(pos_s[None, :] < length) & n_ok[:, None], other=0.0).to(tl.float32)
        acc = tl.dot(Cv, Bv, acc, input_precision=PRECISION)  # [BLOCK_L, BLOCK_S]
    out = cb_ptr + ((b * nchunks + c) * groups + g) * Q * Q + l[:, None] * Q + s[None, :]
    tl.store(out, acc)


@triton.jit
def _chunk_scan_kernel(
    x_ptr, dt_ptr, C_ptr, cs_ptr, cb_ptr, states_ptr, D_ptr, y_ptr,
    length, heads, nchunks, head_dim, d_state, heads_per_group, groups,
    sx_b, sx_t, sx_h, sx_p, sdt_b, sdt_t, sdt_h, sC_b, sC_t, sC_g, sC_n, sy_b, sy_t, sy_h, sy_p,
    Q: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_P: tl.constexpr,
    BLOCK_N: tl.constexpr, HAS_D: tl.constexpr, PRECISION: tl.constexpr,
):
    p_blocks = tl.cdiv(head_dim, BLOCK_P)
    l_start = (tl.program_id(0) // p_blocks) * BLOCK_L
    p = (tl.program_id(0) % p_blocks) * BLOCK_P + tl.arange(0, BLOCK_P)
    b = (tl.program_id(1) // nchunks).to(tl.int64)
    c = tl.program_id(1) % nchunks
    h = tl.program_id(2)
    g = h // heads_per_group
    valid = length - c * Q  # tokens of this chunk inside the sequence
    if l_start >= valid:
        return
    l = l_start + tl.arange(0, BLOCK_L)
    pos_l = (c * Q + l).to(tl.int64)
    l_ok, p_ok = l < valid, p < head_dim
    cs_row = cs_ptr + ((b * heads + h) * nchunks + c) * Q
    cs_l = tl.load(cs_row + l)

    # Inter-chunk: the state at the chunk's start, read out by C and decayed to each position.
    acc = tl.zeros((BLOCK_L, BLOCK_P), dtype=tl.float32)
    start = states_ptr + ((b * nchunks + c) * heads + h) * head_dim * d_state
    for n0 in range(0, d_state, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        n_ok = n < d_state
        Cv = tl.load(C_ptr + b * sC_b + pos_l[:, None] * sC_t + g * sC_g + n[None, :] * sC_n,
                     mask=l_ok[:, None] & n_ok[None, :], other=0.0).to(tl.float32)  # [BLOCK_L, BLOCK_N]
        S = tl.load(start + p[None, :] * d_state + n[:, None], mask=n_ok[:, None] & p_ok[None, :], other=0.0)
        acc = tl.dot(Cv, S, acc, input_precision=PRECISION)
    acc = acc * tl.exp(cs_l)[:, None]

    # Intra-chunk: causal, decay-weighted mixing of the chunk's own inputs (s <= l).
    cb_block = cb_ptr + ((b * nchunks + c) * groups + g) * Q * Q
    for s0 in range(0, tl.minimum(l_start + BLOCK_L, valid), BLOCK_S):
        s = s0 + tl.arange(0, BLOCK_S)
        causal = (s[None, :] <= l[:, None]) & (s[None, :] < valid)
        cb = tl.load(cb_block + l[:, None] * Q + s[None, :], mask=causal, other=0.0)
        pos_s = (c * Q + s).to(tl.int64)
        dt_s = tl.load(dt_ptr + b * sdt_b + pos_s * sdt_t + h * sdt_h, mask=s < valid, other=0.0).to(tl.float32)
        # cs is non-increasing, so the exponent is <= 0 where causal; the clamp keeps the
        # masked-out entries finite.
        decay = tl.exp(tl.minimum(cs_l[:, None] - tl.load(cs_row + s)[None, :], 0.0))
        weights = tl.where(causal, cb * decay * dt_s[None, :], 0.0)
        xs = tl.load(x_ptr + b * sx_b + pos_s[:, None] * sx_t + h * sx_h + p[None, :] * sx_p,
                     mask=(s[:, None] < valid) & p_ok[None, :], other=0.0).to(tl.float32)  # [BLOCK_S, BLOCK_P]
        acc = tl.dot(weights, xs, acc, input_precision=PRECISION)

    if HAS_D:
        x_l = tl.load(x_ptr + b * sx_b + pos_l[:, None] * sx_t + h * sx_h + p[None, :] * sx_p,
                      mask=l_ok[:, None] & p_ok[None, :], other=0.0).to(tl.float32)
        acc += tl.load(D_ptr + h).to(tl.float32) * x_l
    tl.store(y_ptr + b * sy_b + pos_l[:, None] * sy_t + h * sy_h + p[None, :] * sy_p, acc,
             mask=l_ok[:, None] & p_ok[None, :])


@triton.jit
def _ssd_step_kernel(
    state_ptr, x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, y_ptr,
    heads, head_dim, d_state, heads_per_group,
    sx_b, sx_h, sx_p, sdt_b, sdt_h, sB_b, sB_g, sB_n, sC_b, sC_g, sC_n,
    HAS_D: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1)
    p = tl.program_id(2) * BLOCK_P + tl.arange(0, BLOCK_P)
    n = tl.arange(0, BLOCK_N)
    g = h // heads_per_group
    p_ok, n_ok = p < head_dim, n < d_state
    cell = state_ptr + ((b * heads + h) * head_dim + p[:, None]) * d_state + n[None, :]
    state = tl.load(cell, mask=p_ok[:, None] & n_ok[None, :], other=0.0)  # [BLOCK_P, BLOCK_N] fp32
    x = tl.load(x_ptr + b * sx_b + h * sx_h + p * sx_p, mask=p_ok, other=0.0).to(tl.float32)
    dt = tl.load(dt_ptr + b * sdt_b + h * sdt_h).to(tl.float32)
    A = tl.load(A_ptr + h).to(tl.float32)
    Bv = tl.load(B_ptr + b * sB_b + g * sB_g + n * sB_n, mask=n_ok, other=0.0).to(tl.float32)
    Cv = tl.load(C_ptr + b * sC_b + g * sC_g + n * sC_n, mask=n_ok, other=0.0).to(tl.float32)
    state = state * tl.exp(dt * A) + (dt * x)[:, None] * Bv[None, :]
    tl.store(cell, state, mask=p_ok[:, None] & n_ok[None, :])
    y = tl.sum(state * Cv[None, :], axis=1)
    if HAS_D:
        y += tl.load(D_ptr + h).to(tl.float32) * x
    tl.store(y_ptr + (b * heads + h) * head_dim + p, y, mask=p_ok)


def _check(op: str, kernel, x, dt, A, B, C, D, state) -> None:
    """x [b, (t,) h, p], dt [b, (t,) h], B and C [b, (t,) g, n] with h % g == 0, A and D [h]."""
    check_device(op, kernel, x=x, dt=dt, A=A, B=B, C=C, D=D, state=state)
    for name, tensor in (("x", x), ("dt", dt), ("A", A), ("B", B), ("C", C), ("D", D), ("state", state)):
        check_dtype(op, name, tensor)
    *lead, h, p = x.shape
    g, n = B.shape[-2:]
    check_shape(op, "dt", dt, (*lead, h))
    check_shape(op, "B", B, (*lead, g, n))
    check_shape(op, "C", C, (*lead, g, n))
    check_shape(op, "A", A, (h,))
    check_shape(op, "D", D, (h,))
    if g < 1 or h % g:
        raise KernelError(f"{op}: {h} heads do not split into {g} groups")
    check_shape(op, "state", state, (lead[0], h, p, n))


def ssd_scan(x, dt, A, B, C, D, chunk_size, initial_state=None):
    """Chunked SSD scan over a sequence (Triton; contract of `ssd.ssd_scan`).

    Args:
        x: [b, t, h, p] inputs, any strides and float dtype.
        dt: [b, t, h] step sizes, already through softplus (and any clamp).
        A: [h] negative decay rates.
        B, C: [b, t, g, n] input and output projections, any strides; head i uses group i // (h // g).
        D: [h] skip weights, or None.
        chunk_size: tokens per chunk, rounded up to a power of two of at least 16 (tl.dot's
            smallest tile); the result does not depend on it beyond fp32 rounding.
        initial_state: [b, h, p, n] state before the first token (any strides), or None for zeros.

    Returns:
        y: [b, t, h, p] fp32 outputs.
        final_state: [b, h, p, n] fp32 state after the last token.
    """
    if x.dim() != 4 or dt.dim() != 3 or B.dim() != 4:
        raise KernelError(f"ssd_scan: x {list(x.shape)}, dt {list(dt.shape)}, B {list(B.shape)} are not "
                          "[b, t, h, p], [b, t, h], [b, t, g, n]")
    _check("ssd_scan", _chunk_scan_kernel, x, dt, A, B, C, D, initial_state)
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise KernelError(f"ssd_scan: chunk_size {chunk_size!r} must be a positive integer")
    b, t, h, p = x.shape
    g, n = B.shape[2:]
    if t == 0:
        state = torch.zeros(b, h, p, n, device=x.device) if initial_state is None else initial_state.float()
        return x.new_zeros(b, 0, h, p, dtype=torch.float32), state.clone()
    q = max(MIN_DOT, triton.next_power_of_2(chunk_size))
    nc = triton.cdiv(t, q)
    precision = dot_precision(x.dtype)
    # Tiles of 64 chunk rows x 64 head channels x 64 state channels, 8 warps for the two matmul
    # kernels: the fp32 operands then fit a GPU's registers without spilling (checked for sm_80,
    # sm_86 and sm_90 by tests/kernels/test_gpu_compile_triton.py) and shared memory stays < 99 KB.
    block_l = block_s = min(q, 64)
    block_p, block_n = block(p, 64, MIN_DOT), block(n, 64, MIN_DOT)
    f32 = dict(dtype=torch.float32, device=x.device)
    cs = torch.empty(b, h, nc, q, **f32)
    states = torch.empty(b, nc, h, p, n, **f32)
    cb = torch.empty(b, nc, g, q, q, **f32)
    y = torch.empty(b, t, h, p, **f32)
    final = torch.empty(b, h, p, n, **f32)

    block_h = block(h, max(1, 4096 // q))  # a [q, block_h] tile of at most 4096 decays
    _chunk_cumsum_kernel[(b, nc, triton.cdiv(h, block_h))](dt, A, cs, t, h, nc, *dt.stride(), Q=q, BLOCK_H=block_h)
    _chunk_state_kernel[(triton.cdiv(p, block_p) * triton.cdiv(n, block_n), b * nc, h)](
        x, B, dt, cs, states, t, h, nc, p, n, h // g, *x.stride(), *B.stride(), *dt.stride(),
        Q=q, BLOCK_L=block_l, BLOCK_P=block_p, BLOCK_N=block_n, PRECISION=precision,
    )
    init_strides = initial_state.stride() if initial_state is not None else (0, 0, 0, 0)
    pass_block = block(p * n, 1024)
    _state_passing_kernel[(triton.cdiv(p * n, pass_block), b, h)](
        states, cs, initial_state, final, h, nc, n, p * n, *init_strides,
        Q=q, HAS_INIT=initial_state is not None, BLOCK=pass_block,
    )
    _chunk_cb_kernel[((q // block_l) * (q // block_s), b * nc, g)](
        B, C, cb, t, nc, g, n, *B.stride(), *C.stride(),
        Q=q, BLOCK_L=block_l, BLOCK_S=block_s, BLOCK_N=block_n, PRECISION=precision, num_warps=8,
    )
    _chunk_scan_kernel[((q // block_l) * triton.cdiv(p, block_p), b * nc, h)](
        x, dt, C, cs, cb, states, D, y, t, h, nc, p, n, h // g, g,
        *x.stride(), *dt.stride(), *C.stride(), *y.stride(),
        Q=q, BLOCK_L=block_l, BLOCK_S=block_s, BLOCK_P=block_p, BLOCK_N=block_n,
        HAS_D=D is not None, PRECISION=precision, num_warps=8,
    )
    return y, final


def ssd_step(state, x, dt, A, B, C, D):
    """Advance the recurrence by one token, updating `state` in place (Triton; contract of `ssd.ssd_step`).

    Args:
        state: [b, h, p, n] fp32, contiguous; overwritten with the state after this token.
        x: [b, h, p] input.  dt: [b, h] step size (softplus'd).  A: [h].
        B, C: [b, g, n], any strides.  D: [h] or None.

    Returns:
        y: [b, h, p] fp32 output for this token.
    """
    if x.dim() != 3 or dt.dim() != 2 or B.dim() != 3:
        raise KernelError(f"ssd_step: x {list(x.shape)}, dt {list(dt.shape)}, B {list(B.shape)} are not "
                          "[b, h, p], [b, h], [b, g, n]")
    _check("ssd_step", _ssd_step_kernel, x, dt, A, B, C, D, state)
    if state.dtype != torch.float32:
        raise KernelError(f"ssd_step: state has dtype {state.dtype}, expected float32 (the recurrence accumulates in it)")
    check_writable("ssd_step", "state", state)
    b, h, p = x.shape
    g, n = B.shape[1:]
    y = torch.empty(b, h, p, dtype=torch.float32, device=x.device)
    # The whole state row (n <= 256 in every Granite config) in one tile; 32 head channels keeps
    # a [32, n] fp32 tile within registers.
    block_p, block_n = block(p, 32), block(n, 1024)
    if n > block_n:
        raise KernelError(f"ssd_step: d_state {n} exceeds the kernel's {block_n}")
    _ssd_step_kernel[(b, h, triton.cdiv(p, block_p))](
        state, x, dt, A, B, C, D, y, h, p, n, h // g,
        *x.stride(), *dt.stride(), *B.stride(), *C.stride(),
        HAS_D=D is not None, BLOCK_P=block_p, BLOCK_N=block_n,
    )
    return y
