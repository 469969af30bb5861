"""The Triton causal conv1d (segment and decode step), under Triton's interpreter, against the tap sum."""

import pytest
import torch

import kernels
from kernels import dispatch
from kernels.conv1d import causal_conv1d_ref, causal_conv1d_step_ref
from tests.kernels.helpers import close
from tests.kernels.triton_interpreter import interpreter

# The kernel sums in fp32 and rounds once, so it is compared with the reference evaluated in fp32
# on the same inputs. fp32: summation order only. bf16: that one rounding, which the interpreter
# does by truncation (a GPU rounds to nearest): under one bf16 ulp, 2^-7 of the value.
REL = {torch.float32: 1e-6, torch.bfloat16: 2**-7}

SHAPES = [  # b, c, t, k
    (1, 8, 1, 4),  # a single token: every tap but the last reads the state
    (2, 13, 9, 4),  # odd channel count, batch 2
    (1, 6, 2, 4),  # shorter than the kernel: the new state keeps part of the old one
    (2, 5, 17, 3),  # another kernel width
    (2, 70, 40, 4),  # more channels and steps than one tile (64 x 32)
]


@pytest.fixture(scope="module")
def conv1d():
    with interpreter() as modules:
        yield modules.conv1d


def inputs(b, c, t, k, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, t, generator=gen).to(dtype)
    weight = torch.randn(c, k, generator=gen).to(dtype)
    bias = torch.randn(c, generator=gen).to(dtype)
    state = torch.randn(b, c, k - 1, generator=gen).to(dtype)
    return x, weight, bias, state


def fp32(*tensors):
    return [None if t is None else t.float() for t in tensors]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_segment_matches_reference(conv1d, shape, dtype):
    b, c, t, k = shape
    x, weight, bias, state = inputs(b, c, t, k, dtype)
    for start in (None, state):
        y, new_state = conv1d.causal_conv1d(x, weight, bias, start)
        y_ref, state_ref = causal_conv1d_ref(*fp32(x, weight, bias, start))
        assert y.dtype == new_state.dtype == dtype
        assert y.shape == (b, c, t) and new_state.shape == (b, c, k - 1)
        assert y.transpose(1, 2).is_contiguous()  # channels-contiguous, as the model reads it
        close(y, y_ref, REL[dtype])
        assert torch.equal(new_state.float(), state_ref)  # the state is a copy of inputs: exact


def test_non_contiguous_input_and_state_without_bias(conv1d):
    x, weight, _, state = inputs(2, 7, 11, 4, torch.float32)
    xt = x.transpose(1, 2).contiguous().transpose(1, 2)  # the model's transposed x|B|C
    st = state.transpose(1, 2).contiguous().transpose(1, 2)
    assert not xt.is_contiguous() and not st.is_contiguous()
    y, new_state = conv1d.causal_conv1d(xt, weight, None, st)
    y_ref, state_ref = causal_conv1d_ref(x, weight, None, state)
    close(y, y_ref, REL[torch.float32])
    assert torch.equal(new_state, state_ref)


def test_segments_equal_one_pass(conv1d):
    x, weight, bias, _ = inputs(2, 9, 20, 4, torch.float32)
    whole, final = causal_conv1d_ref(x, weight, bias)
    state, pieces = None, []
    for lo, hi in [(0, 1), (1, 3), (3, 20)]:
        y, state = conv1d.causal_conv1d(x[:, :, lo:hi], weight, bias, state)
        pieces.append(y)
    close(torch.cat(pieces, dim=-1), whole, REL[torch.float32])
    assert torch.equal(state, final)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("k", [4, 2])
def test_steps_match_a_segment(conv1d, dtype, k):
    x, weight, bias, state = inputs(2, 10, 5, k, dtype)
    y_ref, final_ref = causal_conv1d_ref(*fp32(x, weight, bias, state))
    state = state.clone()
    for i in range(x.shape[-1]):
        y = conv1d.causal_conv1d_step(x[:, :, i], weight, bias, state)
        assert y.dtype == dtype and y.shape == (2, 10)
        close(y, y_ref[:, :, i], REL[dtype])
    assert torch.equal(state.float(), final_ref)


def test_step_without_bias_on_a_strided_token(conv1d):
    x, weight, _, state = inputs(2, 10, 3, 4, torch.float32)
    expected_state = state.clone()
    y = conv1d.causal_conv1d_step(x[:, :, 1], weight, None, state)  # x[:, :, 1] has stride 3
    close(y, causal_conv1d_step_ref(x[:, :, 1], weight, None, expected_state), REL[torch.float32])
    assert torch.equal(state, expected_state)


def test_dispatch_runs_the_kernels_under_the_interpreter(conv1d):
    with kernels.use_backend("triton"):
        for op in ("causal_conv1d", "causal_conv1d_step"):
            assert dispatch.implementation(op, kernels.selected_backend(), "cpu") is getattr(conv1d, op)


@pytest.mark.parametrize("case", ["weight", "state shape", "state strides", "device mix", "dtype"])
def test_bad_inputs_are_clear_errors(conv1d, case):
    x, weight, bias, state = inputs(2, 4, 3, 4, torch.float32)
    with pytest.raises(kernels.KernelError, match=r"^causal_conv1d(_step)?: "):
        if case == "weight":
            conv1d.causal_conv1d(x, weight[:3], bias, state)
        elif case == "state shape":
            conv1d.causal_conv1d(x, weight, bias, state[:, :, :2])
        elif case == "state strides":
            conv1d.causal_conv1d_step(x[:, :, 0], weight, bias, state.transpose(1, 2).contiguous().transpose(1, 2))
        elif case == "device mix":
            conv1d.causal_conv1d(x, weight.to("meta"), bias, state)
        else:
            conv1d.causal_conv1d(x.long(), weight, bias, state)
