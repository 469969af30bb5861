"""`layer_step` on a CPU in C (`layer_native.c`, built by `kernels/native.py`): one call per layer.

Inputs the C code does not take (biases on the MLP or the attention projections, mixed weight
dtypes, fp16, shapes it cannot index) go to the PyTorch path, which composes the dispatched ops.
"""

import ctypes

import torch

from kernels import attention_native, layer, mamba_native, native
from kernels.mamba import MambaStep
from kernels.matmul import compute_dtype

_F32 = torch.float32
_BF16 = {torch.bfloat16: 1, torch.float32: 0}  # the C code's flag for a weight's or the cache's dtype


def available() -> bool:
    return _library() is not None


def _library() -> ctypes.CDLL | None:
    return native.load("layer_native", tome_mamba_layer="pppppppiffp" + mamba_native.SIGNATURE[1:],
                       tome_attention_layer="p" * 13 + "i" + "p" + "i" * 10 + "fff" + "nnn")


def layer_step(x, step: layer.LayerStep, state):
    """Same contract as `kernels.layer.layer_step`."""
    library = _library()
    weights = step.mlp_in.dtype
    b, _, hidden = x.shape
    width = step.mlp_out.shape[1]
    if (library is None or weights not in _BF16 or compute_dtype(weights, "cpu") != _F32 or x.dtype != _F32
            or x.device.type != "cpu" or not x.is_contiguous() or step.mlp_out.dtype != weights
            or step.mlp_in.shape != (2 * width, hidden) or step.mlp_out.shape != (hidden, width)
            or not all(t.is_contiguous() for t in (step.mlp_in, step.mlp_out))
            or not all(t.dtype == _F32 and t.is_contiguous() and t.shape == (hidden,)
                       for t in (step.input_norm, step.post_norm))):
        return layer.layer_step(x, step, state)
    out = torch.empty(b, 1, hidden)
    if isinstance(step.mixer, MambaStep):
        h, mixed = torch.empty(b, 1, hidden), torch.empty(b, 1, hidden)
        mlp_scratch = torch.empty(b * (2 * hidden + 3 * width))
        call = mamba_native.arguments(h, step.mixer, *state, mixed)
        if call is None or step.mixer.in_proj.dtype != weights or library.tome_mamba_layer(
                x.data_ptr(), out.data_ptr(), step.input_norm.data_ptr(), step.post_norm.data_ptr(),
                step.mlp_in.data_ptr(), step.mlp_out.data_ptr(), mlp_scratch.data_ptr(), width, step.residual,
                step.eps, *call[0]):
            return layer.layer_step(x, step, state)
        return out
    if _attention_layer(library, x, out, step, state, weights):
        return layer.layer_step(x, step, state)
    return out


def _attention_layer(library, x, out, step: layer.LayerStep, slot: layer.KVSlot, weights) -> bool:
    """Run tome_attention_layer; False when it ran, True when the PyTorch path must run instead."""
    mixer = step.mixer
    b, _, hidden = x.shape
    width, d, nkv = step.mlp_out.shape[1], mixer.head_dim, mixer.kv_heads
    projections = (mixer.q_proj, mixer.k_proj, mixer.v_proj, mixer.o_proj)
    cache = slot.keys.dtype
    if (any(bias is not None for bias in mixer.biases) or cache not in _BF16 or mixer.heads % nkv
            or not all(w.dtype == weights and w.is_contiguous() for w in projections)
            or mixer.q_proj.shape != (mixer.heads * d, hidden) or mixer.o_proj.shape != (hidden, mixer.heads * d)
            or mixer.k_proj.shape != (nkv * d, hidden) or mixer.v_proj.shape != (nkv * d, hidden)
            or slot.keys.shape[:2] != (b, nkv) or slot.keys.shape[3] != d):
        return True
    table = attention_native.segment_table([*slot.earlier, (slot.keys, slot.values)])
    if table is None:
        return True
    group = mixer.heads // nkv
    new_key, new_value = slot.keys[:, :, -1], slot.values[:, :, -1]  # [b, nkv, d]: the new position
    scratch = torch.empty(b * (2 * hidden + 2 * nkv * group * d + 2 * nkv * d + nkv * group) + b * (2 * hidden + 3 * width))
    return bool(library.tome_attention_layer(
        x.data_ptr(), out.data_ptr(), step.input_norm.data_ptr(), step.post_norm.data_ptr(), step.mlp_in.data_ptr(),
        step.mlp_out.data_ptr(), *(w.data_ptr() for w in projections), new_key.data_ptr(), new_value.data_ptr(),
        table.data_ptr(), table.shape[0], scratch.data_ptr(), b, hidden, nkv, group, d, width, *new_key.stride()[:2],
        *new_value.stride()[:2], mixer.scale, step.residual, step.eps, _BF16[weights], _BF16[cache],
        torch.get_num_threads()))
