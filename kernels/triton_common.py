"""What every Triton launcher in `kernels/*_triton.py` shares: input checks and a few constants.

Only the `*_triton` modules import this, and the dispatcher imports those lazily, so importing
`kernels` still needs neither Triton nor CUDA.
"""

import torch
import triton
from triton.runtime.interpreter import InterpretedFunction

from kernels.dispatch import KernelError

FLOATS = (torch.float32, torch.bfloat16, torch.float16)

# tl.dot needs every tile dimension to be at least 16 on the GPU compiler (the interpreter would
# accept less, so the tests could not catch a smaller tile).
MIN_DOT = 16


def block(size: int, cap: int, floor: int = 1) -> int:
    """The power-of-two tile covering `size` elements, at least `floor` and at most `cap`."""
    return max(floor, min(cap, triton.next_power_of_2(max(size, 1))))


def dot_precision(dtype: torch.dtype) -> str:
    """How tl.dot treats fp32 operands built from inputs of `dtype`.

    fp32 inputs get IEEE fp32 products, as torch's own CUDA matmuls do by default. For 16-bit
    inputs the operands are exact in TF32 (bf16 has 8 significant bits, TF32 11), so only
    intermediates computed in fp32 (decayed scores, states) are rounded, to 2^-11, still well
    inside the bf16 rounding of the model's activations; ROCm takes IEEE, where TF32 is not
    offered on every architecture.
    """
    if dtype == torch.float32 or torch.version.hip is not None:
        return "ieee"
    return "tf32"


def interpreted(kernel) -> bool:
    """Whether `kernel` was built by Triton's interpreter (TRITON_INTERPRET=1 at import time)."""
    return isinstance(kernel, InterpretedFunction)


def check_device(op: str, kernel, **tensors: torch.Tensor | None) -> torch.device:
    """All given tensors share one device the kernel can run on; returns that device."""
    given = {name: t for name, t in tensors.items() if t is not None}
    devices = {t.device for t in given.values()}
    if len(devices) != 1:
        where = ", ".join(f"{name} on {t.device}" for name, t in given.items())
        raise KernelError(f"{op}: tensors are on different devices ({where})")
    device = devices.pop()
    if device.type != "cuda" and not interpreted(kernel):
        raise KernelError(
            f"{op}: the Triton kernel needs CUDA tensors, got {device}; on CPU set TRITON_INTERPRET=1 "
            "before the kernel module is imported to run it under Triton's interpreter"
        )
    return device


def check_dtype(op: str, name: str, tensor: torch.Tensor | None, allowed=FLOATS) -> None:
    if tensor is not None and tensor.dtype not in allowed:
        names = ", ".join(str(d).removeprefix("torch.") for d in allowed)
        raise KernelError(f"{op}: {name} has dtype {str(tensor.dtype).removeprefix('torch.')}, expected one of {names}")


def check_shape(op: str, name: str, tensor: torch.Tensor | None, shape: tuple[int, ...]) -> None:
    if tensor is not None and tuple(tensor.shape) != tuple(shape):
        raise KernelError(f"{op}: {name} has shape {list(tensor.shape)}, expected {list(shape)}")


def check_writable(op: str, name: str, tensor: torch.Tensor) -> None:
    """A tensor the kernel updates in place: contiguous, so no two elements share memory."""
    if not tensor.is_contiguous():
        raise KernelError(f"{op}: {name} is updated in place and must be contiguous (strides {tensor.stride()})")
