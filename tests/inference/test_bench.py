"""`python -m inference.bench` end to end on a small shape, and the time estimate behind ETAs."""

import subprocess
import sys

import pytest
import torch

from inference import shapes, timing


def run_bench(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "inference.bench", "--shape", "smoke", "--dtypes", "fp32",
                          "--decode-steps", "2", "--threads", "1", *args],
                         capture_output=True, text=True, check=True, timeout=600)
    return out.stdout


def test_bench_prints_a_table_of_measured_rows():
    out = run_bench("--lengths", "64,128", "--warm", "8", "--no-transformers")
    rows = [line for line in out.splitlines() if line.startswith("| Tome")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[3]) > 0 and float(cells[4]) > 0  # tok/s, TTFT
        assert cells[5].endswith("%") and cells[6].endswith("%")  # GEMM shares: wall clock, CPU time
        assert float(cells[7]) > 0 and cells[8].endswith("%") and float(cells[9]) > 0  # decode, its read bound, probe
        assert float(cells[10]) > float(cells[12]) > 0  # peak RSS > growth
    assert "GEMM GFLOP/s fp32" in out and "per CPU-second" in out and "read" in out
    assert "# ours fp32 64: {" in out  # each measurement is printed as it ends
    assert "KiB per token (fitted over 2 lengths); theoretical K/V 0.50 KiB per token" in out
    assert "warm document state, 8-token question: TTFT" in out


@pytest.mark.slow
def test_bench_compares_with_transformers_on_the_same_weights():
    out = run_bench("--lengths", "64,128", "--warm", "0")
    assert sum(line.startswith("| transformers") for line in out.splitlines()) == 2
    assert "decode" in out and "x transformers" in out


def test_bench_times_transformers_decode_alone_at_a_length_its_prefill_skips():
    out = run_bench("--lengths", "64,512", "--hf-lengths", "64", "--hf-decode-at", "512", "--warm", "0")
    assert sum(line.startswith("| transformers") for line in out.splitlines()) == 1  # 64 only
    note = next(line for line in out.splitlines() if "transformers' decode with" in line)
    assert note.startswith("- fp32 512: transformers' decode with 512 positions of K/V (256-token prefill")
    ours_tps, ratio = note.split("read ")[1].split(" tok/s, ")
    assert float(ours_tps) > 0 and float(ratio.rstrip("x")) > 0


@pytest.mark.slow
def test_bench_reports_where_transformers_runs_out_of_time():
    out = run_bench("--lengths", "64", "--warm", "0", "--hf-timeout", "0.5")
    assert "out of time (> 0 s)" in out or "out of time (> 1 s)" in out


def test_prefill_flops_count_projections_and_attention():
    config = shapes.config("h-350m")
    # 340.3M parameters, 77.1M of them the tied embedding: 2 x 263.2M per token of projections.
    assert timing.projection_flops(config) == pytest.approx(2 * 263.2e6, rel=1e-3)
    per_position = 4 * 4 * 12 * 64  # 4 attention layers, QK and PV, 12 heads of 64
    assert timing.attention_flops(config, 1000) == per_position * 1000
    assert timing.prefill_flops(config, 1000) == pytest.approx(1000 * (2 * 263.2e6 + per_position * 500), rel=1e-3)


def test_prefill_seconds_grow_with_the_length_and_shrink_with_a_cache():
    config = shapes.config("h-350m")
    rate = 100e9
    short, long = (timing.prefill_seconds(config, n, gemm_rate=rate) for n in (4096, 65536))
    assert long > 16 * short  # more than linear: attention grows with the position
    assert timing.prefill_seconds(config, 50, past=65536, gemm_rate=rate) < 0.02 * long
    assert timing.decode_seconds(config, 100, 65536, torch.bfloat16, read_rate=10e9) > timing.decode_seconds(
        config, 100, 1024, torch.bfloat16, read_rate=10e9)
    assert timing.measured_gemm_rate(768) > 1e8 and timing.measured_read_rate() > 1e8
