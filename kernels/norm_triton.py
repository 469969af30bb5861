"""Triton kernels for the RMSNorms of `norm.py` (same contracts, same names).

One program normalises a tile of rows, each row (or group of a row) whole in registers, so every
norm is a single pass over its input: read, reduce in fp32, scale, write. `add_rms_norm` also
adds the residual branch in that pass, writing the new residual stream beside the normed rows.
"""

import torch
import triton
import triton.language as tl

from kernels.dispatch import KernelError
from kernels.triton_common import block, check_device, check_dtype, check_shape

# Rows per program fill a tile of 2048 elements (a whole h-1b row, or many narrow rows): 16 fp32
# values per thread at 4 warps, so no register spills; wider rows take one program each.
TILE = 2048
MAX_WIDTH = 65536  # one row must fit a program's registers and shared memory


def _warps(elements: int) -> int:
    """Warps for a tile: 8 once it holds 4096 values (32 per thread at 4 warps would spill)."""
    return 8 if elements >= 4096 else 4


@triton.jit
def _rms_norm_kernel(
    x_ptr, h_ptr, w_ptr, out_ptr, sum_ptr,
    rows, width, multiplier, eps,
    sx_r, sx_c, sh_r, sh_c, so_r, ss_r,
    HAS_RESIDUAL: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr,
):
    r = (tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)).to(tl.int64)
    d = tl.arange(0, BLOCK_D)
    ok = (r[:, None] < rows) & (d[None, :] < width)
    x = tl.load(x_ptr + r[:, None] * sx_r + d[None, :] * sx_c, mask=ok, other=0.0)
    if HAS_RESIDUAL:
        # The residual stream stays in the model dtype: round the sum once, store it, normalise it.
        h = tl.load(h_ptr + r[:, None] * sh_r + d[None, :] * sh_c, mask=ok, other=0.0)
        x = (x.to(tl.float32) + h.to(tl.float32) * multiplier).to(sum_ptr.dtype.element_ty)
        tl.store(sum_ptr + r[:, None] * ss_r + d[None, :], x, mask=ok)
    v = x.to(tl.float32)
    inv_rms = 1.0 / tl.sqrt(tl.sum(v * v, axis=1) / width + eps)
    # As transformers does: the normalised value is rounded to the input dtype before the weight.
    normed = (v * inv_rms[:, None]).to(x.dtype).to(tl.float32)
    w = tl.load(w_ptr + d, mask=d < width, other=0.0).to(tl.float32)
    tl.store(out_ptr + r[:, None] * so_r + d[None, :], (w[None, :] * normed).to(out_ptr.dtype.element_ty), mask=ok)


@triton.jit
def _gated_rms_norm_kernel(
    x_ptr, z_ptr, w_ptr, out_ptr,
    rows, group_size, eps,
    sx_r, sx_c, sz_r, sz_c, so_r,
    BLOCK_R: tl.constexpr, BLOCK_G: tl.constexpr,
):
    r = (tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)).to(tl.int64)
    d = tl.program_id(1) * group_size + tl.arange(0, BLOCK_G)  # channels of group program_id(1)
    ok = (r[:, None] < rows) & (tl.arange(0, BLOCK_G)[None, :] < group_size)
    x = tl.load(x_ptr + r[:, None] * sx_r + d[None, :] * sx_c, mask=ok, other=0.0).to(tl.float32)
    z = tl.load(z_ptr + r[:, None] * sz_r + d[None, :] * sz_c, mask=ok, other=0.0).to(tl.float32)
    v = x * z / (1.0 + tl.exp(-z))  # gate before the norm: x * silu(z)
    inv_rms = 1.0 / tl.sqrt(tl.sum(v * v, axis=1) / group_size + eps)
    w = tl.load(w_ptr + d, mask=tl.arange(0, BLOCK_G) < group_size, other=0.0).to(tl.float32)
    out = w[None, :] * v * inv_rms[:, None]
    tl.store(out_ptr + r[:, None] * so_r + d[None, :], out.to(out_ptr.dtype.element_ty), mask=ok)


def _rows(op: str, name: str, x: torch.Tensor, width: int) -> torch.Tensor:
    """x [..., width] as a [rows, width] view (a copy only when the strides forbid a view)."""
    if x.dim() < 1 or x.shape[-1] != width:
        raise KernelError(f"{op}: {name} has shape {list(x.shape)}, expected [..., {width}]")
    if width > MAX_WIDTH:
        raise KernelError(f"{op}: width {width} exceeds the kernel's {MAX_WIDTH}")
    return x.reshape(-1, width)


def _launch_rms_norm(op, x, h, multiplier, weight, eps):
    check_device(op, _rms_norm_kernel, x=x, h=h, weight=weight)
    for name, tensor in (("x", x), ("h", h), ("weight", weight)):
        check_dtype(op, name, tensor)
    if weight.dim() != 1:
        raise KernelError(f"{op}: weight has shape {list(weight.shape)}, expected [d]")
    width = weight.shape[0]
    x2 = _rows(op, "x", x, width)
    h2 = None if h is None else _rows(op, "h", h, width)
    if h is not None:
        check_shape(op, "h", h, x.shape)
    total = torch.empty(x2.shape, dtype=x.dtype, device=x.device) if h is not None else None
    out = torch.empty(x2.shape, dtype=torch.promote_types(x.dtype, weight.dtype), device=x.device)
    block_d = block(width, MAX_WIDTH)
    block_r = block(x2.shape[0], max(1, TILE // block_d))
    h_strides = h2.stride() if h2 is not None else (0, 0)
    _rms_norm_kernel[(triton.cdiv(x2.shape[0], block_r),)](
        x2, h2, weight, out, total, x2.shape[0], width, float(multiplier), float(eps),
        *x2.stride(), *h_strides, out.stride(0), total.stride(0) if total is not None else 0,
        HAS_RESIDUAL=h is not None, BLOCK_R=block_r, BLOCK_D=block_d, num_warps=_warps(block_r * block_d),
    )
    normed = out.view(x.shape)
    return normed if h is None else (total.view(x.shape), normed)


def rms_norm(x, weight, eps):
    """weight * (x / rms(x)) with the rms in fp32 (Triton; contract of `norm.rms_norm`).

    Args:
        x: [..., d], any strides.  weight: [d].  eps: added to the mean square.

    Returns:
        [..., d] contiguous, in the promoted dtype of x and weight.
    """
    return _launch_rms_norm("rms_norm", x, None, 1.0, weight, eps)


def add_rms_norm(x, h, multiplier, weight, eps):
    """The residual add and the next norm in one pass (Triton; contract of `norm.add_rms_norm`).

    Args:
        x: [..., d] the residual stream.  h: [..., d] the branch output, same shape.
        multiplier: scale of the branch (residual_multiplier).  weight: [d].  eps: as rms_norm.

    Returns:
        total: [..., d] x + h * multiplier, in x's dtype (contiguous).
        normed: [..., d] rms_norm(total, weight, eps).
    """
    return _launch_rms_norm("add_rms_norm", x, h, multiplier, weight, eps)


def gated_rms_norm(x, gate, weight, n_groups, eps):
    """weight * groupnorm_rms(x * silu(gate)) in fp32 (Triton; contract of `norm.gated_rms_norm`).

    Args:
        x: [..., d] the SSM output, any strides.  gate: [..., d] (z), any strides.  weight: [d].
        n_groups: the rms is taken over each of n_groups blocks of d / n_groups channels.
        eps: added to each group's mean square.

    Returns:
        [..., d] contiguous, in weight's dtype.
    """
    op = "gated_rms_norm"
    check_device(op, _gated_rms_norm_kernel, x=x, gate=gate, weight=weight)
    for name, tensor in (("x", x), ("gate", gate), ("weight", weight)):
        check_dtype(op, name, tensor)
    width = weight.shape[-1]
    if weight.dim() != 1 or not isinstance(n_groups, int) or n_groups < 1 or width % n_groups:
        raise KernelError(f"{op}: {list(weight.shape)} channels do not split into {n_groups!r} groups")
    check_shape(op, "gate", gate, x.shape)
    x2, z2 = _rows(op, "x", x, width), _rows(op, "gate", gate, width)
    out = torch.empty(x2.shape, dtype=weight.dtype, device=x.device)
    group_size = width // n_groups
    block_g = block(group_size, MAX_WIDTH)
    block_r = block(x2.shape[0], max(1, TILE // block_g))
    _gated_rms_norm_kernel[(triton.cdiv(x2.shape[0], block_r), n_groups)](
        x2, z2, weight, out, x2.shape[0], group_size, float(eps),
        *x2.stride(), *z2.stride(), out.stride(0),
        BLOCK_R=block_r, BLOCK_G=block_g, num_warps=_warps(block_r * block_g),
    )
    return out.view(x.shape)
