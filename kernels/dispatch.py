"""The one place that decides which implementation of an op runs.

`TOME_KERNELS` (read here and nowhere else) selects the backend:

- `triton` (the default, i.e. the fastest there is): the Triton kernel (`kernels/<module>_triton.py`)
  wherever Triton can run the tensors: on a GPU, or on any device under Triton's interpreter
  (`TRITON_INTERPRET=1`, Triton's own switch, which is how tests and anyone without a GPU check the
  kernels); on a CPU, the C kernel (`kernels/<module>_native.py`) for the few ops that have one,
  when it could be built here (`kernels/native.py`); otherwise the fast PyTorch path.
- `torch`: always the fast PyTorch path.
- `reference`: the plain, obviously correct `*_ref` functions (slow; for checking).

Triton modules are imported lazily, on the first call that needs one, so importing `kernels`
never needs Triton or CUDA. Only a missing Triton install falls back to the torch path; a Triton
module that fails to import raises, so a broken kernel never hides behind the fallback.
"""

import contextlib
import functools
import importlib
import importlib.util
import os
from collections.abc import Callable, Iterator

BACKENDS = ("triton", "torch", "reference")
DEFAULT_BACKEND = "triton"

# Op name -> the module (under kernels/) holding `<op>_ref` and the fast torch `<op>`; a Triton
# kernel for the op goes in `<module>_triton.py` under the same function name.
OPS = {
    "ssd_scan": "ssd",
    "ssd_step": "ssd",
    "causal_conv1d": "conv1d",
    "causal_conv1d_step": "conv1d",
    "rms_norm": "norm",
    "add_rms_norm": "norm",
    "gated_rms_norm": "norm",
    "moe_route": "moe",
    "moe_experts": "moe",
    "decode_attention": "attention",
    "mamba_step": "mamba",
    "layer_step": "layer",
    "layers_step": "layer",
}


class KernelError(ValueError):
    """A kernel was asked for something it cannot do (bad backend name, bad shapes)."""


_forced: list[str] = []


@functools.cache
def _environment_backend() -> str:
    name = os.environ.get("TOME_KERNELS", DEFAULT_BACKEND).strip().lower() or DEFAULT_BACKEND
    if name not in BACKENDS:
        raise KernelError(f"TOME_KERNELS={name!r} is not one of {', '.join(BACKENDS)}")
    return name


def selected_backend() -> str:
    """The backend in force: a `use_backend` block if one is active, else `TOME_KERNELS`."""
    return _forced[-1] if _forced else _environment_backend()


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run a block with another backend (tests and benchmarks compare backends this way)."""
    if name not in BACKENDS:
        raise KernelError(f"kernel backend {name!r} is not one of {', '.join(BACKENDS)}")
    _forced.append(name)
    try:
        yield
    finally:
        _forced.pop()


def _interpreting() -> bool:
    """Whether Triton's interpreter is on, as Triton itself reads TRITON_INTERPRET."""
    if not os.environ.get("TRITON_INTERPRET") or importlib.util.find_spec("triton") is None:
        return False  # the usual case, decided without importing Triton
    from triton import knobs

    return knobs.runtime.interpret


@functools.cache
def _triton_implementation(op: str) -> Callable | None:
    """The op's Triton launcher, or None when Triton is not installed (it ships for Linux x86-64)
    or the op has no Triton kernel."""
    if importlib.util.find_spec("triton") is None or importlib.util.find_spec(f"kernels.{OPS[op]}_triton") is None:
        return None
    return getattr(importlib.import_module(f"kernels.{OPS[op]}_triton"), op)


@functools.cache
def _native_implementation(op: str) -> Callable | None:
    """The op's C kernel for CPUs, or None when it has none or it could not be built here."""
    if importlib.util.find_spec(f"kernels.{OPS[op]}_native") is None:
        return None
    module = importlib.import_module(f"kernels.{OPS[op]}_native")
    return getattr(module, op, None) if module.available() else None  # a module may serve some of its ops


def native_enabled(device_type: str, backend: str | None = None) -> bool:
    """Whether C kernels may run for tensors on `device_type`: the default backend, a CPU, and not
    Triton's interpreter (which is there to check the Triton kernels). `backend`: the one in force."""
    return (backend or selected_backend()) == "triton" and device_type == "cpu" and not _interpreting()


def implementation(op: str, backend: str, device_type: str) -> Callable:
    """The function that runs `op` for tensors on `device_type` under `backend`."""
    on_triton = backend == "triton" and (device_type == "cuda" or _interpreting())
    return _implementation(op, backend, on_triton, native_enabled(device_type, backend))


@functools.cache
def _implementation(op: str, backend: str, on_triton: bool, native: bool) -> Callable:
    module = importlib.import_module(f"kernels.{OPS[op]}")
    if backend == "reference":
        return getattr(module, f"{op}_ref")
    for fast in (on_triton and _triton_implementation(op), native and _native_implementation(op)):
        if fast:
            return fast
    return getattr(module, op)


def dispatched(op: str) -> Callable:
    """The public entry point for `op`: same signature and docstring as its fast torch path.

    The device is read from the first argument, which every op takes as a tensor.
    """
    fast = getattr(importlib.import_module(f"kernels.{OPS[op]}"), op)

    @functools.wraps(fast)
    def call(*args, **kwargs):
        return implementation(op, selected_backend(), args[0].device.type)(*args, **kwargs)

    return call
