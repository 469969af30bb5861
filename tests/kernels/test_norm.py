"""RMSNorm and gated grouped RMSNorm against their written-out references."""

import pytest
import torch

from kernels.norm import gated_rms_norm, gated_rms_norm_ref, rms_norm, rms_norm_ref
from tests.kernels.helpers import close

# Both normalise in fp32; bf16 outputs may differ by one rounding of the result (2^-8).
REL = {torch.float32: 1e-6, torch.bfloat16: 8e-3}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 1, 8), (2, 5, 96), (3, 7)])
def test_rms_norm(shape, dtype):
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(*shape, generator=gen) * 5).to(dtype)
    weight = torch.randn(shape[-1], generator=gen).to(dtype)
    out = rms_norm(x, weight, 1e-5)
    assert out.dtype == dtype
    close(out, rms_norm_ref(x, weight, 1e-5), REL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("groups", [1, 2, 3])
def test_gated_rms_norm(groups, dtype):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 9, 24, generator=gen) * 3  # the SSM output arrives in fp32
    gate = torch.randn(2, 9, 24, generator=gen).to(dtype)
    weight = torch.randn(24, generator=gen).to(dtype)
    out = gated_rms_norm(x, gate, weight, groups, 1e-5)
    assert out.dtype == dtype
    close(out, gated_rms_norm_ref(x, gate, weight, groups, 1e-5), REL[dtype])


def test_groups_are_normalised_separately():
    # Scaling one group's input must not change the other group's output.
    x = torch.randn(1, 8)
    gate = torch.randn(1, 8)
    weight = torch.ones(8)
    scaled = x.clone()
    scaled[:, :4] *= 100
    a = gated_rms_norm(x, gate, weight, 2, 1e-6)
    b = gated_rms_norm(scaled, gate, weight, 2, 1e-6)
    close(b[:, 4:], a[:, 4:], 1e-6)
    close(b[:, :4], a[:, :4], 1e-4)  # and normalisation makes the scale irrelevant


@pytest.mark.parametrize("shape", [(1, 1, 768), (3, 1536), (2, 1, 40)])
def test_c_norms_of_a_decode_step_match_the_references(shape):
    from kernels import norm_native
    from kernels.norm import add_rms_norm_ref

    gen = torch.Generator().manual_seed(7)
    x, h, gate = (torch.randn(*shape, generator=gen) * 3 for _ in range(3))
    weight = torch.randn(shape[-1], generator=gen)
    close(norm_native.rms_norm(x, weight, 1e-5), rms_norm_ref(x, weight, 1e-5), 1e-6)
    total, normed = norm_native.add_rms_norm(x, h, 0.22, weight, 1e-6)
    total_ref, normed_ref = add_rms_norm_ref(x, h, 0.22, weight, 1e-6)
    close(total, total_ref, 1e-6)
    close(normed, normed_ref, 1e-6)
    for groups in (1, 2, 4):
        out = norm_native.gated_rms_norm(x, gate, weight, groups, 1e-5)
        assert out.dtype == torch.float32
        close(out, gated_rms_norm_ref(x, gate, weight, groups, 1e-5), 1e-6)


def test_c_norms_leave_prefill_and_16_bit_inputs_to_pytorch():
    from kernels import norm_native

    x, weight = torch.randn(20, 64), torch.randn(64)  # more rows than a decode batch
    close(norm_native.rms_norm(x, weight, 1e-5), rms_norm_ref(x, weight, 1e-5), 1e-6)
    x16, w16 = x[:1].bfloat16(), weight.bfloat16()
    out = norm_native.rms_norm(x16, w16, 1e-5)
    assert out.dtype == torch.bfloat16
    close(out, rms_norm_ref(x16, w16, 1e-5), 8e-3)
