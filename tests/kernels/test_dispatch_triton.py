"""How the dispatcher reaches the Triton kernels, each case in a fresh process (the interpreter
flag and a missing or broken Triton are process-wide states)."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

pytest.importorskip("triton")


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "TOME_KERNELS")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=clean | env,
                          capture_output=True, text=True, timeout=300)


def test_forcing_triton_runs_the_kernels_on_cpu_under_the_interpreter():
    result = run("""
        import torch, kernels
        from kernels import dispatch, norm
        x, w = torch.randn(3, 40), torch.randn(40)
        print(dispatch.implementation("rms_norm", kernels.selected_backend(), "cpu").__module__)
        print(float((kernels.rms_norm(x, w, 1e-5) - norm.rms_norm_ref(x, w, 1e-5)).abs().max()))
    """, TOME_KERNELS="triton", TRITON_INTERPRET="1")
    assert result.returncode == 0, result.stderr
    module, error = result.stdout.split()
    assert module == "kernels.norm_triton" and float(error) < 1e-5


def test_without_the_interpreter_cpu_tensors_take_the_cpu_path_and_a_direct_launch_says_why():
    result = run("""
        import torch, kernels
        from kernels import dispatch, norm_triton
        print(dispatch.implementation("ssd_scan", "triton", "cpu").__module__)  # (rms_norm: its C kernel)
        norm_triton.rms_norm(torch.ones(2, 4), torch.ones(4), 1e-5)
    """, TOME_KERNELS="triton")
    assert result.stdout.split() == ["kernels.ssd"]
    assert "KernelError: rms_norm: the Triton kernel needs CUDA tensors, got cpu; on CPU set TRITON_INTERPRET=1" \
        in result.stderr


def test_a_broken_triton_module_raises_instead_of_falling_back():
    result = run("""
        import sys, torch, kernels
        sys.modules["kernels.triton_common"] = None  # every Triton module now fails to import
        kernels.rms_norm(torch.ones(2, 4), torch.ones(4), 1e-5)
    """, TOME_KERNELS="triton", TRITON_INTERPRET="1")
    assert result.returncode != 0 and "ModuleNotFoundError: import of kernels.triton_common halted" in result.stderr


def test_only_a_missing_triton_falls_back_to_torch():
    result = run("""
        import sys
        sys.modules["triton"] = None  # as on a machine without Triton
        import torch, kernels
        from kernels import dispatch
        print(dispatch.implementation("ssd_scan", "triton", "cuda").__module__)
        print(dispatch.implementation("ssd_scan", "triton", "cpu").__module__)
        print(round(kernels.rms_norm(torch.ones(2, 4), torch.ones(4), 1e-5).sum().item(), 3))
    """, TOME_KERNELS="triton", TRITON_INTERPRET="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["kernels.ssd", "kernels.ssd", "8.0"]
