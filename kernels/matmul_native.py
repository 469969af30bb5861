"""The decode step's matrix-vector products in C (`matmul_native.c`, built by `kernels/native.py`).

Used by `kernels.matmul.linear` for one to `GEMV_ROWS` activation rows when the library is built;
anything it does not take (fp16 weights, k not a multiple of 8, rows not contiguous) goes to PyTorch.
A decoded token makes 137 of these products on h-350m, so the checks on a weight are made once
and kept with it (`_plans`, dropped with the weight): the Python around a call was 15 us of 19.
"""

import ctypes

import torch

from kernels import native

_plans: dict[int, tuple] = {}  # each weight's plan (or None), kept by `native.kept_plan`


def _library() -> ctypes.CDLL | None:
    return native.load("matmul_native", tome_gemv="pppp" + "iiii" + "nn")


def available() -> bool:
    return _library() is not None


def _plan(weight: torch.Tensor) -> tuple | None:
    """(C function, n, k, row stride, bf16 flag) for this weight, or None when the C code does not take it."""
    library, bf16 = _library(), native.BF16_FLAG.get(weight.dtype)
    if library is None or bf16 is None or weight.device.type != "cpu" or weight.dim() != 2 or weight.stride(1) != 1:
        return None
    return library.tome_gemv, weight.shape[0], weight.shape[1], weight.stride(0), bf16


def gemv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
    """x @ weight.T + bias in fp32 for a few rows of x, or None when the C code does not take it."""
    plan = native.kept_plan(_plans, weight, lambda: [weight], lambda: _plan(weight))
    if plan is None or (bias is not None and bias.dtype != torch.float32):
        return None
    function, n, k, stride, bf16 = plan
    if x.shape[-1] != k or (bias is not None and bias.shape != (n,)):
        return None
    rows = x.reshape(-1, k)
    if rows.dtype != torch.float32 or not rows.is_contiguous():
        rows = rows.float().contiguous()
    out = torch.empty(*x.shape[:-1], n)  # sizes as ints: a torch.Size argument costs PyTorch ~4 us more
    failed = function(rows.data_ptr(), weight.data_ptr(), 0 if bias is None else bias.contiguous().data_ptr(),
                      out.data_ptr(), rows.shape[0], n, k, stride, bf16, torch.get_num_threads())
    return None if failed else out
