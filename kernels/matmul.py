"""Matrix products for weights stored in a lower precision than the CPU can multiply quickly.

A bf16 (or fp16) model keeps its weights in 2 bytes, but x86 CPUs without AVX-512 BF16 or AMX
(AMD Zen 2/3, most Intel client parts) have no fast 16-bit matmul: PyTorch then runs a scalar-ish
kernel, measured 6x slower than fp32 on this machine's prefill shapes. On such CPUs activations
stay in fp32 and each product picks the cheaper of two ways to meet a 16-bit weight:

- many rows (prefill): upcast the weight to fp32 and run the fp32 GEMM; the upcast costs one pass
  over the weight, a few percent of a GEMM of 4+ rows;
- one to three rows (decode): a 16-bit GEMV reads half the bytes, and a GEMV is bound by reading
  the weight (measured crossover: 4 rows on h-350m's in_proj). PyTorch's own reads ~10 GB/s per
  core here, converting as it goes; the C kernel in `matmul_native.py` reads at memory speed and
  keeps x in fp32 (it runs under the default backend when it could be built, see dispatch.py; it
  also takes an fp32 model's decode products, where PyTorch's fp32 GEMV is no faster).

Where 16-bit matmuls are fast (GPUs, CPUs with AVX-512 BF16 / AMX) everything runs in the model's
dtype, as before.
"""

import functools

import torch
import torch.nn.functional as F

from kernels import matmul_native
from kernels.dispatch import native_enabled

GEMV_ROWS = 3  # up to this many rows the native 16-bit product beats upcasting the weight


@functools.cache
def _native_cpu(dtype: torch.dtype) -> bool:
    """Whether this CPU multiplies `dtype` through oneDNN's fast kernels (what PyTorch itself checks)."""
    probes = {torch.bfloat16: "_is_mkldnn_bf16_supported", torch.float16: "_is_mkldnn_fp16_supported"}
    probe = getattr(torch.ops.mkldnn, probes.get(dtype, ""), None)
    return dtype not in probes or (probe is not None and bool(probe()))


def compute_dtype(dtype: torch.dtype, device: torch.device | str) -> torch.dtype:
    """The dtype activations and products use for weights stored in `dtype` on `device`."""
    return _compute_dtype(dtype, torch.device(device).type)


@functools.cache  # asked on every product: a decoded token makes 137 on h-350m
def _compute_dtype(dtype: torch.dtype, device_type: str) -> torch.dtype:
    if device_type != "cpu" or _native_cpu(dtype):
        return dtype
    return torch.float32


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ weight.T + bias in the compute dtype of the wider of x and weight.

    Args:
        x: [..., k] activations (any float dtype).  weight: [n, k].  bias: [n] or None.

    Returns:
        [..., n] in compute_dtype(promoted dtype of x and weight).
    """
    dtype = _compute_dtype(torch.promote_types(x.dtype, weight.dtype), x.device.type)
    few_rows = x.numel() <= GEMV_ROWS * x.shape[-1]
    if few_rows and dtype == torch.float32 and native_enabled(x.device.type):  # a CPU decode step, bf16 or fp32 weights
        out = matmul_native.gemv(x, weight, None if bias is None else bias.to(dtype))
        if out is not None:
            return out
    if weight.dtype == dtype:
        return F.linear(x.to(dtype), weight, None if bias is None else bias.to(dtype))
    if few_rows:
        return F.linear(x.to(weight.dtype), weight, None if bias is None else bias.to(weight.dtype)).to(dtype)
    return F.linear(x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype))
