"""`causal_conv1d_step` on a CPU in C (`conv1d_native.c`, built by `kernels/native.py`).

Takes fp32 inputs, taps and bias with a bf16 or fp32 state (a decode step on a CPU); anything
else goes to the PyTorch path.
"""

import ctypes

import torch

from kernels import conv1d, native



def available() -> bool:
    return _library() is not None


def _library() -> ctypes.CDLL | None:
    return native.load("conv1d_native", tome_conv_step="ppppp" + "iii" + "n")


def causal_conv1d_step(x, weight, bias, state):
    """Same contract as `kernels.conv1d.causal_conv1d_step`."""
    library = _library()
    bf16 = native.BF16_FLAG.get(state.dtype)
    fp32 = [t for t in (x, weight, bias) if t is not None]
    if (library is None or bf16 is None or x.device.type != "cpu"
            or not all(t.dtype == torch.float32 and t.is_contiguous() for t in fp32) or not state.is_contiguous()):
        return conv1d.causal_conv1d_step(x, weight, bias, state)
    conv1d._check(x, weight, state)
    b, c = x.shape
    y = torch.empty(b, c)
    failed = library.tome_conv_step(x.data_ptr(), weight.data_ptr(), 0 if bias is None else bias.data_ptr(),
                                    state.data_ptr(), y.data_ptr(), b, c, weight.shape[1], bf16)
    return conv1d.causal_conv1d_step(x, weight, bias, state) if failed else y
