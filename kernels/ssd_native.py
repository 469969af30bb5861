"""`ssd_step` on a CPU in C (`ssd_native.c`, built by `kernels/native.py`): one pass over the state."""

import ctypes

import torch

from kernels import native, ssd


def available() -> bool:
    return _library() is not None


def _library() -> ctypes.CDLL | None:
    return native.load("ssd_native", tome_ssd_step="p" * 8 + "i" * 5 + "n")


def ssd_step(state, x, dt, A, B, C, D):
    """Same contract as `kernels.ssd.ssd_step`."""
    ssd._check(x, dt, B, C)
    library = _library()
    b, h, p = x.shape
    g, n = B.shape[1:]
    if (library is None or state.dtype != torch.float32 or not state.is_contiguous() or state.device.type != "cpu"
            or state.shape != (b, h, p, n) or A.shape != (h,) or (D is not None and D.shape != (h,))):
        return ssd.ssd_step(state, x, dt, A, B, C, D)
    x, dt, A, B, C = (t.float().contiguous() for t in (x, dt, A, B, C))
    D = None if D is None else D.float().contiguous()
    y = torch.empty(b, h, p)
    failed = library.tome_ssd_step(state.data_ptr(), x.data_ptr(), dt.data_ptr(), A.data_ptr(), B.data_ptr(),
                                   C.data_ptr(), 0 if D is None else D.data_ptr(), y.data_ptr(), b, h, p, g, n,
                                   torch.get_num_threads())
    return ssd.ssd_step(state, x, dt, A, B, C, D) if failed else y
