"""`mamba_step` on a CPU in C (`mamba_native.c`, built by `kernels/native.py`): one call per layer."""

import ctypes

import torch

from kernels import mamba, native
from kernels.matmul import compute_dtype

_F32 = torch.float32
_BF16 = {torch.bfloat16: 1, torch.float32: 0}  # the C code's flags for the weights' and conv state's dtypes


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
    out = torch.empty(h.shape[0], 1, h.shape[-1])
    call = None if library is None else arguments(h, step, conv_state, ssm_state, out)
    if call is None or library.tome_mamba_step(*call[0]):
        return mamba.mamba_step(h, step, conv_state, ssm_state)
    return out


def arguments(h, step: mamba.MambaStep, conv_state, ssm_state, out) -> tuple[list, torch.Tensor] | None:
    """`tome_mamba_step`'s arguments for these tensors (out: [b, 1, hidden] fp32, written by the
    call) and the scratch tensor they point into (keep it until the call returns), or None when
    the C code does not take them (the PyTorch path then runs, and says what does not fit)."""
    weights_bf16 = _BF16.get(step.in_proj.dtype)
    small = [t for t in (step.in_bias, step.conv, step.conv_bias, step.dt_bias, step.A_log, step.D, step.norm,
                         step.out_bias) if t is not None]
    if (weights_bf16 is None or step.out_proj.dtype != step.in_proj.dtype or h.dtype != _F32
            or h.device.type != "cpu" or compute_dtype(step.in_proj.dtype, "cpu") != _F32
            or conv_state.dtype not in _BF16 or ssm_state.dtype != _F32
            or not all(t.dtype == _F32 and t.is_contiguous() for t in small)
            or not all(t.is_contiguous() for t in (h, step.in_proj, step.out_proj, conv_state, ssm_state))):
        return None
    b, _, hidden = h.shape
    d_inner = step.heads * step.head_dim
    conv_dim, taps = step.conv.shape
    if (conv_state.shape != (b, conv_dim, taps - 1) or ssm_state.shape != (b, step.heads, step.head_dim, step.state_size)
            or conv_dim != d_inner + 2 * step.groups * step.state_size
            or step.in_proj.shape != (d_inner + conv_dim + step.heads, hidden) or step.out_proj.shape != (hidden, d_inner)
            or out.shape != (b, 1, hidden) or out.dtype != _F32 or not out.is_contiguous()
            or any(t is not None and t.numel() != size for t, size in (
                (step.in_bias, step.in_proj.shape[0]), (step.conv_bias, conv_dim), (step.dt_bias, step.heads),
                (step.A_log, step.heads), (step.D, step.heads), (step.norm, d_inner), (step.out_bias, hidden)))):
        return None
    scratch = torch.empty(b * (step.in_proj.shape[0] + conv_dim + step.heads + 2 * d_inner) + step.heads)
    return [
        h.data_ptr(), step.in_proj.data_ptr(), _pointer(step.in_bias), step.conv.data_ptr(), _pointer(step.conv_bias),
        conv_state.data_ptr(), step.dt_bias.data_ptr(), step.A_log.data_ptr(), _pointer(step.D), ssm_state.data_ptr(),
        step.norm.data_ptr(), step.out_proj.data_ptr(), _pointer(step.out_bias), out.data_ptr(), scratch.data_ptr(),
        b, hidden, step.heads, step.head_dim, step.groups, step.state_size, taps, step.dt_limits[0],
        min(step.dt_limits[1], torch.finfo(_F32).max), step.eps, weights_bf16, _BF16[conv_state.dtype],
        torch.get_num_threads(),
    ], scratch
