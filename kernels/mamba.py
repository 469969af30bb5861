"""One decode step of a whole Mamba-2 mixer (the layer of inference/mamba.py), as one op:

    z | xBC | dt = in_proj(h)
    x | B | C   = silu(conv step(xBC))              (the conv state shifts in place)
    y           = SSD step(x, softplus(dt + dt_bias) within the limits, A = -exp(A_log), B, C) + D x
    out         = out_proj(gated_rms_norm(y, z))    (the SSM state advances in place)

Composed here from the single ops (dispatched: Triton kernels on a GPU), so the fast path is those
ops; on a CPU the C kernel in `mamba_native.py` runs the same kernels without returning to Python
between them.
"""

import dataclasses
import math

import torch
import torch.nn.functional as F

import kernels
from kernels.conv1d import causal_conv1d_step_ref
from kernels.matmul import linear
from kernels.norm import gated_rms_norm_ref
from kernels.ssd import ssd_step_ref


@dataclasses.dataclass(frozen=True)
class MambaStep:
    """What one decode step of a mixer reads: its parameters and sizes (built by the mixer per call)."""

    in_proj: torch.Tensor  # [d_inner + conv_dim + heads, hidden]
    in_bias: torch.Tensor | None
    conv: torch.Tensor  # [conv_dim, taps]
    conv_bias: torch.Tensor | None
    dt_bias: torch.Tensor  # [heads]
    A_log: torch.Tensor  # [heads]
    D: torch.Tensor | None  # [heads]
    norm: torch.Tensor  # [d_inner], the gated norm's weight
    out_proj: torch.Tensor  # [hidden, d_inner]
    out_bias: torch.Tensor | None
    heads: int
    head_dim: int
    groups: int
    state_size: int
    dt_limits: tuple[float, float]
    eps: float


def mamba_step_ref(h, step: MambaStep, conv_state, ssm_state):
    """Same contract as `mamba_step`, from the single ops' references."""
    return _composed(h, step, conv_state, ssm_state, causal_conv1d_step_ref, ssd_step_ref, gated_rms_norm_ref)


def mamba_step(h, step: MambaStep, conv_state, ssm_state):
    """The mixer's output for one token, advancing both states in place.

    Args:
        h: [b, 1, hidden] the normed input.  step: the mixer's parameters and sizes.
        conv_state: [b, conv_dim, taps - 1] (model dtype).  ssm_state: [b, heads, head_dim, state] fp32.

    Returns:
        [b, 1, hidden] in linear()'s compute dtype.
    """
    return _composed(h, step, conv_state, ssm_state, kernels.causal_conv1d_step, kernels.ssd_step,
                     kernels.gated_rms_norm)


def time_step(dt, dt_bias, limits: tuple[float, float]):
    """softplus(dt + dt_bias) in fp32, within `limits` (the mixer's prefill uses it too)."""
    dt = F.softplus(dt.float() + dt_bias)  # the add promotes a 16-bit dt_bias itself
    if limits == (0.0, math.inf):
        return dt  # softplus is never below 0: the default limits change nothing
    return dt.clamp(*limits)


def decay_rates(A_log):
    """A = -exp(A_log) in fp32: each head's state decays by exp(dt A) per token."""
    return -torch.exp(A_log.float())


def _composed(h, step, conv_state, ssm_state, conv, ssd, norm):
    b = h.shape[0]
    d_inner, gn = step.heads * step.head_dim, step.groups * step.state_size
    z, xBC, dt = linear(h, step.in_proj, step.in_bias).split([d_inner, d_inner + 2 * gn, step.heads], dim=-1)
    dt = time_step(dt[:, 0], step.dt_bias, step.dt_limits)
    xBC = conv(xBC[:, 0], step.conv, step.conv_bias, conv_state)
    x, B, C = xBC.split([d_inner, gn, gn], dim=-1)
    y = ssd(ssm_state, x.view(b, step.heads, step.head_dim), dt, decay_rates(step.A_log),
            B.view(b, step.groups, step.state_size), C.view(b, step.groups, step.state_size), step.D)
    y = norm(y.view(b, 1, d_inner), z, step.norm, step.groups, step.eps)
    return linear(y, step.out_proj, step.out_bias)
