"""Attention of one query position over a long run of cached keys: the decode step's attention.

A decoded token's query meets every key so far, so there is nothing causal to mask and the work
is two reads, one of the keys and one of the values. Returns the output and the log-sum-exp of
the scores, so the caller can merge parts of a segmented cache exactly (see inference/attention.py).
The query heads sharing a KV head (grouped-query attention) are taken together, never by copying
the keys. A fast path that reads the cache at memory speed on a CPU is in `attention_native.py`.
`merge` joins the results of parts of a cache held in segments into attention over all of them.
"""

import torch


def merge(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Softmax attention over the union of the parts' keys, from each part's (out, lse)."""
    if len(parts) == 1:
        return parts[0][0]
    # exp(lse_i - lse) for every part at once; then one fused multiply-add per part (a decoded
    # token merges two parts in each attention layer: 7 small ops instead of 20).
    weights = torch.stack([part_lse for _, part_lse in parts]).softmax(dim=0)[..., None]  # [parts, b, nh, t, 1]
    (first, _), *rest = parts
    out = first.float() * weights[0]
    for (part_out, _), weight in zip(rest, weights[1:]):
        out.addcmul_(part_out, weight)  # the op promotes a bf16 part itself
    return out.to(first.dtype)


def decode_attention_ref(q, keys, values, scale, key_bias=None):
    """Same contract as `decode_attention`, written out in fp32."""
    group = q.shape[1] // keys.shape[1]
    keys, values = (x.float().repeat_interleave(group, dim=1) for x in (keys, values))
    scores = (q.float() @ keys.transpose(-1, -2)) * scale  # [b, nh, 1, n]
    if key_bias is not None:
        scores = scores + key_bias.float()[:, None, None, :]
    lse = scores.logsumexp(dim=-1)
    weights = (scores - lse[..., None]).exp().nan_to_num(0.0)  # a query seeing no key: weights 0, lse -inf
    return weights @ values, lse


def decode_attention(q, keys, values, scale, key_bias=None):
    """softmax(scale * q K^T + key_bias) V for one query position, with its log-sum-exp.

    Args:
        q: [b, nh, 1, d] in the keys' dtype.
        keys, values: [b, nkv, n, d], nh a multiple of nkv (each row of d contiguous).
        scale: multiplies the scores.  key_bias: [b, n] added to the scores (-inf hides a key), or None.

    Returns:
        out: [b, nh, 1, d] fp32 (0 for a query that sees no key).
        lse: [b, nh, 1] fp32 log-sum-exp of the scores (-inf when no key is seen).
    """
    if not flash_available(q):
        return decode_attention_ref(q, keys, values, scale, key_bias)
    out, lse = flash_all(q, keys, values, scale, key_bias)
    return out.float(), lse


def flash_all(q, keys, values, scale, key_bias=None):
    """Every one of t queries [b, nh, t, d] to every key of one part, by PyTorch's CPU flash kernel
    (no causal mask): (out [b, nh, t, d] in q's dtype, lse [b, nh, t]); -inf lse where no key is seen."""
    b, nh, t, d = q.shape
    nkv = keys.shape[1]
    folded = q.reshape(b, nkv, nh // nkv * t, d)  # the query heads sharing a KV head, stacked as rows
    mask = None if key_bias is None else key_bias[:, None, None, :]
    out, lse = flash(folded, keys, values, False, mask, scale)
    out, lse = out.reshape(b, nh, t, d), lse.reshape(b, nh, t)
    if key_bias is not None:  # the kernel reports lse = 0 for a row whose keys are all masked
        lse = lse.masked_fill(torch.isinf(key_bias).all(dim=-1)[:, None, None], -torch.inf)
    return out, lse


def flash(q, k, v, causal, mask, scale):
    """PyTorch's CPU flash-attention kernel: (out, lse)."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, causal, attn_mask=mask, scale=scale)


def flash_available(q: torch.Tensor) -> bool:
    return q.device.type == "cpu" and hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu")
