"""Every Triton kernel compiles for real NVIDIA GPUs, checked without one.

The interpreter runs kernels as Python, so it accepts code the GPU compiler rejects (a variable
changing its tile shape inside an `if`, a tl.dot tile under 16) and cannot see register spills or
shared memory overflows. Triton ships ptxas, so `tests/kernels/gpu_compile.py` compiles each
launch the launchers make at h-1b / h-tiny shapes down to a cubin, in a fresh process (this
session's Triton library is built for the interpreter).
"""

import ast
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Largest shared memory one block may use, per compute capability.
SHARED_LIMIT = {80: 163 * 1024, 86: 99 * 1024, 89: 99 * 1024, 90: 227 * 1024}
KERNEL_FILES = ["ssd_triton.py", "conv1d_triton.py", "norm_triton.py", "moe_triton.py"]


def jit_kernels() -> set[str]:
    """The names of the `*_kernel` functions defined in the Triton modules (read from the source)."""
    names = set()
    for file in KERNEL_FILES:
        tree = ast.parse((REPO / "kernels" / file).read_text())
        names |= {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.endswith("_kernel")}
    return names


def compile_all(arch: int, dtype: str) -> list[dict]:
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-m", "tests.kernels.gpu_compile", "--arch", str(arch), "--dtype", dtype],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def check(compiled: list[dict], arch: int, spills_allowed: bool) -> None:
    assert {entry["kernel"] for entry in compiled} == jit_kernels()
    for entry in compiled:
        assert entry["shared_bytes"] <= SHARED_LIMIT[arch], entry
        assert entry["registers"] <= 255, entry
        assert spills_allowed or entry["spilled_bytes"] == 0, entry


def test_bf16_kernels_compile_for_a_24_gb_consumer_card_without_spilling():
    # sm_86 (RTX 3090 / A10 class): the tightest shared memory of the targets, 99 KB per block.
    check(compile_all(86, "bf16"), 86, spills_allowed=False)


@pytest.mark.slow
@pytest.mark.parametrize("arch", [80, 90])
def test_bf16_kernels_compile_for_datacenter_cards(arch):
    check(compile_all(arch, "bf16"), arch, spills_allowed=False)


@pytest.mark.slow
def test_fp32_kernels_compile():
    # fp32 models are rare on GPUs: the fp32 tiles may spill a few registers, but must compile.
    check(compile_all(86, "fp32"), 86, spills_allowed=True)
