"""The Triton RMSNorms (plain, fused with the residual add, gated and grouped), under the interpreter."""

import pytest
import torch

import kernels
from kernels import dispatch
from kernels.norm import add_rms_norm, add_rms_norm_ref, gated_rms_norm_ref, rms_norm_ref
from tests.kernels.helpers import close
from tests.kernels.triton_interpreter import interpreter

# fp32: the same fp32 reduction in another order. bf16: each rounding to bf16 may differ by one
# ulp (2^-7 of the value), as the interpreter truncates where the reference rounds to nearest.
# rms_norm rounds twice (the normed value to the input dtype, then the product with the weight);
# the gated norm and the residual sum round once.
TWO_ROUNDINGS = {torch.float32: 1e-6, torch.bfloat16: 2 * 2**-7}
ONE_ROUNDING = {torch.float32: 1e-6, torch.bfloat16: 2**-7}


@pytest.fixture(scope="module")
def norm():
    with interpreter() as modules:
        yield modules.norm


def randn(*shape, dtype=torch.float32, scale=1.0, seed=0):
    return (torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 1, 8), (2, 5, 96), (3, 7), (300, 24)], ids=str)
def test_rms_norm(norm, shape, dtype):
    x, weight = randn(*shape, dtype=dtype, scale=5), randn(shape[-1], dtype=dtype, seed=1)
    out = norm.rms_norm(x, weight, 1e-5)
    assert out.dtype == dtype and out.shape == x.shape
    close(out, rms_norm_ref(x, weight, 1e-5), TWO_ROUNDINGS[dtype])


def test_rms_norm_of_a_strided_view_with_a_wider_weight_dtype(norm):
    x = randn(6, 40, scale=3, dtype=torch.bfloat16)[:, ::2]  # column stride 2
    weight = randn(20, seed=1)  # fp32 weight: the result takes the promoted dtype
    out = norm.rms_norm(x, weight, 1e-6)
    assert out.dtype == torch.float32
    close(out, rms_norm_ref(x, weight, 1e-6), ONE_ROUNDING[torch.bfloat16])  # only normed is rounded


def test_fused_residual_torch_path_matches_its_reference():
    x, h, weight = randn(2, 7, 48), randn(2, 7, 48, seed=1), randn(48, seed=2)
    total, normed = add_rms_norm(x, h, 0.22, weight, 1e-5)
    total_ref, normed_ref = add_rms_norm_ref(x, h, 0.22, weight, 1e-5)
    close(total, total_ref, ONE_ROUNDING[torch.float32])  # x + h * m as one fused multiply-add: one rounding fewer
    close(normed, normed_ref, TWO_ROUNDINGS[torch.float32])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_residual_add(norm, dtype):
    x, h = randn(3, 5, 72, dtype=dtype, scale=4), randn(3, 5, 72, dtype=dtype, seed=1)
    weight = randn(72, dtype=dtype, seed=2)
    total, normed = norm.add_rms_norm(x, h.transpose(0, 1).contiguous().transpose(0, 1), 0.246, weight, 1e-5)
    # The kernel rounds x + h * m once; the reference rounds h * m first (bf16: one ulp apart).
    expected_total = (x.float() + h.float() * 0.246).to(dtype)
    close(total, expected_total, ONE_ROUNDING[dtype])
    assert total.dtype == normed.dtype == dtype
    close(normed, rms_norm_ref(total, weight, 1e-5), TWO_ROUNDINGS[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("groups", [1, 2, 3])
def test_gated_rms_norm(norm, groups, dtype):
    x = randn(2, 9, 24, scale=3)  # the SSM output arrives in fp32
    gate = randn(2, 9, 24, dtype=dtype, seed=1)
    weight = randn(24, dtype=dtype, seed=2)
    out = norm.gated_rms_norm(x, gate, weight, groups, 1e-5)
    assert out.dtype == dtype and out.shape == x.shape
    close(out, gated_rms_norm_ref(x, gate, weight, groups, 1e-5), ONE_ROUNDING[dtype])


def test_gated_groups_are_normalised_separately_on_strided_gates(norm):
    zxbc = randn(4, 3, 40, seed=3)
    x, gate = randn(4, 3, 16), zxbc[..., 4:20]  # the gate is a slice of a fused projection
    scaled = x.clone()
    scaled[..., :8] *= 100
    a = norm.gated_rms_norm(x, gate, torch.ones(16), 2, 1e-6)
    b = norm.gated_rms_norm(scaled, gate, torch.ones(16), 2, 1e-6)
    close(b[..., 8:], a[..., 8:], 1e-6)
    close(b[..., :8], a[..., :8], 1e-4)  # and normalisation makes the scale irrelevant
    close(a, gated_rms_norm_ref(x, gate.contiguous(), torch.ones(16), 2, 1e-6), 1e-6)


def test_dispatch_runs_the_kernels_under_the_interpreter(norm):
    with kernels.use_backend("triton"):
        for op in ("rms_norm", "add_rms_norm", "gated_rms_norm"):
            assert dispatch.implementation(op, kernels.selected_backend(), "cpu") is getattr(norm, op)


@pytest.mark.parametrize("case", ["width", "groups", "gate shape", "residual shape", "dtype"])
def test_bad_inputs_are_clear_errors(norm, case):
    x, weight = randn(2, 12), randn(12)
    with pytest.raises(kernels.KernelError, match=r"^(add_|gated_)?rms_norm: "):
        if case == "width":
            norm.rms_norm(x, weight[:10], 1e-5)
        elif case == "groups":
            norm.gated_rms_norm(x, x, weight, 5, 1e-5)
        elif case == "gate shape":
            norm.gated_rms_norm(x, x[:1], weight, 2, 1e-5)
        elif case == "residual shape":
            norm.add_rms_norm(x, x[:1], 1.0, weight, 1e-5)
        else:
            norm.rms_norm(x.to(torch.int32), weight, 1e-5)
