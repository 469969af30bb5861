"""RMSNorm and the gated, grouped RMSNorm of the Mamba-2 mixer.

Both normalise in fp32. `rms_norm` casts back to the input dtype before multiplying by the
weight (as transformers does); `gated_rms_norm` gates with silu(z) BEFORE normalising
(norm_before_gate=False) over groups of d/g channels, and returns the weight's dtype (it feeds
out_proj). `add_rms_norm` is the residual add and the following norm, which the Triton kernels in
`norm_triton.py` do in one pass.
"""

import torch
import torch.nn.functional as F

from kernels.dispatch import KernelError


def rms_norm_ref(x, weight, eps):
    """Same contract as `rms_norm`, written out."""
    x32 = x.float()
    normed = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + eps)
    return weight * normed.to(x.dtype)


def rms_norm(x, weight, eps):
    """weight * (x / rms(x)), with the rms in fp32.

    Args:
        x: [..., d].  weight: [d].  eps: added to the mean square.

    Returns:
        [..., d] in the promoted dtype of x and weight (the model dtype).
    """
    if x.dtype == weight.dtype == torch.float32:  # nothing to round in between: the weight goes inside, one op fewer
        return F.rms_norm(x, (x.shape[-1],), weight, eps)
    return weight * F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


def add_rms_norm_ref(x, h, multiplier, weight, eps):
    """Same contract as `add_rms_norm`, written out as the decoder layer does it."""
    total = x + h * multiplier
    return total, rms_norm_ref(total, weight, eps)


def add_rms_norm(x, h, multiplier, weight, eps):
    """The residual add followed by the next RMSNorm: one pass over x on a GPU (see norm_triton.py).

    Args:
        x: [..., d] the residual stream.  h: [..., d] the branch output.
        multiplier: scale of the branch (residual_multiplier).  weight: [d].  eps: as rms_norm.

    Returns:
        total: [..., d] x + h * multiplier, in x's dtype (the new residual stream).
        normed: [..., d] rms_norm(total, weight, eps).
    """
    total = torch.add(x, h, alpha=multiplier)  # one op; a fused multiply-add may round once where the ref rounds twice
    return total, rms_norm(total, weight, eps)


def _groups(x: torch.Tensor, n_groups: int) -> torch.Tensor:
    d = x.shape[-1]
    if d % n_groups:
        raise KernelError(f"gated_rms_norm: {d} channels do not split into {n_groups} groups")
    return x.reshape(*x.shape[:-1], n_groups, d // n_groups)


def gated_rms_norm_ref(x, gate, weight, n_groups, eps):
    """Same contract as `gated_rms_norm`, written out."""
    gated = _groups(x.float() * F.silu(gate.float()), n_groups)
    normed = gated * torch.rsqrt(gated.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (weight.float() * normed.reshape(x.shape)).to(weight.dtype)


def gated_rms_norm(x, gate, weight, n_groups, eps):
    """weight * groupnorm_rms(x * silu(gate)), computed in fp32.

    Args:
        x: [..., d] the SSM output.  gate: [..., d] (z).  weight: [d].
        n_groups: the rms is taken over each of n_groups blocks of d / n_groups channels.
        eps: added to each group's mean square.

    Returns:
        [..., d] in weight's dtype.
    """
    gated = F.silu(gate.float()).mul_(x)
    if n_groups == 1 and weight.dtype == torch.float32:  # the weight goes inside the norm: one op fewer
        return F.rms_norm(gated, (gated.shape[-1],), weight, eps)
    gated = _groups(gated, n_groups)
    normed = F.rms_norm(gated, (gated.shape[-1],), eps=eps).reshape(x.shape)
    return (normed * weight).to(weight.dtype)  # the product promotes a 16-bit weight itself
