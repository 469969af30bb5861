"""The Triton SSD scan and decode step, under Triton's interpreter, against the torch levels below.

Three levels: the sequential recurrence (`ssd_scan_ref`, ground truth), the chunked torch path
(`ssd_scan`) and the Triton kernels; the Triton results are compared with both.
"""

import pytest
import torch

import kernels
from kernels import dispatch
from kernels.ssd import ssd_scan, ssd_scan_ref, ssd_step_ref
from tests.kernels.helpers import close, ssd_inputs
from tests.kernels.triton_interpreter import interpreter

# All three levels compute in fp32 from the same (possibly bf16-rounded) inputs: they differ in
# summation order and in the kernel taking exp(cs[l] - cs[s]) from cumulative sums, whose
# cancellation costs about |cs| * 2^-24 in the exponent; both stay far below 2e-5 of the output.
REL = 2e-5

SHAPES = [  # b, t, h, p, g, n, chunk, with an initial state
    (1, 1, 4, 8, 1, 16, 8, True),  # a single token
    (2, 37, 6, 5, 2, 7, 8, True),  # t not a multiple of the chunk; odd widths; two groups; batch 2
    (1, 40, 4, 16, 1, 32, 16, False),  # several chunks, the last one partial
    (2, 19, 8, 4, 4, 8, 64, True),  # shorter than one chunk; four groups
]


@pytest.fixture(scope="module")
def ssd():
    with interpreter() as modules:
        yield modules.ssd


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_scan_matches_chunked_and_sequential(ssd, shape, dtype):
    b, t, h, p, g, n, chunk, with_state = shape
    x, dt, A, B, C, D = ssd_inputs(b, t, h, p, g, n, dtype)
    state = torch.randn(b, h, p, n) if with_state else None
    y, final = ssd.ssd_scan(x, dt, A, B, C, D, chunk, state)
    assert y.dtype == final.dtype == torch.float32
    assert y.shape == (b, t, h, p) and final.shape == (b, h, p, n)
    for level in (ssd_scan, ssd_scan_ref):
        y_ref, final_ref = level(x, dt, A, B, C, D, chunk, state)
        close(y, y_ref, REL)
        close(final, final_ref, REL)


def test_scan_without_initial_state_or_skip(ssd):
    x, dt, A, B, C, _ = ssd_inputs(2, 21, 4, 6, 2, 5, torch.float32)
    y, final = ssd.ssd_scan(x, dt, A, B, C, None, 8)
    y_ref, final_ref = ssd_scan_ref(x, dt, A, B, C, None, 8)
    close(y, y_ref, REL)
    close(final, final_ref, REL)


def test_non_contiguous_inputs(ssd):
    x, dt, A, B, C, D = ssd_inputs(1, 30, 4, 8, 2, 6, torch.float32)
    state = torch.randn(1, 4, 6, 8).transpose(2, 3)  # [b, h, p, n] with transposed storage
    # Transposed storage, as splitting a fused projection produces, and a strided dt.
    xt = x.transpose(2, 3).contiguous().transpose(2, 3)
    Bt = B.transpose(1, 3).contiguous().transpose(1, 3)
    dts = torch.stack([dt, dt], dim=-1)[..., 0]
    assert not any(v.is_contiguous() for v in (xt, Bt, dts, state))
    y, final = ssd.ssd_scan(xt, dts, A, Bt, C, D, 8, state)
    y_ref, final_ref = ssd_scan_ref(x, dt, A, B, C, D, 8, state.contiguous())
    close(y, y_ref, REL)
    close(final, final_ref, REL)


def test_scan_in_segments_equals_one_scan(ssd):
    # Chunked prefill: each call continues from the state the previous one returned.
    x, dt, A, B, C, D = ssd_inputs(2, 45, 4, 8, 2, 6, torch.float32)
    whole, final = ssd_scan_ref(x, dt, A, B, C, D, 16)
    state, pieces = None, []
    for lo, hi in [(0, 1), (1, 18), (18, 45)]:
        y, state = ssd.ssd_scan(x[:, lo:hi], dt[:, lo:hi], A, B[:, lo:hi], C[:, lo:hi], D, 16, state)
        pieces.append(y)
    close(torch.cat(pieces, dim=1), whole, REL)
    close(state, final, REL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_steps_continue_a_scan(ssd, dtype):
    b, t, h, p, g, n = 2, 10, 6, 5, 3, 7
    x, dt, A, B, C, D = ssd_inputs(b, t, h, p, g, n, dtype)
    y_ref, final_ref = ssd_scan_ref(x, dt, A, B, C, D, 8)
    _, state = ssd.ssd_scan(x[:, :6], dt[:, :6], A, B[:, :6], C[:, :6], D, 8)
    for i in range(6, t):
        y = ssd.ssd_step(state, x[:, i], dt[:, i], A, B[:, i], C[:, i], D if i % 2 else None)
        expected = y_ref[:, i] if i % 2 else y_ref[:, i] - D[:, None] * x[:, i].float()
        assert y.dtype == torch.float32 and y.shape == (b, h, p)
        close(y, expected, REL)
    close(state, final_ref, REL)


def test_step_matches_reference_step_on_strided_inputs(ssd):
    x, dt, A, B, C, D = ssd_inputs(3, 1, 4, 6, 2, 9, torch.float32)
    state = torch.randn(3, 4, 6, 9)
    expected_state = state.clone()
    Bt = B[:, 0].transpose(1, 2).contiguous().transpose(1, 2)  # [b, g, n] with transposed storage
    y = ssd.ssd_step(state, x[:, 0], dt[:, 0], A, Bt, C[:, 0], D)
    y_ref = ssd_step_ref(expected_state, x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], D)
    close(y, y_ref, REL)
    close(state, expected_state, REL)


def test_long_decays_stay_finite(ssd):
    # Decays down to exp(-3000) per token underflow to exactly zero, never to nan.
    x, dt, A, B, C, D = ssd_inputs(1, 40, 2, 4, 1, 4, torch.float32)
    A = torch.tensor([-1.0, -300.0])
    y, final = ssd.ssd_scan(x, dt * 10, A, B, C, D, 16)
    y_ref, final_ref = ssd_scan_ref(x, dt * 10, A, B, C, D, 16)
    assert torch.isfinite(y).all() and torch.isfinite(final).all()
    close(y, y_ref, REL)
    close(final, final_ref, REL)


def test_dispatch_runs_the_kernel_under_the_interpreter(ssd):
    with kernels.use_backend("triton"):
        assert dispatch.implementation("ssd_scan", kernels.selected_backend(), "cpu") is ssd.ssd_scan
        assert dispatch.implementation("ssd_step", kernels.selected_backend(), "cpu") is ssd.ssd_step
        x, dt, A, B, C, D = ssd_inputs(1, 9, 2, 4, 1, 4, torch.float32)
        y, _ = kernels.ssd_scan(x, dt, A, B, C, D, 8)
    close(y, ssd_scan_ref(x, dt, A, B, C, D, 8)[0], REL)


@pytest.mark.parametrize("case", ["heads vs groups", "dt shape", "state dtype", "state strides", "chunk"])
def test_bad_inputs_are_clear_errors(ssd, case):
    x, dt, A, B, C, D = ssd_inputs(1, 4, 4, 4, 1, 4, torch.float32)
    state = torch.zeros(1, 4, 4, 4)
    with pytest.raises(kernels.KernelError, match=r"^ssd_(scan|step): "):
        if case == "heads vs groups":
            ssd.ssd_scan(x, dt, A, B.expand(1, 4, 3, 4), C.expand(1, 4, 3, 4), D, 8)
        elif case == "dt shape":
            ssd.ssd_scan(x, dt[:, :3], A, B, C, D, 8)
        elif case == "state dtype":
            ssd.ssd_step(state.double(), x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], D)
        elif case == "state strides":
            ssd.ssd_step(state.transpose(2, 3), x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], D)
        else:
            ssd.ssd_scan(x, dt, A, B, C, D, 0)
