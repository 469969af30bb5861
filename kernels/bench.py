"""GPU benchmark of the Triton kernels: `python -m kernels.bench [--dtype bf16] [--lengths 16384,65536,262144]`.

On a CUDA machine it prints two tables:

1. Each kernel against the PyTorch path (and `mamba_ssm` / `causal_conv1d`, where installed) at
   the shapes of the h-1b and h-tiny configs: median milliseconds, the speed-up over torch, the
   share of the roofline reached (the larger of bytes moved / measured copy bandwidth and FLOPs /
   measured bf16 matmul rate), and the largest difference from the torch path.
2. End-to-end prefill of h-1b and h-tiny (random weights; the speed does not depend on them) at
   16K / 64K / 256K tokens, Triton and torch paths: seconds, tokens/s and peak GPU memory.

Under Triton's interpreter (`TRITON_INTERPRET=1`, no GPU) it runs the same code on tiny shapes on
the CPU, so CI checks it still runs; the times are then meaningless. Without either it says so and
exits 0. It exits 1 if any kernel disagrees with the torch path beyond its tolerance.
"""

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable

import torch

import kernels
from kernels import conv1d, dispatch, moe, norm, ssd

MODULES = {"ssd": ssd, "conv1d": conv1d, "norm": norm, "moe": moe}
# Largest accepted max|triton - torch| / max|torch|: fp32 is summation order; 16-bit outputs
# carry their own rounding (and TF32 products on a GPU), which 2e-2 covers.
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 2e-2}


@dataclasses.dataclass(frozen=True)
class Case:
    op: str  # the kernels op
    shape: str  # what the row measures, for the table
    args: Callable[[], tuple]  # builds the op's arguments on the device
    bytes: int  # the least memory traffic the op needs (inputs read, outputs written)
    flops: int
    baseline: Callable | None = None  # the same computation by mamba_ssm / causal_conv1d, if installed


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The shapes one benchmark run uses: a GPU's realistic ones, or tiny ones for the interpreter."""

    tokens: int  # prefill segment per kernel call
    batch_decode: tuple[int, ...]
    heads: int
    head_dim: int
    d_state: int
    chunk: int
    hidden: int
    experts: int
    top_k: int
    expert_width: int
    e2e_lengths: tuple[int, ...]
    e2e_configs: tuple[str, ...]


GPU = Sizes(16384, (1, 32), 48, 64, 128, 256, 1536, 64, 6, 512, (16384, 65536, 262144), ("h-1b", "h-tiny"))
TINY = Sizes(40, (2,), 4, 16, 16, 16, 32, 4, 2, 16, (24,), ("tiny",))


def model_config(name: str):
    """h-1b and h-tiny as in ../shared/reference/granite-4.0-h.md §3, or a tiny hybrid for the interpreter."""
    from inference import HybridConfig  # benchmark entry point only: the kernels package never imports inference

    big = dict(vocab_size=100352, hidden_size=1536, num_hidden_layers=40, num_attention_heads=12, num_key_value_heads=4,
               mamba_n_heads=48, mamba_d_head=64, mamba_d_state=128, mamba_chunk_size=256, rms_norm_eps=1e-5,
               layer_types=["attention" if i in (5, 15, 25, 35) else "mamba" for i in range(40)],
               tie_word_embeddings=True, max_position_embeddings=262144)
    sizes = {
        "h-1b": big | dict(num_local_experts=0, num_experts_per_tok=0, intermediate_size=4096,
                           shared_intermediate_size=4096),
        "h-tiny": big | dict(num_local_experts=64, num_experts_per_tok=6, intermediate_size=512,
                             shared_intermediate_size=1024),
        "tiny": dict(vocab_size=320, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                     mamba_n_heads=4, mamba_d_head=16, mamba_d_state=16, mamba_chunk_size=16, rms_norm_eps=1e-5,
                     layer_types=["mamba", "attention"], num_local_experts=4, num_experts_per_tok=2,
                     intermediate_size=16, shared_intermediate_size=32),
    }
    return HybridConfig.from_dict(dict(model_type="granitemoehybrid", **sizes[name]))


def kernel_cases(s: Sizes, device: torch.device, dtype: torch.dtype) -> list[Case]:
    gen = torch.Generator(device=device).manual_seed(0)
    es = torch.finfo(dtype).bits // 8

    def randn(*shape, scale=1.0, dt=dtype):
        return (torch.randn(*shape, generator=gen, device=device) * scale).to(dt)

    t, h, p, n, H = s.tokens, s.heads, s.head_dim, s.d_state, s.hidden
    c = h * p + 2 * n  # the conv channels of x|B|C (one group, as every released size)

    def scan_args():
        dt = torch.nn.functional.softplus(randn(1, t, h, dt=torch.float32) - 2)
        A = -torch.exp(torch.rand(h, generator=gen, device=device) * 3)
        return (randn(1, t, h, p), dt, A, randn(1, t, 1, n), randn(1, t, 1, n), randn(h, dt=torch.float32), s.chunk,
                randn(1, h, p, n, dt=torch.float32))

    def step_args(b):
        return (randn(b, h, p, n, dt=torch.float32), randn(b, h, p), torch.rand(b, h, device=device) * 0.1,
                -torch.exp(torch.rand(h, generator=gen, device=device)), randn(b, 1, n), randn(b, 1, n),
                randn(h, dt=torch.float32))

    def conv_args():  # the model's layout: a channels-contiguous [b, c, t] view
        return randn(1, t, c).transpose(1, 2), randn(c, 4), randn(c), randn(1, c, 3)

    def experts_args(tokens):
        weights, index = moe.moe_route(randn(tokens, s.experts, dt=torch.float32), s.top_k)
        return (randn(tokens, H), index, weights.to(dtype), randn(s.experts, 2 * s.expert_width, H, scale=H**-0.5),
                randn(s.experts, H, s.expert_width, scale=s.expert_width**-0.5))

    routed = min(s.experts, t * s.top_k)  # experts whose weights a prefill segment reads
    cases = [
        Case("ssd_scan", f"t={t} h={h} p={p} n={n} Q={s.chunk}", scan_args,
             t * h * (p * es + 4 + p * 4) + 2 * t * n * es, t * (s.chunk * (h * p + n) + 4 * h * p * n),
             _mamba_scan()),
        *(Case("ssd_step", f"b={b} h={h} p={p} n={n}", lambda b=b: step_args(b), 2 * b * h * p * n * 4,
               5 * b * h * p * n, _mamba_step()) for b in s.batch_decode),
        Case("causal_conv1d", f"t={t} c={c} k=4", conv_args, 2 * t * c * es, 8 * t * c, _conv_baseline()),
        Case("causal_conv1d_step", f"b={s.batch_decode[-1]} c={c} k=4",
             lambda: (randn(s.batch_decode[-1], c), randn(c, 4), randn(c), randn(s.batch_decode[-1], c, 3)),
             s.batch_decode[-1] * c * 8 * es, 8 * s.batch_decode[-1] * c),
        Case("rms_norm", f"{t}x{H}", lambda: (randn(t, H), randn(H), 1e-5), 2 * t * H * es, 4 * t * H),
        Case("add_rms_norm", f"{t}x{H}", lambda: (randn(t, H), randn(t, H), 0.22, randn(H), 1e-5),
             4 * t * H * es, 6 * t * H),
        Case("gated_rms_norm", f"{t}x{h * p} g=1", lambda: (randn(t, h * p, dt=torch.float32), randn(t, h * p),
                                                            randn(h * p), 1, 1e-5),
             t * h * p * (4 + 2 * es), 8 * t * h * p, _gated_norm_baseline()),
        Case("moe_route", f"T={t} E={s.experts} k={s.top_k}", lambda: (randn(t, s.experts), s.top_k),
             t * s.experts * es + t * s.top_k * 12, t * s.experts * s.top_k),
        Case("moe_experts", f"T={t} H={H} E={s.experts} I={s.expert_width} k={s.top_k}", lambda: experts_args(t),
             routed * 3 * s.expert_width * H * es + 2 * t * H * es, 6 * t * s.top_k * s.expert_width * H),
        Case("moe_experts", f"T=1 H={H} E={s.experts} I={s.expert_width} k={s.top_k}", lambda: experts_args(1),
             s.top_k * 3 * s.expert_width * H * es, 6 * s.top_k * s.expert_width * H),
    ]
    return cases


def _mamba_scan():
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except ImportError:
        return None
    return lambda x, dt, A, B, C, D, chunk, state: mamba_chunk_scan_combined(
        x, dt, A, B, C, chunk, D=D, initial_states=state, return_final_states=True)


def _mamba_step():
    try:
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update
    except ImportError:
        return None

    def step(state, x, dt, A, B, C, D):  # mamba_ssm's Mamba-2 form: per-channel dt, A and D
        p, n = state.shape[2:]
        return selective_state_update(state, x, dt[..., None].expand(-1, -1, p), A[:, None, None].expand(-1, p, n),
                                      B, C, D=D[:, None].expand(-1, p))

    return step


def _conv_baseline():
    try:
        from causal_conv1d import causal_conv1d_fn
    except ImportError:
        return None
    return lambda x, weight, bias, state: causal_conv1d_fn(x, weight, bias, initial_states=state,
                                                           return_final_states=True, activation="silu")


def _gated_norm_baseline():
    try:
        from mamba_ssm.ops.triton.layernorm_gated import rmsnorm_fn
    except ImportError:
        return None
    return lambda x, gate, weight, groups, eps: rmsnorm_fn(x, weight, None, z=gate, eps=eps,
                                                           group_size=x.shape[-1] // groups, norm_before_gate=False)


def median_seconds(fn: Callable[[], object], device: torch.device, repeat: int) -> float:
    if device.type == "cuda":
        fn()  # compile and warm up (the interpreter has nothing to warm)
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def measured_peaks(device: torch.device) -> tuple[float, float] | None:
    """(bytes/s of a large device copy, FLOP/s of a large bf16 matmul): the roofline's two slopes."""
    if device.type != "cuda":
        return None
    src = torch.empty(1 << 28, dtype=torch.float32, device=device)  # 1 GiB
    dst = torch.empty_like(src)
    bandwidth = 2 * src.numel() * 4 / median_seconds(lambda: dst.copy_(src), device, 5)
    a = torch.randn(8192, 8192, dtype=torch.bfloat16, device=device)
    flops = 2 * 8192**3 / median_seconds(lambda: a @ a, device, 5)
    return bandwidth, flops


def first(result):
    return result[0] if isinstance(result, tuple) else result


def error(actual, expected) -> float:
    return ((first(actual).float() - first(expected).float()).abs().max() / first(expected).float().abs().max()).item()


def kernel_rows(cases: list[Case], device: torch.device, dtype: torch.dtype, repeat: int) -> tuple[list, bool]:
    peaks = measured_peaks(device)
    rows, ok = [], True
    for case in cases:
        args = case.args()
        module = MODULES[dispatch.OPS[case.op]]
        triton_fn, torch_fn = dispatch.implementation(case.op, "triton", device.type), getattr(module, case.op)
        err = error(triton_fn(*_fresh(args)), torch_fn(*_fresh(args)))
        ok &= err <= TOLERANCE[dtype]
        t_triton = median_seconds(lambda: triton_fn(*args), device, repeat)
        t_torch = median_seconds(lambda: torch_fn(*args), device, repeat)
        t_base = _baseline_seconds(case, args, device, repeat) if case.baseline and peaks else None
        roof = max(case.bytes / peaks[0], case.flops / peaks[1]) / t_triton if peaks else None
        rows.append((case.op, case.shape, _ms(t_triton), _ms(t_torch), f"{t_torch / t_triton:.2f}x",
                     _ms(t_base), "—" if roof is None else f"{100 * roof:.0f}%", f"{err:.1e}"))
    return rows, ok


def _baseline_seconds(case: Case, args: tuple, device: torch.device, repeat: int) -> float | None:
    """A third-party kernel's time; its API is outside our tests, so a failure only blanks its cell."""
    try:
        return median_seconds(lambda: case.baseline(*args), device, repeat)
    except Exception as failure:  # noqa: BLE001 - reported, and the rest of the table goes on
        print(f"kernels.bench: the {case.op} baseline failed: {failure}", file=sys.stderr)
        return None


def _fresh(args: tuple) -> tuple:
    """Copies of tensor arguments, so in-place ops (decode states) start both paths equal."""
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:.3f}"


def random_model(name: str, device: torch.device, dtype: torch.dtype):
    """The config's model with random weights in the ranges real checkpoints have."""
    from inference import HybridModel  # benchmark entry point only (see model_config)

    with torch.device("meta"):  # allocate once, in the target dtype (h-tiny in fp32 would not fit 24 GB)
        model = HybridModel(model_config(name))
    model = model.to(dtype).to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    for pname, param in model.named_parameters():
        if pname.endswith("A_log"):
            param.data.uniform_(0.0, 2.7, generator=gen)  # A in [-16, -1]
        elif pname.endswith("dt_bias"):
            param.data.uniform_(-4.6, -2.3, generator=gen)  # softplus -> dt in [0.01, 0.1]
        elif param.dim() >= 2:
            param.data.normal_(0.0, 0.02, generator=gen)
        else:
            param.data.fill_(1.0)  # norms, D, conv bias
    return model.eval()


def e2e_rows(s: Sizes, device: torch.device, dtype: torch.dtype, lengths: tuple[int, ...]) -> list:
    rows = []
    for name in s.e2e_configs:
        model = random_model(name, device, dtype)
        for length in lengths:
            ids = torch.randint(3, model.config.vocab_size, (1, length), device=device)
            for backend in ("triton", "torch"):
                rows.append((name, length, backend, *_prefill(model, ids, backend, device)))
        del model
    return rows


def _prefill(model, ids, backend: str, device: torch.device) -> tuple[str, str, str]:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with kernels.use_backend(backend):
            seconds = median_seconds(lambda: model(ids, last_only=True), device, 1)
    except torch.OutOfMemoryError:
        return "out of memory", "—", "—"
    peak = f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f}" if device.type == "cuda" else "—"
    return f"{seconds:.2f}", f"{ids.shape[1] / seconds:,.0f}", peak


def table(header: tuple[str, ...], rows: list) -> str:
    cells = [header, *[tuple(str(c) for c in row) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16")
    parser.add_argument("--lengths", default=None, help="end-to-end prefill lengths, comma-separated")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per kernel (median)")
    parser.add_argument("--no-e2e", action="store_true", help="kernels only")
    args = parser.parse_args(argv)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    if torch.cuda.is_available():
        device, sizes, repeat = torch.device("cuda"), GPU, args.repeat or 20
        print(f"# {torch.cuda.get_device_name(device)}, {args.dtype}, torch {torch.__version__}")
    elif dispatch._interpreting():
        device, sizes, repeat = torch.device("cpu"), TINY, args.repeat or 1
        torch.set_num_threads(1)  # tiny ops: a second thread only adds OpenMP barriers
        print(f"# Triton interpreter on CPU: tiny shapes, times are not GPU times ({args.dtype})")
    else:
        print("kernels.bench: no CUDA device here, and the Triton kernels run only on GPUs. "
              "To check them on the CPU, run it under Triton's interpreter: TRITON_INTERPRET=1 python -m kernels.bench")
        return 0
    rows, ok = kernel_rows(kernel_cases(sizes, device, dtype), device, dtype, repeat)
    print(table(("op", "shape", "triton ms", "torch ms", "speed-up", "mamba_ssm ms", "roofline", "max rel diff"), rows))
    if not args.no_e2e:
        lengths = tuple(int(v) for v in args.lengths.split(",")) if args.lengths else sizes.e2e_lengths
        print()
        print(table(("model", "tokens", "kernels", "prefill s", "tokens/s", "peak GiB"),
                    e2e_rows(sizes, device, dtype, lengths)))
    if not ok:
        print(f"kernels.bench: a Triton kernel differs from the torch path by more than {TOLERANCE[dtype]:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
