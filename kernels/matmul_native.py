"""The decode step's matrix-vector products in C (`matmul_native.c`, built by `kernels/native.py`).

Used by `kernels.matmul.linear` for one to `GEMV_ROWS` activation rows when the library is built;
anything it does not take (fp16 weights, k not a multiple of 8, rows not contiguous) goes to PyTorch.
"""

import ctypes

import torch

from kernels import native

_SUFFIX = {torch.bfloat16: "bf16", torch.float32: "f32"}
_ARGS = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 4 + [ctypes.c_int]


def _library() -> ctypes.CDLL | None:
    library = native.load("matmul_native")
    if library is not None and not hasattr(library, "_typed"):
        for suffix in _SUFFIX.values():
            getattr(library, f"tome_gemv_{suffix}").argtypes = _ARGS
        library._typed = True
    return library


def available() -> bool:
    return _library() is not None


def gemv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
    """x @ weight.T + bias in fp32 for a few rows of x, or None when the C code does not take it."""
    library = _library()
    suffix = _SUFFIX.get(weight.dtype)
    if (library is None or suffix is None or weight.device.type != "cpu" or weight.stride(-1) != 1
            or (bias is not None and bias.dtype != torch.float32)):
        return None
    n, k = weight.shape
    rows = x.reshape(-1, k).float().contiguous()
    out = torch.empty(rows.shape[0], n)
    failed = getattr(library, f"tome_gemv_{suffix}")(
        rows.data_ptr(), weight.data_ptr(), 0 if bias is None else bias.contiguous().data_ptr(), out.data_ptr(),
        rows.shape[0], n, k, weight.stride(0), torch.get_num_threads())
    return None if failed else out.view(*x.shape[:-1], n)
