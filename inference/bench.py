"""`python -m inference.bench`: reading long documents on this machine, against transformers.

    python -m inference.bench --shape h-350m --dtypes bf16,fp32 --lengths 1K,4K,16K,64K

Random weights of a released shape (inference/shapes.py) are written once per dtype to a
temporary checkpoint that both runtimes load, so no download is needed and both read the same
weights. Every (runtime, dtype, length) runs in its own process, so each peak RSS (VmHWM) is that
length's alone. Per length: prefill tokens/s and time to first token, decode tokens/s after the
prompt, peak RSS and our memory estimate. Measured in the same run, same threads: the GEMM rate
(fp32, and native 16-bit when the dtype is 16-bit; the faster is the reference), and copy / read
bandwidth (a 512 MB copy_ and sum over a buffer far larger than the caches). Derived:

- prefill as a share of the GEMM rate, with FLOPs per token = 2 x non-embedding active
  parameters + 2 x attention layers x heads x head_dim x length (QK and PV, averaged over the prompt);
  in wall-clock time, and in CPU time (FLOPs per CPU-second of the prefill over those of the GEMM
  probe): on a machine shared with other work the wall-clock share follows whatever else runs, the
  CPU-time share mostly does not;
- decode as a share of the read bound: bytes read per token (weights, the LM head included, K/V
  at that length, Mamba states read and written) / read bandwidth, the bandwidth probed between
  the decode steps in the same process (a 128 MB sum before every fourth step; the run-level
  probe above is printed too);
- the slope of peak RSS over length against the attention layers' theoretical K/V per token;
- with --warm (default: at the longest length), time to first token for a 50-token question from a
  saved document state, against reading document and question cold.

transformers' GraniteMoeHybridForCausalLM runs at increasing lengths until one exceeds
--hf-timeout seconds or --hf-memory GB (the process is stopped), which the table reports.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from inference import shapes, timing

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        print(json.dumps(_child(args)))
        return 0
    torch.set_num_threads(args.threads)
    lengths = [_tokens(x) for x in args.lengths.split(",")]
    config = shapes.config(args.shape)
    print(f"# inference.bench: {args.shape}, {args.threads} threads, load average {_load()}", flush=True)
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="tome-bench-") as tmp:
        for name in args.dtypes.split(","):
            folder = shapes.write_random_checkpoint(args.shape, Path(tmp) / name, DTYPES[name])
            probe = probes(config, DTYPES[name], args.threads)
            notes.append(_describe_probe(name, probe))
            ours = [_run(args, "ours", folder, name, n, n == max(lengths) and args.warm) for n in lengths]
            hf_lengths = [_tokens(x) for x in (args.hf_lengths or args.lengths).split(",")]
            theirs = [] if args.no_transformers else _transformers_rows(args, folder, name, hf_lengths)
            for n in [_tokens(x) for x in args.hf_decode_at.split(",")] if args.hf_decode_at else []:
                other = _run(args, "transformers-decode", folder, name, n, timeout=args.hf_timeout)
                notes += _decode_note(name, n, other, next((r for r in ours if r["tokens"] == n), None))
            rows += _rows(config, DTYPES[name], name, probe, ours, theirs)
            notes += _summary(config, DTYPES[name], name, ours, theirs)
    print(_table(rows))
    print("\n".join(notes))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inference.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="h-350m", choices=[*shapes.RELEASED, *shapes.SMOKES])
    parser.add_argument("--dtypes", default="bf16,fp32", help="comma-separated: bf16, fp32")
    parser.add_argument("--lengths", default="1K,4K,16K,64K", help="comma-separated token counts (K = 1024)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--decode-steps", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=None, help="prefill piece size (default: the model's)")
    parser.add_argument("--warm", type=int, nargs="?", const=50, default=50,
                        help="question tokens for the warm-cache TTFT at the longest length (0: skip)")
    parser.add_argument("--no-transformers", action="store_true")
    parser.add_argument("--hf-lengths", help="lengths for transformers (default: --lengths)")
    parser.add_argument("--hf-decode-at", help="lengths at which to time transformers' decode alone, its K/V filled "
                        "to the length with random entries after a short prefill (for lengths its prefill cannot reach)")
    parser.add_argument("--hf-timeout", type=float, default=1200.0, help="seconds per transformers length")
    parser.add_argument("--hf-memory", type=float, default=16.0, help="GB of RSS per transformers length")
    parser.add_argument("--child", choices=["ours", "transformers", "transformers-decode"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    return parser


# --- the machine ------------------------------------------------------------------------------


def probes(config, dtype: torch.dtype, threads: int) -> dict:
    """GEMM FLOP/s (a prefill piece through the widest projection) and copy / read bytes/s."""
    torch.set_num_threads(threads)
    width = 2 * config.mamba_d_inner + 2 * config.mamba_d_state + config.mamba_n_heads
    x = torch.randn(1024, config.hidden_size)
    w = torch.randn(width, config.hidden_size)
    flops = 2 * x.shape[0] * x.shape[1] * w.shape[0]
    fp32 = lambda: torch.nn.functional.linear(x, w)  # noqa: E731
    rates = {"fp32": flops / _median(fp32)}
    if dtype != torch.float32:
        xl, wl = x.to(dtype), w.to(dtype)
        rates[str(dtype)[6:]] = flops / _median(lambda: torch.nn.functional.linear(xl, wl), repeat=3)
    big = torch.ones(128 << 20)  # 512 MB: far beyond any cache
    out = torch.empty_like(big)
    size = big.numel() * big.element_size()
    return {"gemm": rates, "gemm_cpu": flops / _median(fp32, clock=time.process_time),
            "copy": 2 * size / _median(lambda: out.copy_(big)), "read": size / _median(big.sum)}


def _median(fn, repeat: int = 7, clock=time.perf_counter) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def _describe_probe(name: str, probe: dict) -> str:
    gemm = ", ".join(f"{kind} {rate / 1e9:.1f}" for kind, rate in probe["gemm"].items())
    return (f"- {name}: GEMM GFLOP/s {gemm} (fp32 per CPU-second {probe['gemm_cpu'] / 1e9:.1f}); "
            f"copy {probe['copy'] / 1e9:.1f} GB/s (read + write), read {probe['read'] / 1e9:.1f} GB/s")


# --- one measurement per process --------------------------------------------------------------


def _run(args, runtime: str, folder: Path, dtype: str, length: int, warm: int = 0,
         timeout: float | None = None, memory_gb: float | None = None) -> dict:
    """One measurement in its own process, printed as soon as it ends (a long run that is stopped
    still leaves its finished measurements)."""
    result = _measure(args, runtime, folder, dtype, length, warm, timeout, memory_gb)
    print(f"# {runtime} {dtype} {_k(length)}: {json.dumps(result)} (load average {_load()})", flush=True)
    return result


def _measure(args, runtime: str, folder: Path, dtype: str, length: int, warm: int,
             timeout: float | None, memory_gb: float | None) -> dict:
    """Run one child, stopping it past `timeout` seconds or `memory_gb` of RSS."""
    command = [sys.executable, "-m", "inference.bench", "--child", runtime, "--folder", str(folder),
               "--dtype", dtype, "--length", str(length), "--threads", str(args.threads),
               "--decode-steps", str(args.decode_steps), "--warm", str(warm or 0)]
    if args.chunk:
        command += ["--chunk", str(args.chunk)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started, peak = time.monotonic(), 0
    while child.poll() is None:
        peak = max(peak, _rss(child.pid))
        if timeout is not None and time.monotonic() - started > timeout:
            return _stop(child, f"out of time (> {timeout:.0f} s)", length)
        if memory_gb is not None and peak > memory_gb * 1e9:
            return _stop(child, f"out of memory (> {memory_gb:.0f} GB)", length)
        time.sleep(0.2)
    out, err = child.communicate()
    if child.returncode:
        return {"tokens": length, "status": f"failed: {err.strip().splitlines()[-1] if err.strip() else child.returncode}"}
    return json.loads(out.strip().splitlines()[-1]) | {"status": "ok"}


def _stop(child: subprocess.Popen, status: str, length: int) -> dict:
    child.kill()
    child.communicate()
    return {"tokens": length, "status": status}


def _transformers_rows(args, folder: Path, dtype: str, lengths: list[int]) -> list[dict]:
    rows = []
    for length in lengths:
        if rows and rows[-1]["status"] != "ok":
            rows.append({"tokens": length, "status": "not run (a shorter length did not finish)"})
            continue
        rows.append(_run(args, "transformers", folder, dtype, length, timeout=args.hf_timeout, memory_gb=args.hf_memory))
    return rows


def _child(args) -> dict:
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.length)
    dtype = DTYPES[args.dtype]
    if args.child == "ours":
        from inference.bench_runs import run_ours

        return run_ours(Path(args.folder), dtype, args.length, args.decode_steps, args.warm, args.chunk, gen)
    if args.child == "transformers-decode":
        from inference.bench_runs import run_transformers_decode

        return run_transformers_decode(Path(args.folder), dtype, args.length, args.decode_steps, gen)
    from inference.bench_runs import run_transformers

    return run_transformers(Path(args.folder), dtype, args.length, args.decode_steps, gen)


# --- the table --------------------------------------------------------------------------------


def decode_bytes(config, dtype: torch.dtype, length: int) -> float:
    """Bytes read per decoded token: every active weight (the LM head too), the K/V, the Mamba states."""
    from inference.memory import estimate

    size = torch.empty(0, dtype=dtype).element_size()
    weights = (timing.projection_flops(config) / 2 + config.vocab_size * config.hidden_size) * size
    memory = estimate(config, dtype, length)
    return weights + memory.kv_cache + 2 * memory.states


def _rows(config, dtype, name: str, probe: dict, ours: list[dict], theirs: list[dict]) -> list[list[str]]:
    gemm, read = max(probe["gemm"].values()), probe["read"]
    rows = []
    for runtime, results in (("Tome", ours), ("transformers", theirs)):
        for r in results:
            if r["status"] != "ok":
                rows.append([runtime, name, _k(r["tokens"]), r["status"]] + [""] * (len(HEADER) - 4))
                continue
            n = r["tokens"]
            flops = timing.prefill_flops(config, n) / n
            share, cpu_share = r["prefill_tps"] * flops / gemm, r["prefill_cpu_tps"] * flops / probe["gemm_cpu"]
            bound = r.get("read", read) / decode_bytes(config, dtype, n)  # the probe beside the decode steps
            estimate = f"{r['estimate'] / 1e9:.2f}" if "estimate" in r else ""
            rows.append([runtime, name, _k(n), f"{r['prefill_tps']:.1f}", f"{r['ttft']:.2f}", f"{share:.0%}",
                         f"{cpu_share:.0%}", f"{r['decode_tps']:.2f}", f"{r['decode_tps'] / bound:.0%}",
                         f"{r.get('read', read) / 1e9:.1f}",
                         f"{r['peak_rss'] / 1e9:.2f}", estimate, f"{r['growth'] / 1e9:.2f}"])
    return rows


def _summary(config, dtype, name: str, ours: list[dict], theirs: list[dict]) -> list[str]:
    lines = []
    done = [r for r in ours if r["status"] == "ok"]
    if len(done) >= 2:
        xs, ys = [r["tokens"] for r in done], [r["peak_rss"] for r in done]
        mean_x, mean_y = statistics.mean(xs), statistics.mean(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
        kv = 2 * config.layer_types.count("attention") * config.num_key_value_heads * config.head_dim
        kv *= torch.empty(0, dtype=dtype).element_size()
        lines.append(f"- {name}: peak RSS grows {slope / 1024:.2f} KiB per token (fitted over {len(done)} lengths); "
                     f"theoretical K/V {kv / 1024:.2f} KiB per token")
    by_length = {r["tokens"]: r for r in theirs if r["status"] == "ok"}
    for r in done:
        other = by_length.get(r["tokens"])
        if other:
            lines.append(f"- {name} {_k(r['tokens'])}: prefill {r['prefill_tps'] / other['prefill_tps']:.1f}x, "
                         f"decode {r['decode_tps'] / other['decode_tps']:.1f}x transformers")
        if r.get("warm_ttft"):
            lines.append(f"- {name} {_k(r['tokens'])}: warm document state, {r['warm_tokens']}-token question: "
                         f"TTFT {r['warm_ttft']:.2f} s vs {r['cold_ttft']:.1f} s cold "
                         f"({r['warm_ttft'] / r['cold_ttft']:.1%})")
    return lines


def _decode_note(name: str, length: int, theirs: dict, ours: dict | None) -> list[str]:
    if theirs["status"] != "ok":
        return [f"- {name} {_k(length)}: transformers' decode alone: {theirs['status']}"]
    line = (f"- {name} {_k(length)}: transformers' decode with {_k(length)} positions of K/V ({theirs['prompt']}-token "
            f"prefill, K/V extended with random entries): {theirs['decode_tps']:.2f} tok/s")
    if ours and ours["status"] == "ok":
        line += f"; ours after a real {_k(length)} read {ours['decode_tps']:.2f} tok/s, {ours['decode_tps'] / theirs['decode_tps']:.1f}x"
    return [line]


HEADER = ["runtime", "dtype", "tokens", "prefill tok/s", "TTFT s", "of GEMM rate", "of GEMM, CPU time", "decode tok/s",
          "of read bound", "read GB/s", "peak RSS GB", "estimate GB", "growth GB"]


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(HEADER), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def _tokens(text: str) -> int:
    text = text.strip().upper()
    return int(float(text[:-1]) * 1024) if text.endswith("K") else int(text)


def _k(n: int) -> str:
    return f"{n // 1024}K" if n % 1024 == 0 else str(n)


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
