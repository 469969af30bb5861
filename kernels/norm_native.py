"""The norms of a decode step in C (`norm_native.c`, built by `kernels/native.py`).

Only fp32 inputs of up to ROWS rows go to C (a decode step on a CPU, where a bf16 model keeps
activations and norm weights in fp32); anything else — prefill, 16-bit tensors — takes the
PyTorch path, whose multi-threaded kernels suit many rows.
"""

import ctypes

import torch

from kernels import native, norm

ROWS = 16  # up to this many rows per call (a decode batch)
_F32 = torch.float32


def available() -> bool:
    return _library() is not None


def _library() -> ctypes.CDLL | None:
    return native.load("norm_native", tome_rms_norm="ppp" + "iif", tome_add_rms_norm="ppfppp" + "iif",
                       tome_gated_rms_norm="pppp" + "iiif")


def _fits(*tensors: torch.Tensor) -> bool:
    """fp32, contiguous, few rows on a CPU, and every tensor ending in the same size (the weight's)."""
    first = tensors[0]
    return (first.device.type == "cpu" and first.numel() <= ROWS * first.shape[-1]
            and all(t.dtype == _F32 and t.is_contiguous() and t.shape[-1] == first.shape[-1] for t in tensors))


def rms_norm(x, weight, eps):
    """Same contract as `kernels.norm.rms_norm`."""
    library = _library()
    if library is None or not _fits(x, weight):
        return norm.rms_norm(x, weight, eps)
    out = torch.empty_like(x)
    library.tome_rms_norm(x.data_ptr(), weight.data_ptr(), out.data_ptr(), x.numel() // x.shape[-1], x.shape[-1], eps)
    return out


def add_rms_norm(x, h, multiplier, weight, eps):
    """Same contract as `kernels.norm.add_rms_norm`."""
    library = _library()
    if library is None or not _fits(x, h, weight) or h.shape != x.shape:
        return norm.add_rms_norm(x, h, multiplier, weight, eps)
    total, out = torch.empty_like(x), torch.empty_like(x)
    library.tome_add_rms_norm(x.data_ptr(), h.data_ptr(), multiplier, weight.data_ptr(), total.data_ptr(),
                              out.data_ptr(), x.numel() // x.shape[-1], x.shape[-1], eps)
    return total, out


def gated_rms_norm(x, gate, weight, n_groups, eps):
    """Same contract as `kernels.norm.gated_rms_norm`."""
    library = _library()
    if library is None or not _fits(x, gate, weight) or gate.shape != x.shape or x.shape[-1] % n_groups:
        return norm.gated_rms_norm(x, gate, weight, n_groups, eps)
    out = torch.empty_like(x)
    library.tome_gated_rms_norm(x.data_ptr(), gate.data_ptr(), weight.data_ptr(), out.data_ptr(),
                                x.numel() // x.shape[-1], x.shape[-1], n_groups, eps)
    return out
