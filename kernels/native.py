"""Building the few CPU kernels PyTorch has no fast path for, with the system's C compiler.

A `<module>_native.c` beside its Python module is compiled on first use into a shared library
under the user's cache folder and loaded with ctypes: no build step at install, no PyTorch
headers (a build takes well under a second). The library is keyed by the source, the compiler,
its flags and this CPU's features (it is built for the CPU it runs on, `-march=native`), so a
changed kernel, compiler or machine never loads a stale build.

OpenMP: the library asks for `libgomp.so.1`, the name PyTorch's own bundled runtime carries, so
once torch is imported both share one thread pool instead of two competing for the cores.

Without a compiler, or when a build fails, `load` returns None and says why (one warning per
process);
callers then take the PyTorch path, which is slower but gives the same results.
"""

import ctypes
import functools
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
import warnings
import weakref
from pathlib import Path

import torch

HERE = Path(__file__).parent
# Tried in order: the first set this compiler accepts is used (Apple's clang has neither
# -march=native on arm64 nor -fopenmp without extra installs).
FLAG_SETS = (
    ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=gnu11"],
    ["-O3", "-fopenmp", "-fPIC", "-shared", "-std=gnu11"],
)


# The flag every C kernel takes for a tensor's dtype (weights, caches, states): bf16 (passed as uint16) or fp32.
BF16_FLAG = {torch.bfloat16: 1, torch.float32: 0}


class NativeBuildError(RuntimeError):
    """A kernel library could not be built or loaded (the reason is the message)."""


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tome" / "native"


_warned: list[str] = []  # the kernel whose failed build was reported (one warning per process)

# Argument types of a signature string, one letter per argument.
ARGUMENT_TYPES = {"p": ctypes.c_void_p, "i": ctypes.c_int64, "f": ctypes.c_float, "n": ctypes.c_int}


def kept_plan(plans: dict, owner, tensors, make):
    """`make()` for `owner`, built once and kept in `plans` while `owner` lives and each tensor of
    `tensors()` (what the plan holds addresses into) lives at the same address: checked on every
    call, because a parameter given new storage (`.data = ...`) would leave the C code reading freed
    memory. Tensors are held by weak reference (owner may be one of them: a strong one would keep
    it alive for good). A decoded token checks every layer's plan and the LM head's, so the check
    is a list of addresses, not the checks `make` does."""
    entry = plans.get(id(owner))
    if entry is not None and entry[0]() is owner:
        held = [ref() for ref in entry[1]]  # (not `None in held`: that compares tensors, ~200 us)
        if all(t is not None for t in held) and [t.data_ptr() for t in held] == entry[2]:
            return entry[3]
    key, held = id(owner), tensors()
    plans[key] = (weakref.ref(owner, lambda _, key=key: plans.pop(key, None)), [weakref.ref(t) for t in held],
                  [t.data_ptr() for t in held], plan := make())
    return plan


@functools.cache
def load(name: str, **signatures: str) -> ctypes.CDLL | None:
    """The compiled `kernels/<name>.c`, or None (with one warning) when it cannot be built here.

    `signatures` gives each entry point's argument types as letters (p pointer, i int64_t,
    f float, n int): ctypes then converts Python ints and floats the way the C code expects.
    """
    try:
        library = build(HERE / f"{name}.c", cache_folder())
    except NativeBuildError as error:
        if not _warned:  # once per process: the other kernels fail for the same reason
            _warned.append(name)
            warnings.warn(f"tome: C kernels unavailable ({name}: {error}); the CPU decode takes the slower PyTorch "
                          "path", RuntimeWarning, stacklevel=2)
        return None
    for function, letters in signatures.items():
        getattr(library, function).argtypes = [ARGUMENT_TYPES[letter] for letter in letters]
    return library


def build(source: Path, folder: Path) -> ctypes.CDLL:
    """Compile `source` into `folder` (unless an identical build is there) and load it."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise NativeBuildError("no C compiler found (cc, gcc or clang)")
    try:
        text = _with_includes(source)
    except OSError as error:
        raise NativeBuildError(f"cannot read {source}: {error}") from error
    errors = []
    for flags in FLAG_SETS:
        library = folder / f"{source.stem}-{_key(text, compiler, flags)}.so"
        if not library.is_file():
            try:
                _compile(source, library, compiler, flags)
            except NativeBuildError as error:
                errors.append(str(error))
                continue
        try:
            return ctypes.CDLL(str(library))
        except OSError as error:
            raise NativeBuildError(f"{library} does not load: {error}") from error
    raise NativeBuildError(errors[-1])


def _compile(source: Path, library: Path, compiler: str, flags: list[str]) -> None:
    partial = None
    try:
        library.parent.mkdir(parents=True, exist_ok=True)
        # Built under a temporary name and renamed: two processes building at once both succeed.
        handle, partial = tempfile.mkstemp(suffix=".so", dir=library.parent)
        os.close(handle)
        done = subprocess.run([compiler, *flags, str(source), "-o", partial], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise NativeBuildError(f"{Path(compiler).name} {' '.join(flags)} failed: {last}")
        os.replace(partial, library)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise NativeBuildError(f"cannot build {library.name}: {error}") from error
    finally:
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)


def _with_includes(source: Path) -> bytes:
    """The source and, recursively, every file it includes with quotes (a header change rebuilds)."""
    text = source.read_bytes()
    included = re.findall(rb'^\s*#\s*include\s+"([^"]+)"', text, flags=re.MULTILINE)
    return text + b"".join(_with_includes(source.parent / name.decode()) for name in included)


def _key(text: bytes, compiler: str, flags: list[str]) -> str:
    digest = hashlib.sha256(text)
    for part in (compiler, _compiler_version(compiler), " ".join(flags), platform.machine(), _cpu_features()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def _compiler_version(compiler: str) -> str:
    try:
        return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


@functools.cache
def _cpu_features() -> str:
    """The CPU's feature flags (Linux), so a build for one CPU is never loaded on another."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()
