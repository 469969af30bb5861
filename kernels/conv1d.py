"""Causal depthwise conv1d over time, with bias and SiLU, as Mamba-2 applies it to x|B|C.

    y[:, ch, i] = silu(bias[ch] + sum_j weight[ch, j] * u[:, ch, i - (k-1) + j])

where u is the input preceded by the previous k-1 inputs (the conv state; zeros at the start of a
sequence). `causal_conv1d` runs a whole segment and returns the state after it;
`causal_conv1d_step` advances one token and updates the state in place. A Triton kernel goes in
`conv1d_triton.py`.

Shapes (b batch, c channels, t tokens, k kernel width):
    x [b, c, t]   weight [c, k]   bias [c] or None   state [b, c, k-1]
"""

import torch
import torch.nn.functional as F

from kernels.dispatch import KernelError


def _check(x: torch.Tensor, weight: torch.Tensor, state: torch.Tensor | None) -> None:
    b, c = x.shape[:2]
    if weight.shape[0] != c or (state is not None and state.shape != (b, c, weight.shape[1] - 1)):
        shown = None if state is None else tuple(state.shape)
        raise KernelError(
            f"causal_conv1d: x {tuple(x.shape)}, weight {tuple(weight.shape)} and state {shown} disagree"
        )


def _previous(x: torch.Tensor, weight: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
    _check(x, weight, state)
    b, c = x.shape[:2]
    if state is None:
        return x.new_zeros(b, c, weight.shape[1] - 1)
    return state.to(x.dtype)


def causal_conv1d_ref(x, weight, bias, state=None):
    """Explicit sum over the kernel taps: same contract as `causal_conv1d`."""
    t, k = x.shape[-1], weight.shape[-1]
    u = torch.cat([_previous(x, weight, state), x], dim=-1)  # [b, c, k-1+t]
    y = sum(weight[:, j, None] * u[:, :, j : j + t] for j in range(k))
    if bias is not None:
        y = y + bias[:, None]
    return F.silu(y), u[:, :, t:].clone()


def causal_conv1d(x, weight, bias, state=None):
    """Convolve a segment of tokens continuing from `state`.

    Args:
        x: [b, c, t] inputs (any strides).
        weight: [c, k] per-channel taps; the last tap multiplies the current token.
        bias: [c] or None.
        state: [b, c, k-1] the k-1 inputs before this segment, or None for zeros.

    Returns:
        y: [b, c, t] silu(conv + bias), in x's dtype.
        state: [b, c, k-1] the last k-1 inputs (a new tensor; the argument is not modified).
    """
    t, c = x.shape[-1], x.shape[1]
    u = torch.cat([_previous(x, weight, state), x], dim=-1)
    y = F.conv1d(u, weight[:, None, :], bias, groups=c)
    return F.silu(y), u[:, :, t:].clone()


def causal_conv1d_step_ref(x, weight, bias, state):
    """One token through `causal_conv1d_ref`: same contract as `causal_conv1d_step`."""
    y, new_state = causal_conv1d_ref(x[:, :, None], weight, bias, state)
    state.copy_(new_state)
    return y[:, :, 0]


def causal_conv1d_step(x, weight, bias, state):
    """Convolve one token, shifting it into `state` in place.

    Args:
        x: [b, c] the new token's inputs.
        weight: [c, k].  bias: [c] or None. Either may be in a narrower dtype than x; the products
            and the sum run in x's dtype.
        state: [b, c, k-1] the previous k-1 inputs; overwritten with the last k-1 after this token.

    Returns:
        y: [b, c] silu(conv + bias) for this token, in x's dtype.
    """
    b, c = x.shape
    k = weight.shape[1]
    _check(x, weight, state)  # reads x's first two sizes only
    # The window time-major, [b, k, c]: every op below then runs along contiguous channels; in
    # the state's own [b, c, k-1] layout each one loops over rows of 3 (2x slower on h-350m).
    window = x.new_empty(b, k, c)
    window[:, : k - 1].copy_(state.transpose(1, 2))
    window[:, k - 1].copy_(x)
    y = (window * weight.t()).sum(dim=1)
    state.copy_(window[:, 1:].transpose(1, 2))
    if bias is not None:
        y += bias
    return F.silu(y, inplace=True)
