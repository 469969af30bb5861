"""Triton's interpreter for one test module: the Triton kernels run on CPU tensors.

Triton 3.7.1 reads TRITON_INTERPRET when `@triton.jit` decorates a function: for our kernels
when a `kernels/*_triton.py` module is imported, and for Triton's own library functions
(tl.cumsum, tl.sum, tl.argmax, ...) once, when `triton.language` is first imported. So:

- importing this module (at collection, before any test runs) imports Triton with the flag set,
  which builds its library functions for the interpreter (nothing else in the suite runs Triton);
- `interpreter()` sets the flag, imports the kernel modules under it (reloading any built for a
  GPU, e.g. by a test that imported one without the flag) and removes the flag
  when the test module is done. The dispatcher asks Triton per call whether the flag is set, so
  for the rest of the session CPU tensors go back to the torch path: nothing leaks.
"""

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from unittest import mock

import pytest
import torch

FAMILIES = ("conv1d", "ssd", "norm", "moe")
FLAG = {"TRITON_INTERPRET": "1"}


def _import_triton_for_the_interpreter() -> str | None:
    """None when Triton's library is built for the interpreter, else why it cannot be."""
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed (it ships for Linux x86-64 only)"
    if "triton.language" not in sys.modules:
        with mock.patch.dict(os.environ, FLAG):
            importlib.import_module("triton.language")
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(sys.modules["triton.language"].cumsum, InterpretedFunction):
        return "triton was imported without TRITON_INTERPRET=1 before the Triton tests were collected"
    return None


PROBLEM = _import_triton_for_the_interpreter()


@contextlib.contextmanager
def interpreter() -> Iterator[SimpleNamespace]:
    """Yields the Triton modules by family (`.ssd`, `.conv1d`, ...), built for the interpreter;
    torch runs on one thread meanwhile."""
    if PROBLEM and PROBLEM.startswith("Triton is not installed"):
        pytest.skip(PROBLEM)
    if PROBLEM:
        pytest.fail(PROBLEM)
    threads = torch.get_num_threads()
    # Tiny shapes gain nothing from a second thread, and on a loaded machine OpenMP's barriers
    # make each small torch op many times slower (see tests/inference/conftest.py).
    torch.set_num_threads(1)
    try:
        with mock.patch.dict(os.environ, FLAG):
            modules = {}
            for family in FAMILIES:
                modules[family] = _import_interpreted(f"kernels.{family}_triton")
            yield SimpleNamespace(**modules)
    finally:
        torch.set_num_threads(threads)


def _import_interpreted(name: str):
    """The kernel module, built for the interpreter: imported, or reloaded if built for a GPU."""
    from triton.runtime.interpreter import InterpretedFunction

    module = sys.modules.get(name) or importlib.import_module(name)
    kernels = [value for value in vars(module).values() if hasattr(value, "arg_names")]
    if not all(isinstance(kernel, InterpretedFunction) for kernel in kernels):
        module = importlib.reload(module)
    return module
