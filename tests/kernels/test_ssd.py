"""The chunked SSD scan and the decode step against the sequential recurrence."""

import pytest
import torch

from kernels import ssd_native
from kernels.ssd import ssd_scan, ssd_scan_ref, ssd_step, ssd_step_ref
from tests.kernels.helpers import close, ssd_inputs

# Both paths accumulate in fp32 from the same (possibly bf16-rounded) inputs; the difference is
# only the order of fp32 sums and exp(a - b) vs exp(a)/exp(b), far below 1e-5 of the largest value.
REL = 2e-5

SHAPES = [  # b, t, h, p, g, n, chunk
    (1, 1, 4, 8, 1, 16, 8),  # a single token
    (2, 37, 6, 5, 2, 7, 8),  # t not a multiple of the chunk; odd widths; two groups
    (1, 64, 4, 16, 1, 32, 16),  # whole chunks
    (2, 19, 8, 4, 4, 8, 64),  # shorter than one chunk
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_chunked_scan_matches_sequential(shape, dtype):
    b, t, h, p, g, n, chunk = shape
    x, dt, A, B, C, D = ssd_inputs(b, t, h, p, g, n, dtype)
    state = torch.randn(b, h, p, n)
    y, final = ssd_scan(x, dt, A, B, C, D, chunk, state)
    y_ref, final_ref = ssd_scan_ref(x, dt, A, B, C, D, chunk, state)
    assert y.dtype == final.dtype == torch.float32
    assert y.shape == (b, t, h, p) and final.shape == (b, h, p, n)
    close(y, y_ref, REL)
    close(final, final_ref, REL)


def test_scan_without_initial_state_or_skip():
    x, dt, A, B, C, _ = ssd_inputs(2, 21, 4, 6, 2, 5, torch.float32)
    y, final = ssd_scan(x, dt, A, B, C, None, 8)
    y_ref, final_ref = ssd_scan_ref(x, dt, A, B, C, None, 8)
    close(y, y_ref, REL)
    close(final, final_ref, REL)


def test_non_contiguous_inputs():
    x, dt, A, B, C, D = ssd_inputs(1, 30, 4, 8, 1, 6, torch.float32)
    # Transposed storage, as a split of a fused projection would produce.
    xt = x.transpose(2, 3).contiguous().transpose(2, 3)
    Bt = B.transpose(1, 3).contiguous().transpose(1, 3)
    assert not xt.is_contiguous() and not Bt.is_contiguous()
    y, final = ssd_scan(xt, dt, A, Bt, C, D, 8)
    y_ref, final_ref = ssd_scan_ref(x, dt, A, B, C, D, 8)
    close(y, y_ref, REL)
    close(final, final_ref, REL)


def test_scan_in_segments_equals_one_scan():
    x, dt, A, B, C, D = ssd_inputs(2, 50, 4, 8, 2, 6, torch.float32)
    whole, final = ssd_scan(x, dt, A, B, C, D, 16)
    state, pieces = None, []
    for lo, hi in [(0, 1), (1, 8), (8, 50)]:
        y, state = ssd_scan(x[:, lo:hi], dt[:, lo:hi], A, B[:, lo:hi], C[:, lo:hi], D, 16, state)
        pieces.append(y)
    close(torch.cat(pieces, dim=1), whole, REL)
    close(state, final, REL)


@pytest.mark.parametrize("step", [ssd_step, ssd_step_ref])
def test_decode_steps_continue_a_scan(step):
    b, t, h, p, g, n = 2, 12, 6, 4, 3, 5
    x, dt, A, B, C, D = ssd_inputs(b, t, h, p, g, n, torch.float32)
    y_ref, final_ref = ssd_scan_ref(x, dt, A, B, C, D, 8)
    _, state = ssd_scan(x[:, :5], dt[:, :5], A, B[:, :5], C[:, :5], D, 8)
    for i in range(5, t):
        y = step(state, x[:, i], dt[:, i], A, B[:, i], C[:, i], D)
        close(y, y_ref[:, i], REL)
    close(state, final_ref, REL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("b, h, p, g, n, with_D", [
    (1, 48, 32, 1, 128, True),  # h-350m's mixer
    (2, 6, 4, 3, 32, False),    # groups, a batch, no D
    (1, 4, 3, 2, 5, True),      # n the C kernel declines: the PyTorch path answers
])
def test_c_decode_step_matches_the_recurrence(b, h, p, g, n, with_D, dtype):
    t = 6
    x, dt, A, B, C, D = ssd_inputs(b, t, h, p, g, n, dtype, seed=4)
    D = D if with_D else None
    y_ref, final_ref = ssd_scan_ref(x, dt, A, B, C, D, 8)
    _, state = ssd_scan_ref(x[:, :2], dt[:, :2], A, B[:, :2], C[:, :2], D, 8)
    for i in range(2, t):
        y = ssd_native.ssd_step(state, x[:, i], dt[:, i], A, B[:, i], C[:, i], D)
        assert y.dtype == torch.float32
        close(y, y_ref[:, i], REL)
    close(state, final_ref, REL)


def test_long_decays_stay_finite():
    # Very fast decays (dt*A down to about -3000) underflow to exactly zero, never to nan.
    x, dt, A, B, C, D = ssd_inputs(1, 40, 2, 4, 1, 4, torch.float32)
    A = torch.tensor([-1.0, -300.0])
    y, final = ssd_scan(x, dt * 10, A, B, C, D, 16)
    y_ref, final_ref = ssd_scan_ref(x, dt * 10, A, B, C, D, 16)
    assert torch.isfinite(y).all() and torch.isfinite(final).all()
    close(y, y_ref, REL)
