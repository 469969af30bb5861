"""Causal conv1d (segment and single step) against the explicit tap sum."""

import pytest
import torch

from kernels import conv1d_native
from kernels.conv1d import causal_conv1d, causal_conv1d_ref, causal_conv1d_step, causal_conv1d_step_ref
from tests.kernels.helpers import close

# fp32: identical products summed in a different order. bf16: both compute in bf16, where one
# rounding step of the output is 2^-8 relative.
REL = {torch.float32: 1e-6, torch.bfloat16: 1e-2}


def inputs(b, c, t, k, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, t, generator=gen).to(dtype)
    weight = torch.randn(c, k, generator=gen).to(dtype)
    bias = torch.randn(c, generator=gen).to(dtype)
    state = torch.randn(b, c, k - 1, generator=gen).to(dtype)
    return x, weight, bias, state


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("b,c,t,k", [(1, 8, 1, 4), (2, 13, 9, 4), (1, 6, 2, 4), (2, 5, 17, 3)])
def test_segment_matches_reference(b, c, t, k, dtype):
    x, weight, bias, state = inputs(b, c, t, k, dtype)
    for start in (None, state):
        y, new_state = causal_conv1d(x, weight, bias, start)
        y_ref, new_state_ref = causal_conv1d_ref(x, weight, bias, start)
        assert y.dtype == dtype and y.shape == (b, c, t) and new_state.shape == (b, c, k - 1)
        close(y, y_ref, REL[dtype])
        assert torch.equal(new_state, new_state_ref)


def test_state_is_the_last_inputs_even_for_short_segments():
    x, weight, bias, state = inputs(1, 4, 2, 4, torch.float32)
    _, new_state = causal_conv1d(x, weight, bias, state)
    assert torch.equal(new_state, torch.cat([state[:, :, 2:], x], dim=-1))
    _, from_zero = causal_conv1d(x, weight, None, None)
    assert torch.equal(from_zero, torch.cat([torch.zeros(1, 4, 1), x], dim=-1))


def test_non_contiguous_input_and_no_bias():
    x, weight, _, state = inputs(2, 7, 11, 4, torch.float32)
    xt = x.transpose(1, 2).contiguous().transpose(1, 2)
    assert not xt.is_contiguous()
    y, _ = causal_conv1d(xt, weight, None, state)
    y_ref, _ = causal_conv1d_ref(x, weight, None, state)
    close(y, y_ref, REL[torch.float32])


def test_segments_equal_one_pass():
    x, weight, bias, _ = inputs(2, 9, 20, 4, torch.float32)
    whole, final = causal_conv1d(x, weight, bias)
    state, pieces = None, []
    for lo, hi in [(0, 1), (1, 3), (3, 20)]:
        y, state = causal_conv1d(x[:, :, lo:hi], weight, bias, state)
        pieces.append(y)
    close(torch.cat(pieces, dim=-1), whole, REL[torch.float32])
    assert torch.equal(state, final)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("step", [causal_conv1d_step, causal_conv1d_step_ref, conv1d_native.causal_conv1d_step])
def test_steps_match_a_segment(step, dtype):
    x, weight, bias, state = inputs(2, 10, 6, 4, dtype)
    y_ref, final_ref = causal_conv1d_ref(x, weight, bias, state)
    state = state.clone()
    for i in range(x.shape[-1]):
        close(step(x[:, :, i], weight, bias, state), y_ref[:, :, i], REL[dtype])
    assert torch.equal(state, final_ref)


@pytest.mark.parametrize("step", [causal_conv1d_step, causal_conv1d_step_ref])
def test_step_reads_bf16_taps_in_fp32(step):
    # What a bf16 model decoding with fp32 activations passes: the stored taps and a bf16 state.
    # Same as the reference given the taps cast to fp32 (the state rounds each input to bf16).
    x, weight, bias, state = inputs(2, 7, 6, 4, torch.float32)
    weight, bias, state = weight.bfloat16(), bias.bfloat16(), state.bfloat16()
    state_ref = state.clone()
    for i in range(x.shape[-1]):
        y = step(x[:, :, i], weight, bias, state)
        y_ref = causal_conv1d_step_ref(x[:, :, i], weight.float(), bias.float(), state_ref)
        assert y.dtype == torch.float32
        close(y, y_ref, REL[torch.float32])
    assert torch.equal(state, state_ref)


@pytest.mark.parametrize("state_dtype", [torch.float32, torch.bfloat16])
def test_c_step_with_fp32_taps_and_a_bf16_or_fp32_state(state_dtype):
    # What a bf16 model decodes with on a CPU: fp32 activations and taps (kept in the compute
    # dtype), the state in the model's dtype, rounded to nearest even as each input shifts in.
    x, weight, bias, state = inputs(2, 9, 40, 4, torch.float32)
    state = state.to(state_dtype)
    state_ref = state.clone()
    for i in range(x.shape[-1]):
        y = conv1d_native.causal_conv1d_step(x[:, :, i].contiguous(), weight, bias, state)
        y_ref = causal_conv1d_step_ref(x[:, :, i], weight, bias, state_ref)
        assert y.dtype == torch.float32
        close(y, y_ref, REL[torch.float32])
    assert torch.equal(state, state_ref)
