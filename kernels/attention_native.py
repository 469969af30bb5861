"""`decode_attention` on a CPU in C (`attention_native.c`, built by `kernels/native.py`): one call,
the softmax included. Shapes or dtypes the C code does not take (fp16, head_dim > 512, rows not
contiguous) go to the PyTorch path.
"""

import ctypes

import torch

from kernels import attention, native



def available() -> bool:
    return _library() is not None


def _library() -> ctypes.CDLL | None:
    return native.load("attention_native", tome_decode_attention="ppipppiiiifnn")


def segment_table(segments) -> torch.Tensor | None:
    """The C code's table of (keys, values, n, the keys' strides, the values' strides) per (keys,
    values) segment [b, nkv, n, d], or None when one does not fit it (then the PyTorch path runs)."""
    first_k = segments[0][0]
    rows = []
    for keys, values in segments:
        if (keys.dim() != 4 or keys.dtype not in native.BF16_FLAG or keys.dtype != first_k.dtype
                or values.dtype != keys.dtype or keys.device.type != "cpu" or values.device.type != "cpu"
                or keys.shape != values.shape
                or keys.shape[:2] != first_k.shape[:2] or keys.shape[3] != first_k.shape[3]
                or keys.stride(-1) != 1 or values.stride(-1) != 1):
            return None
        rows.append([keys.data_ptr(), values.data_ptr(), keys.shape[2], *keys.stride()[:3], *values.stride()[:3]])
    return torch.tensor(rows, dtype=torch.int64)


def decode_attention(q, keys, values, scale, key_bias=None):
    """Same contract as `kernels.attention.decode_attention`."""
    library = _library()
    b, nh, _, d = q.shape
    nkv, n = keys.shape[1], keys.shape[2]
    table = segment_table([(keys, values)]) if library is not None else None
    if (table is None or keys.shape != (b, nkv, n, d) or q.shape[2] != 1 or nh % nkv
            or (key_bias is not None and tuple(key_bias.shape) != (b, n))):  # (the PyTorch path says what is wrong)
        return attention.decode_attention(q, keys, values, scale, key_bias)
    queries = q.float().contiguous()  # [b, nh, 1, d] is [b, nkv, group, d]: the heads sharing a KV head are adjacent
    bias = None if key_bias is None else key_bias.float().contiguous()
    out, lse = torch.empty(b, nh, 1, d), torch.empty(b, nh, 1)
    failed = library.tome_decode_attention(queries.data_ptr(), table.data_ptr(), 1,
                                           0 if bias is None else bias.data_ptr(), out.data_ptr(), lse.data_ptr(),
                                           b, nkv, nh // nkv, d, scale, native.BF16_FLAG[keys.dtype],
                                           torch.get_num_threads())
    return attention.decode_attention(q, keys, values, scale, key_bias) if failed else (out, lse)
