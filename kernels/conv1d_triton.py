"""Triton kernels for the causal depthwise conv1d of `conv1d.py` (same contracts, same names).

Each program owns a tile of channels (the contiguous axis of the model's x|B|C) for a tile of
time steps, so loads are coalesced whatever the layout; the k taps are unrolled. Products and
sums run in fp32; the output is rounded once, to x's dtype.
"""

import torch
import triton
import triton.language as tl

from kernels.triton_common import block, check_device, check_dtype, check_shape, check_writable
from kernels.dispatch import KernelError

# 64 channels x 32 steps keeps a tile's fp32 accumulator in registers for any k up to 8.
BLOCK_C, BLOCK_T = 64, 32


@triton.jit
def _silu(v):
    return v / (1.0 + tl.exp(-v))


@triton.jit
def _conv_kernel(
    x_ptr, w_ptr, bias_ptr, state_ptr, y_ptr, new_state_ptr,
    channels, length,
    sx_b, sx_c, sx_t, sw_c, sw_k, ss_b, ss_c, ss_k, sy_b, sy_c, sy_t,
    K: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_STATE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_K: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    t = tl.program_id(2) * BLOCK_T + tl.arange(0, BLOCK_T)
    c_ok = c < channels
    x_base = x_ptr + b * sx_b + c[None, :] * sx_c
    acc = tl.zeros((BLOCK_T, BLOCK_C), dtype=tl.float32)
    for j in tl.static_range(K):
        # Tap j reads input position t - (K-1) + j; negative positions come from the state.
        pos = t - (K - 1) + j
        value = tl.load(x_base + pos[:, None] * sx_t, mask=c_ok[None, :] & (pos[:, None] >= 0)
                        & (pos[:, None] < length), other=0.0).to(tl.float32)
        if HAS_STATE:
            past = tl.load(state_ptr + b * ss_b + c[None, :] * ss_c + (pos[:, None] + K - 1) * ss_k,
                           mask=c_ok[None, :] & (pos[:, None] < 0)
                           & (pos[:, None] + K - 1 >= 0), other=0.0).to(tl.float32)
            value += past
        weight = tl.load(w_ptr + c * sw_c + j * sw_k, mask=c_ok, other=0.0).to(tl.float32)
        acc += value * weight[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + c, mask=c_ok, other=0.0).to(tl.float32)[None, :]
    y = _silu(acc)
    tl.store(y_ptr + b * sy_b + c[None, :] * sy_c + t[:, None] * sy_t, y.to(y_ptr.dtype.element_ty),
             mask=c_ok[None, :] & (t[:, None] < length))

    # The first time tile also writes the new state: the last K-1 of (state, x), i.e. position
    # length - (K-1) + i of x for i < K-1, reaching back into the old state for short segments.
    if tl.program_id(2) == 0:
        slot = tl.arange(0, BLOCK_K)
        src = length - (K - 1) + slot  # position in x of the input that lands in this slot
        slot_ok = c_ok[None, :] & (slot[:, None] < K - 1)
        keep = tl.load(x_base + src[:, None] * sx_t, mask=slot_ok & (src[:, None] >= 0), other=0.0)
        if HAS_STATE:
            old = tl.load(state_ptr + b * ss_b + c[None, :] * ss_c + (src[:, None] + K - 1) * ss_k,
                          mask=slot_ok & (src[:, None] < 0), other=0.0)
            keep = tl.where(src[:, None] < 0, old.to(keep.dtype), keep)
        out = new_state_ptr + b * (channels * (K - 1)) + c[None, :] * (K - 1) + slot[:, None]
        tl.store(out, keep.to(new_state_ptr.dtype.element_ty), mask=slot_ok)


@triton.jit
def _conv_step_kernel(
    x_ptr, w_ptr, bias_ptr, state_ptr, y_ptr,
    channels,
    sx_b, sx_c, sw_c, sw_k, sy_b, sy_c,
    K: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_ok = c < channels
    i = tl.arange(0, BLOCK_K)
    i_ok = i < K - 1
    state = state_ptr + b * (channels * (K - 1)) + c[:, None] * (K - 1) + i[None, :]
    past = tl.load(state, mask=c_ok[:, None] & i_ok[None, :], other=0.0)  # [BLOCK_C, BLOCK_K]
    x = tl.load(x_ptr + b * sx_b + c * sx_c, mask=c_ok, other=0.0)
    w_past = tl.load(w_ptr + c[:, None] * sw_c + i[None, :] * sw_k, mask=c_ok[:, None] & i_ok[None, :], other=0.0)
    w_now = tl.load(w_ptr + c * sw_c + (K - 1) * sw_k, mask=c_ok, other=0.0)
    acc = tl.sum(past.to(tl.float32) * w_past.to(tl.float32), axis=1) + x.to(tl.float32) * w_now.to(tl.float32)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + c, mask=c_ok, other=0.0).to(tl.float32)
    tl.store(y_ptr + b * sy_b + c * sy_c, _silu(acc).to(y_ptr.dtype.element_ty), mask=c_ok)
    # Shift the window left by one and append x: slot i takes slot i+1, the last slot takes x.
    # Every program reads its whole window before writing it, and owns its channels alone.
    nxt = tl.load(state + 1, mask=c_ok[:, None] & (i[None, :] < K - 2), other=0.0)
    shifted = tl.where(i[None, :] == K - 2, x.to(state_ptr.dtype.element_ty)[:, None], nxt)
    tl.store(state, shifted, mask=c_ok[:, None] & i_ok[None, :])


def _check(op: str, kernel, x, weight, bias, state, expected_state) -> None:
    check_device(op, kernel, x=x, weight=weight, bias=bias, state=state)
    for name, tensor in (("x", x), ("weight", weight), ("bias", bias), ("state", state)):
        check_dtype(op, name, tensor)
    if weight.dim() != 2 or weight.shape[0] != x.shape[1] or weight.shape[1] < 2:
        raise KernelError(f"{op}: weight has shape {list(weight.shape)}, expected [{x.shape[1]}, k] with k >= 2")
    check_shape(op, "bias", bias, (x.shape[1],))
    check_shape(op, "state", state, expected_state)


def causal_conv1d(x, weight, bias, state=None):
    """Convolve a segment of tokens continuing from `state` (Triton; contract of `conv1d.causal_conv1d`).

    Args:
        x: [b, c, t] inputs, any strides (the model passes a transposed, channels-contiguous view).
        weight: [c, k] per-channel taps, k >= 2; the last tap multiplies the current token.
        bias: [c] or None.
        state: [b, c, k-1] the k-1 inputs before this segment, or None for zeros.

    Returns:
        y: [b, c, t] silu(conv + bias) in x's dtype, stored channels-contiguous (a
            [b, t, c] tensor transposed) so the model's transpose back to [b, t, c] is free.
        state: [b, c, k-1] the last k-1 inputs, a new contiguous tensor in x's dtype.
    """
    if x.dim() != 3:
        raise KernelError(f"causal_conv1d: x has shape {list(x.shape)}, expected [b, c, t]")
    b, c, t = x.shape
    k = weight.shape[-1]
    _check("causal_conv1d", _conv_kernel, x, weight, bias, state, (b, c, k - 1))
    y = torch.empty(b, t, c, dtype=x.dtype, device=x.device).transpose(1, 2)
    new_state = torch.empty(b, c, k - 1, dtype=x.dtype, device=x.device)
    block_c, block_t = block(c, BLOCK_C), block(t, BLOCK_T)
    grid = (b, triton.cdiv(c, block_c), triton.cdiv(max(t, 1), block_t))
    state_strides = state.stride() if state is not None else (0, 0, 0)
    _conv_kernel[grid](
        x, weight, bias, state, y, new_state, c, t,
        *x.stride(), *weight.stride(), *state_strides, *y.stride(),
        K=k, HAS_BIAS=bias is not None, HAS_STATE=state is not None,
        BLOCK_C=block_c, BLOCK_T=block_t, BLOCK_K=block(k - 1, 64),
    )
    return y, new_state


def causal_conv1d_step(x, weight, bias, state):
    """Convolve one token, shifting it into `state` in place (Triton; contract of `conv1d.causal_conv1d_step`).

    Args:
        x: [b, c] the new token's inputs, any strides.
        weight: [c, k] (k >= 2).  bias: [c] or None.
        state: [b, c, k-1] contiguous; overwritten with the last k-1 inputs (in its own dtype).

    Returns:
        y: [b, c] silu(conv + bias) for this token, in x's dtype.
    """
    if x.dim() != 2:
        raise KernelError(f"causal_conv1d_step: x has shape {list(x.shape)}, expected [b, c]")
    b, c = x.shape
    k = weight.shape[-1]
    _check("causal_conv1d_step", _conv_step_kernel, x, weight, bias, state, (b, c, k - 1))
    check_writable("causal_conv1d_step", "state", state)
    y = torch.empty(b, c, dtype=x.dtype, device=x.device)
    block_c = block(c, 256)
    _conv_step_kernel[(b, triton.cdiv(c, block_c))](
        x, weight, bias, state, y, c, *x.stride(), *weight.stride(), *y.stride(),
        K=k, HAS_BIAS=bias is not None, BLOCK_C=block_c, BLOCK_K=block(k - 1, 64),
    )
    return y
