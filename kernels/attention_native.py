"""`decode_attention` on a CPU in C (`attention_native.c`, built by `kernels/native.py`).

The scores and the weighted sum of the values are the two C passes; the softmax between them is
PyTorch's, over [b, nh, n] floats (a few percent of the bytes of the keys). Shapes or dtypes the C
code does not take (fp16, head_dim > 512, rows not contiguous) go to the PyTorch path.
"""

import ctypes

import torch

from kernels import attention, native

_BF16 = {torch.bfloat16: 1, torch.float32: 0}  # the C code's flag for the cache's dtype


def available() -> bool:
    return _library() is not None


def _library() -> ctypes.CDLL | None:
    return native.load("attention_native", tome_scores="ppp" + "i" * 8 + "fnn", tome_weighted_sum="ppp" + "i" * 8 + "nn")


def decode_attention(q, keys, values, scale, key_bias=None):
    """Same contract as `kernels.attention.decode_attention`."""
    library = _library()
    bf16 = _BF16.get(keys.dtype)
    b, nh, _, d = q.shape
    nkv, n = keys.shape[1], keys.shape[2]
    if (library is None or bf16 is None or values.dtype != keys.dtype or keys.device.type != "cpu"
            or keys.stride(-1) != 1 or values.stride(-1) != 1 or values.shape != keys.shape
            or keys.shape != (b, nkv, n, d) or q.shape[2] != 1 or nh % nkv):  # (the PyTorch path says what is wrong)
        return attention.decode_attention(q, keys, values, scale, key_bias)
    threads = torch.get_num_threads()
    queries = q.float().contiguous()  # [b, nh, 1, d] is [b, nkv, group, d]: the heads sharing a KV head are adjacent
    scores = torch.empty(b, nh, n)
    failed = library.tome_scores(queries.data_ptr(), keys.data_ptr(), scores.data_ptr(), b, nkv, nh // nkv, n, d,
                                 *keys.stride()[:3], scale, bf16, threads)
    if failed:
        return attention.decode_attention(q, keys, values, scale, key_bias)
    if key_bias is not None:
        scores += key_bias[:, None, :]
    top = scores.amax(dim=-1, keepdim=True)
    if key_bias is not None:  # every key masked: exp(-inf - finite) = 0 below, where -inf - -inf is nan
        top.clamp_(min=torch.finfo(torch.float32).min)
    weights = scores.sub_(top).exp_()  # unnormalised: the sum divides the output once, at the end
    total = weights.sum(dim=-1, keepdim=True)
    out = torch.empty(b, nh, d)
    failed = library.tome_weighted_sum(weights.data_ptr(), values.data_ptr(), out.data_ptr(), b, nkv, nh // nkv, n,
                                       d, *values.stride()[:3], bf16, threads)
    if failed:
        return attention.decode_attention(q, keys, values, scale, key_bias)
    out /= total.clamp(min=1.0)  # the top score adds exp(0) = 1 to a total; only a row seeing no key has 0
    return out.view(b, nh, 1, d), (top + total.log()).view(b, nh, 1)
