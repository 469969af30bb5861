"""Routed-only MoE dispatch against computing every expert densely."""

import pytest
import torch

from kernels.moe import moe_experts, moe_experts_ref
from tests.kernels.helpers import close

# fp32: the same products in another summation order. bf16: index_add accumulates in bf16.
REL = {torch.float32: 1e-5, torch.bfloat16: 2e-2}


def routed(T, H, E, I, k, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, H, generator=gen).to(dtype)
    logits = torch.randn(T, E, generator=gen)
    top, index = logits.topk(k, dim=-1)
    weights = top.softmax(dim=-1).to(dtype)
    w_in = (torch.randn(E, 2 * I, H, generator=gen) / H**0.5).to(dtype)
    w_out = (torch.randn(E, H, I, generator=gen) / I**0.5).to(dtype)
    return x, index, weights, w_in, w_out


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("T,H,E,I,k", [(1, 16, 4, 8, 2), (33, 24, 8, 12, 3), (5, 8, 16, 4, 1)])
def test_matches_dense_reference(T, H, E, I, k, dtype):
    x, index, weights, w_in, w_out = routed(T, H, E, I, k, dtype)
    out = moe_experts(x, index, weights, w_in, w_out)
    assert out.dtype == dtype and out.shape == (T, H)
    close(out, moe_experts_ref(x, index, weights, w_in, w_out), REL[dtype])


def test_only_routed_experts_run():
    # Experts nobody was routed to hold nan: any computation with them would poison the output.
    x, index, weights, w_in, w_out = routed(6, 8, 6, 4, 2, torch.float32)
    index = index % 3  # only experts 0..2 are used
    index[:, 1] = (index[:, 0] + 1) % 3
    w_in[3:] = float("nan")
    w_out[3:] = float("nan")
    out = moe_experts(x, index, weights, w_in, w_out)
    assert torch.isfinite(out).all()
    w_in[3:] = 0
    w_out[3:] = 0
    close(out, moe_experts_ref(x, index, weights, w_in, w_out), REL[torch.float32])
