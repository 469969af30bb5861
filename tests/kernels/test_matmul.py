"""Products with 16-bit weights: the C GEMV of a decode step and `linear`, against fp64 sums."""

import shutil

import pytest
import torch

import kernels
from kernels import matmul, matmul_native
from tests.kernels.helpers import close

needs_native = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                  reason="no C compiler: the C kernels are not built here")


def _exact(x, weight, bias=None):
    out = x.double() @ weight.double().T
    return out if bias is None else out + bias.double()


@needs_native
def test_native_gemv_builds_where_a_compiler_exists():
    assert matmul_native.available()


@needs_native
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("rows, n, k", [(1, 1000, 768), (3, 13, 64), (2, 7, 8), (1, 2, 4096)])
def test_native_gemv_matches_exact_sums(rows, n, k, dtype):
    gen = torch.Generator().manual_seed(n + k)
    x = torch.randn(rows, k, generator=gen)
    weight = torch.randn(n, k, generator=gen).to(dtype)
    bias = torch.randn(n, generator=gen)
    out = matmul_native.gemv(x, weight, bias)
    assert out.dtype == torch.float32 and out.shape == (rows, n)
    close(out, _exact(x, weight, bias), 1e-5)  # x stays fp32: only the fp32 sums round


@needs_native
def test_native_gemv_reads_a_view_with_a_row_stride():
    weight = torch.randn(40, 72).bfloat16()[5:30, :64]  # rows of 64 inside rows of 72
    x = torch.randn(1, 1, 64)
    close(matmul_native.gemv(x, weight, None), _exact(x, weight), 1e-5)


def test_native_gemv_declines_what_it_does_not_take():
    assert matmul_native.gemv(torch.randn(1, 12), torch.randn(5, 12).bfloat16(), None) is None  # k % 8
    assert matmul_native.gemv(torch.randn(1, 16), torch.randn(5, 16).half(), None) is None  # fp16


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_linear_decode_rows_with_bf16_weights(backend):
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(1, 1, 256, generator=gen)
    weight = torch.randn(300, 256, generator=gen).bfloat16()
    with kernels.use_backend(backend):
        out = matmul.linear(x, weight)
    assert out.shape == (1, 1, 300) and out.dtype == matmul.compute_dtype(torch.bfloat16, "cpu")
    # PyTorch's own GEMV rounds x to bf16 first (~2^-9 relative); the C kernel does not
    close(out, _exact(x.view(1, 256), weight).view(1, 1, 300), 1e-5 if backend == "triton" else 1e-2)


@needs_native
def test_a_weight_whose_storage_is_replaced_is_checked_again():
    weight = torch.nn.Parameter(torch.randn(6, 16).bfloat16(), requires_grad=False)
    x = torch.randn(1, 16)
    close(matmul_native.gemv(x, weight, None), _exact(x, weight), 1e-5)
    weight.data = torch.randn(9, 32)  # what module.float() does: same object, new dtype and shape
    x = torch.randn(1, 32)
    close(matmul_native.gemv(x, weight, None), _exact(x, weight), 1e-5)


def test_linear_decode_rows_with_fp32_weights_take_the_same_route():
    weight, x = torch.randn(40, 64), torch.randn(2, 64)
    close(matmul.linear(x, weight), _exact(x, weight), 1e-5)
    with kernels.use_backend("torch"):
        close(matmul.linear(x, weight), _exact(x, weight), 1e-5)


@needs_native
def test_a_mismatched_input_is_left_to_pytorch():
    assert matmul_native.gemv(torch.randn(2, 32), torch.randn(5, 64).bfloat16(), None) is None  # 64 values of x, k 64
