"""One-query attention over a KV cache: the C kernel and the PyTorch path against the reference."""

import shutil

import pytest
import torch

from kernels import attention, attention_native
from tests.kernels.helpers import close

# A compiler is all the C kernel needs; where one exists (CI, any Linux with build tools) it must build.
needs_native = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                  reason="no C compiler: the C kernels are not built here")
REL = 1e-5  # the keys are exact in fp32 either way; only the order of fp32 sums differs


def _inputs(b, heads, kv_heads, n, d, dtype, seed=0, room=7):
    """q and views of a larger cache (as the growable KV cache hands them out: rows contiguous, strided)."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(b, heads, 1, d, generator=gen).to(dtype)
    store = torch.randn(2, b, kv_heads, n + room, d, generator=gen).to(dtype)
    return q, store[0, :, :, :n], store[1, :, :, :n]


@needs_native
def test_native_kernel_builds_where_a_compiler_exists():
    assert attention_native.available()


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("b, heads, kv_heads, n, d", [
    (1, 12, 4, 3000, 64),   # h-350m's heads; several blocks of keys and a ragged last one
    (1, 6, 2, 1100, 128),   # h-1b's and h-tiny's group of three and head size
    (2, 4, 4, 5, 128),      # no grouping, fewer keys than one group of rows
    (1, 8, 2, 1, 64),       # a single key
    (1, 16, 1, 1029, 32),   # one KV head for sixteen queries
])
def test_native_matches_reference(b, heads, kv_heads, n, d, dtype):
    q, keys, values = _inputs(b, heads, kv_heads, n, d, dtype)
    out, lse = attention_native.decode_attention(q, keys, values, 0.125)
    out_ref, lse_ref = attention.decode_attention_ref(q, keys, values, 0.125)
    assert out.shape == (b, heads, 1, d) and lse.shape == (b, heads, 1) and out.dtype == torch.float32
    close(out, out_ref, REL)
    close(lse, lse_ref, REL)


@pytest.mark.parametrize("decode", [attention.decode_attention, attention_native.decode_attention])
def test_masked_keys_and_a_row_that_sees_none(decode):
    q, keys, values = _inputs(2, 6, 2, 1500, 64, torch.float32, seed=3)
    bias = torch.zeros(2, 1500)
    bias[0, :700] = -torch.inf  # left padding of the first sequence
    bias[1] = -torch.inf        # the second sees no key at all
    out, lse = decode(q, keys, values, 0.5, bias)
    out_ref, lse_ref = attention.decode_attention_ref(q, keys, values, 0.5, bias)
    close(out[0], out_ref[0], 1e-5)
    close(lse[0], lse_ref[0], 1e-5)
    assert torch.equal(out[1], torch.zeros_like(out[1])) and torch.isneginf(lse[1]).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_torch_path_matches_reference(dtype):
    q, keys, values = _inputs(1, 12, 4, 2100, 64, dtype, seed=5)
    out, lse = attention.decode_attention(q, keys, values, 0.125)
    out_ref, lse_ref = attention.decode_attention_ref(q, keys, values, 0.125)
    close(out, out_ref, 1e-5 if dtype == torch.float32 else 2e-2)  # the flash kernel sums probabilities in bf16
    close(lse, lse_ref, 1e-5)


def test_shapes_the_kernel_declines_take_the_torch_path():
    q, keys, values = _inputs(1, 4, 2, 50, 12, torch.float32, seed=6)  # head_dim 12: not a multiple of 16
    out, lse = attention_native.decode_attention(q, keys, values, 0.3)
    out_ref, lse_ref = attention.decode_attention_ref(q, keys, values, 0.3)
    close(out, out_ref, 1e-5)
    close(lse, lse_ref, 1e-5)


def test_mismatched_shapes_never_reach_the_c_code():
    q, keys, values = _inputs(1, 6, 4, 30, 64, torch.float32)  # 6 query heads over 4 KV heads
    with pytest.raises(RuntimeError):
        attention_native.decode_attention(q, keys, values, 0.3)  # the PyTorch path's own error
