"""`mamba_step` on a CPU in C (`mamba_native.c`, built by `kernels/native.py`): one call per layer."""

import ctypes

import torch

from kernels import mamba, native
from kernels.matmul import compute_dtype

_F32 = torch.float32


def available() -> bool:
    return _library() is not None


SIGNATURE = "p" * 15 + "i" * 7 + "fff" + "nnn"  # tome_mamba_step's argument types (native.load)


def _library() -> ctypes.CDLL | None:
    return native.load("mamba_native", tome_mamba_step=SIGNATURE)


def _pointer(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.data_ptr()


def mamba_step(h, step: mamba.MambaStep, conv_state, ssm_state):
    """Same contract as `kernels.mamba.mamba_step`."""
    library = _library()
    b, _, hidden = h.shape
    fixed = None if library is None else static_arguments(step, hidden)
    out = torch.empty(b, 1, hidden)
    scratch = None if fixed is None else torch.empty(b * fixed.scratch_per_row + fixed.scratch_extra)
    call = None if fixed is None else arguments(fixed, h, conv_state, ssm_state, out, scratch)
    if call is None or library.tome_mamba_step(*call):
        return mamba.mamba_step(h, step, conv_state, ssm_state)
    return out


class StaticArguments(list):
    """`tome_mamba_step`'s arguments that depend only on the mixer (None where a call's own values
    go), with the scratch the call needs: `scratch_per_row` floats per batch row, plus `scratch_extra`."""

    scratch_per_row: int
    scratch_extra: int
    shapes: tuple  # (conv_state shape, ssm_state shape) without the batch dimension


def static_arguments(step: mamba.MambaStep, hidden: int) -> StaticArguments | None:
    """The mixer's part of a call, checked once (a decode keeps it for every token), or None when
    the C code does not take this mixer (the PyTorch path then runs, and says what does not fit)."""
    weights_bf16 = native.BF16_FLAG.get(step.in_proj.dtype)
    small = [t for t in (step.in_bias, step.conv, step.conv_bias, step.dt_bias, step.A_log, step.D, step.norm,
                         step.out_bias) if t is not None]
    if (weights_bf16 is None or step.out_proj.dtype != step.in_proj.dtype or step.in_proj.device.type != "cpu"
            or compute_dtype(step.in_proj.dtype, "cpu") != _F32 or step.conv.dim() != 2
            or not all(t.dtype == _F32 and t.is_contiguous() for t in small)
            or not all(t.is_contiguous() for t in (step.in_proj, step.out_proj))):
        return None
    d_inner = step.heads * step.head_dim
    conv_dim, taps = step.conv.shape
    if (conv_dim != d_inner + 2 * step.groups * step.state_size
            or step.in_proj.shape != (d_inner + conv_dim + step.heads, hidden)
            or step.out_proj.shape != (hidden, d_inner)
            or any(t is not None and t.numel() != size for t, size in (
                (step.in_bias, step.in_proj.shape[0]), (step.conv_bias, conv_dim), (step.dt_bias, step.heads),
                (step.A_log, step.heads), (step.D, step.heads), (step.norm, d_inner), (step.out_bias, hidden)))):
        return None
    fixed = StaticArguments([
        None, step.in_proj.data_ptr(), _pointer(step.in_bias), step.conv.data_ptr(), _pointer(step.conv_bias),
        None, step.dt_bias.data_ptr(), step.A_log.data_ptr(), _pointer(step.D), None,
        step.norm.data_ptr(), step.out_proj.data_ptr(), _pointer(step.out_bias), None, None,
        None, hidden, step.heads, step.head_dim, step.groups, step.state_size, taps, step.dt_limits[0],
        min(step.dt_limits[1], torch.finfo(_F32).max), step.eps, weights_bf16, None, None,
    ])
    fixed.scratch_per_row = step.in_proj.shape[0] + conv_dim + step.heads + 2 * d_inner
    fixed.scratch_extra = step.heads
    fixed.shapes = ((conv_dim, taps - 1), (step.heads, step.head_dim, step.state_size))
    return fixed


def arguments(fixed: StaticArguments, h, conv_state, ssm_state, out, scratch) -> list | None:
    """A call's arguments: the mixer's with this token's tensors (h, out: [b, 1, hidden] fp32; scratch
    as `fixed` says), or None when the states do not fit (the PyTorch path then runs)."""
    b, _, hidden = h.shape
    if (h.dtype != _F32 or not h.is_contiguous() or hidden != fixed[16] or out.shape != (b, 1, hidden)
            or conv_state.dtype not in native.BF16_FLAG or ssm_state.dtype != _F32
            or conv_state.shape[1:] != fixed.shapes[0] or ssm_state.shape[1:] != fixed.shapes[1]
            or conv_state.shape[0] != b or ssm_state.shape[0] != b
            or not conv_state.is_contiguous() or not ssm_state.is_contiguous()):
        return None
    call = list(fixed)
    call[0], call[5], call[9], call[13], call[14], call[15] = (
        h.data_ptr(), conv_state.data_ptr(), ssm_state.data_ptr(), out.data_ptr(), scratch.data_ptr(), b)
    call[26], call[27] = native.BF16_FLAG[conv_state.dtype], torch.get_num_threads()
    return call
