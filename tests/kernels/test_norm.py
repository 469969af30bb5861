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
