"""The dispatch point: backend selection, fallbacks, and an import free of Triton and CUDA."""

import subprocess
import sys

import pytest
import torch

import kernels
from kernels import dispatch, ssd


def test_reference_backend_runs_the_reference():
    with kernels.use_backend("reference"):
        assert dispatch.implementation("ssd_scan", kernels.selected_backend(), "cpu") is ssd.ssd_scan_ref
    assert dispatch.implementation("ssd_scan", "torch", "cpu") is ssd.ssd_scan


def test_triton_backend_falls_back_to_torch_on_cpu():
    assert dispatch.implementation("ssd_scan", "triton", "cpu") is ssd.ssd_scan  # (no C kernel for the scan)


def test_public_ops_keep_the_documented_contract():
    assert "Args:" in kernels.ssd_scan.__doc__ and "[b, t, h, p]" in kernels.ssd_scan.__doc__
    x = torch.randn(1, 3, 1, 2)
    with kernels.use_backend("reference"):
        y_ref, _ = kernels.ssd_scan(x, torch.ones(1, 3, 1), -torch.ones(1), x[..., :1], x[..., :1], None, 2)
    y, _ = kernels.ssd_scan(x, torch.ones(1, 3, 1), -torch.ones(1), x[..., :1], x[..., :1], None, 2)
    torch.testing.assert_close(y, y_ref)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(kernels.KernelError, match="'cuda-magic' is not one of triton, torch, reference"):
        with kernels.use_backend("cuda-magic"):
            pass


def test_environment_variable_is_validated():
    code = "import kernels, torch; kernels.rms_norm(torch.ones(2), torch.ones(2), 1e-5)"
    result = subprocess.run(
        [sys.executable, "-c", code], env={"TOME_KERNELS": "fast"}, capture_output=True, text=True
    )
    assert result.returncode != 0 and "TOME_KERNELS='fast' is not one of" in result.stderr


def test_import_needs_neither_triton_nor_cuda():
    code = "import sys, kernels; print('triton' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
