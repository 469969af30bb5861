"""`python -m kernels.bench` keeps working without a GPU: under the interpreter and without it."""

import os
import subprocess
import sys

import pytest

from kernels import dispatch
from tests.conftest import REPO

# Every op with a Triton kernel (decode_attention has none: on a GPU the PyTorch path serves it).
OPS = sorted(op for op, module in dispatch.OPS.items() if (REPO / "kernels" / f"{module}_triton.py").is_file())


def bench(*args: str, interpret: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    return subprocess.run([sys.executable, "-m", "kernels.bench", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_without_cuda_or_interpreter_it_says_so_and_exits_cleanly():
    result = bench(interpret=False)
    assert result.returncode == 0, result.stderr
    assert "no CUDA device" in result.stdout and "TRITON_INTERPRET=1 python -m kernels.bench" in result.stdout


def test_runs_every_kernel_and_a_prefill_on_tiny_shapes_under_the_interpreter():
    pytest.importorskip("triton")
    result = bench("--repeat", "1", interpret=True)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# Triton interpreter on CPU")
    rows = [line.split("|")[1:-1] for line in lines if line.startswith("| ") and "---" not in line]
    kernel_rows = [cells for cells in rows if cells[0].strip() in OPS]
    assert {cells[0].strip() for cells in kernel_rows} == set(OPS)
    for cells in kernel_rows:  # measured, and within tolerance of the torch path (else exit 1)
        assert float(cells[2]) > 0 and float(cells[3]) > 0 and float(cells[-1]) < 2e-2
    prefill = [[c.strip() for c in cells] for cells in rows if cells[0].strip() == "tiny"]
    assert [row[2] for row in prefill] == ["triton", "torch"] and all(float(row[4].replace(",", "")) > 0 for row in prefill)
