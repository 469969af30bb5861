"""Compile every Triton kernel for an NVIDIA GPU, without one: `python -m tests.kernels.gpu_compile --arch 86`.

The launchers run on CPU tensors of the h-1b / h-tiny shapes (uninitialised, except routing ids)
with their device check relaxed and the launch itself intercepted: each launch's kernel,
argument types and constants are compiled with `triton.compile` to a cubin (Triton ships ptxas),
exactly as a GPU launch would compile them. Prints one JSON line per distinct compilation:
kernel, arch, registers per thread, shared memory and spilled bytes (from the bundled cuobjdump).

It must run in a process where Triton was imported without TRITON_INTERPRET (the interpreter
rebuilds Triton's own library functions, which the compiler cannot use).
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.runtime.jit import JITFunction

from kernels import conv1d_triton, moe_triton, norm_triton, ssd_triton

MODULES = (conv1d_triton, moe_triton, norm_triton, ssd_triton)
TYPES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", torch.int64: "i64", torch.int32: "i32"}


def launches(dtype: torch.dtype) -> list[tuple[JITFunction, tuple, dict]]:
    """Every (kernel, args, kwargs) the launchers issue for the model's calls at h-1b / h-tiny sizes."""
    captured = []

    def capture(self, *args, grid, warmup, **kwargs):
        captured.append((self, args, kwargs))

    original = JITFunction.run
    JITFunction.run = capture
    checks = {module: module.check_device for module in MODULES}
    for module in MODULES:
        module.check_device = lambda op, kernel, **tensors: None
    try:
        _call_every_launcher(dtype)
    finally:
        JITFunction.run = original
        for module, check in checks.items():
            module.check_device = check
    return captured


def _call_every_launcher(dtype: torch.dtype) -> None:
    t, h, p, n, c, H, E, k, I = 4096, 48, 64, 128, 3328, 1536, 64, 6, 512

    def empty(*shape, dt=dtype):
        return torch.empty(*shape, dtype=dt)

    f32 = torch.float32
    for state in (None, empty(1, h, p, n, dt=f32)):
        ssd_triton.ssd_scan(empty(1, t, h, p), empty(1, t, h, dt=f32), empty(h, dt=f32), empty(1, t, 1, n),
                            empty(1, t, 1, n), empty(h, dt=f32), 256, state)
    ssd_triton.ssd_step(empty(1, h, p, n, dt=f32), empty(1, h, p), empty(1, h, dt=f32), empty(h, dt=f32),
                        empty(1, 1, n), empty(1, 1, n), empty(h, dt=f32))
    for state in (None, empty(1, c, 3)):
        conv1d_triton.causal_conv1d(empty(1, t, c).transpose(1, 2), empty(c, 4), empty(c), state)
    conv1d_triton.causal_conv1d_step(empty(1, c), empty(c, 4), empty(c), empty(1, c, 3))
    norm_triton.rms_norm(empty(t, H), empty(H), 1e-5)
    norm_triton.add_rms_norm(empty(t, H), empty(t, H), 0.22, empty(H), 1e-5)
    norm_triton.gated_rms_norm(empty(t, h * p, dt=f32), empty(t, h * p), empty(h * p), 1, 1e-5)
    moe_triton.moe_route(empty(t, E), k)
    index = torch.randint(0, E, (t, k))
    moe_triton.moe_experts(empty(t, H), index, empty(t, k), empty(E, 2 * I, H), empty(E, H, I))


def signature(kernel: JITFunction, args: tuple, kwargs: dict) -> tuple[dict, dict]:
    types, constants = {}, {}
    values = dict(zip(kernel.arg_names, args)) | kwargs
    for param in kernel.params:
        value = values[param.name]
        if param.is_constexpr or value is None:
            types[param.name], constants[param.name] = "constexpr", value
        elif isinstance(value, torch.Tensor):
            types[param.name] = "*" + TYPES[value.dtype]
        elif isinstance(value, bool):
            types[param.name] = "i1"
        elif isinstance(value, int):
            types[param.name] = "i32" if -(2**31) <= value < 2**31 else "i64"
        else:
            types[param.name] = "fp32"
    return types, constants


def resources(cubin: bytes, tools: Path) -> dict[str, int]:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        report = subprocess.run([tools / "cuobjdump", "--dump-resource-usage", file.name],
                                capture_output=True, text=True, check=True).stdout
    found = dict(re.findall(r"(REG|STACK|SHARED|LOCAL):(\d+)", report))
    return {"registers": int(found["REG"]), "spilled_bytes": int(found["LOCAL"]) + int(found["STACK"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, default=86, help="compute capability, e.g. 80, 86, 89, 90")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--table", action="store_true", help="a Markdown table instead of JSON lines")
    args = parser.parse_args()
    if "TRITON_INTERPRET" in __import__("os").environ:
        print("gpu_compile: unset TRITON_INTERPRET (the compiler cannot use interpreted library functions)")
        return 2
    tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    seen = set()
    for kernel, call_args, kwargs in launches({"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]):
        types, constants = signature(kernel, call_args, kwargs)
        key = (kernel.__name__, tuple(types.items()), tuple(sorted((k, str(v)) for k, v in constants.items())))
        if key in seen:
            continue
        seen.add(key)
        options = {name: kwargs[name] for name in ("num_warps", "num_stages") if name in kwargs}
        compiled = triton.compile(ASTSource(kernel, types, constants), target=GPUTarget("cuda", args.arch, 32),
                                  options=options)
        flags = ",".join(name for name, value in constants.items() if value is True) or "-"
        row = {"kernel": kernel.__name__, "flags": flags, "arch": args.arch, "dtype": args.dtype,
               "num_warps": options.get("num_warps", 4),
               "shared_bytes": compiled.metadata.shared, **resources(compiled.asm["cubin"], tools)}
        if args.table and not seen - {key}:
            print("| " + " | ".join(row) + " |\n|" + "---|" * len(row))
        print("| " + " | ".join(str(v) for v in row.values()) + " |" if args.table else json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
