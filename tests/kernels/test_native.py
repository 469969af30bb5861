"""Building C kernels on first use: cached per source, compiler and CPU; a failure is a warning and None."""

import ctypes
import gc
import shutil
import warnings

import pytest
import torch

from kernels import attention, attention_native, dispatch, native, ssd, ssd_native

needs_compiler = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                    reason="no C compiler")


@needs_compiler
def test_builds_once_and_reuses_the_library(tmp_path):
    source = tmp_path / "twice.c"
    source.write_text("int twice(int x) { return 2 * x; }\n")
    library = native.build(source, tmp_path / "cache")
    assert library.twice(21) == 42
    built = list((tmp_path / "cache").glob("twice-*.so"))
    assert len(built) == 1
    mtime = built[0].stat().st_mtime_ns
    native.build(source, tmp_path / "cache")
    assert built[0].stat().st_mtime_ns == mtime  # the same source is not compiled again
    source.write_text("int twice(int x) { return x + x; }\n")
    native.build(source, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("twice-*.so"))) == 2  # a changed source is


@needs_compiler
def test_a_source_that_does_not_compile_is_a_clear_error(tmp_path):
    source = tmp_path / "broken.c"
    source.write_text("int broken( {\n")
    with pytest.raises(native.NativeBuildError, match="failed"):
        native.build(source, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.so"))  # no half-written library is left


def test_no_compiler_means_none_and_one_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(native, "_warned", [])
    native.load.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert native.load("attention_native") is None and native.load("matmul_native") is None
        assert [str(w.message)[:50] for w in caught] == ["tome: C kernels unavailable (attention_native: can"]
    finally:
        native.load.cache_clear()


@needs_compiler
def test_the_default_backend_takes_the_c_kernel_on_cpu():
    assert isinstance(native.load("attention_native"), ctypes.CDLL)
    assert dispatch.implementation("decode_attention", "triton", "cpu") is attention_native.decode_attention
    assert dispatch.implementation("decode_attention", "torch", "cpu") is attention.decode_attention
    assert dispatch.implementation("decode_attention", "reference", "cpu") is attention.decode_attention_ref
    assert dispatch.implementation("ssd_step", "triton", "cpu") is ssd_native.ssd_step
    assert dispatch.implementation("ssd_step", "torch", "cpu") is ssd.ssd_step
    assert dispatch.implementation("ssd_scan", "triton", "cpu") is ssd.ssd_scan  # a module may serve some ops


def test_a_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(native.NativeBuildError, match="cannot read"):
        native.build(tmp_path / "absent.c", tmp_path / "cache")


@needs_compiler
def test_a_changed_header_rebuilds(tmp_path):
    (tmp_path / "value.h").write_text("#define VALUE 1\n")
    source = tmp_path / "read.c"
    source.write_text('#include "value.h"\nint value(void) { return VALUE; }\n')
    assert native.build(source, tmp_path / "cache").value() == 1
    (tmp_path / "value.h").write_text("#define VALUE 2\n")
    assert native.build(source, tmp_path / "cache").value() == 2


def test_a_kept_plan_is_rebuilt_for_new_storage_and_leaves_with_its_owner():
    plans, built = {}, []
    weight = torch.ones(4, 8)

    def make():
        built.append(weight.data_ptr())
        return len(built)

    assert native.kept_plan(plans, weight, lambda: [weight], make) == 1
    assert native.kept_plan(plans, weight, lambda: [weight], make) == 1  # kept
    weight.data = torch.zeros(4, 8)  # new storage, same tensor object
    assert native.kept_plan(plans, weight, lambda: [weight], make) == 2 and built[1] == weight.data_ptr()
    del weight
    gc.collect()
    assert plans == {}  # the plan held no strong reference to its owner
