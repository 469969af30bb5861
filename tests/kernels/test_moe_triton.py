"""The Triton MoE routing and routed-expert kernels, under the interpreter, against the references."""

import pytest
import torch

import kernels
from kernels import dispatch
from kernels.moe import moe_experts_ref, moe_route, moe_route_ref
from tests.kernels.helpers import close
from tests.kernels.triton_interpreter import interpreter

# fp32: the same products summed in another order. bf16: the kernels multiply the bf16 inputs
# exactly and sum in fp32, but round the SwiGLU activation to bf16 between the two matmuls (as
# the torch path does) and the output once; against an fp32 evaluation that stays within 2e-2.
REL = {torch.float32: 1e-5, torch.bfloat16: 2e-2}

SHAPES = [  # T tokens, H hidden, E experts, I expert width, k
    (1, 16, 4, 8, 2),  # one token
    (33, 24, 8, 12, 3),  # odd widths
    (5, 8, 16, 4, 1),  # more experts than pairs: most experts get no rows
    (150, 40, 3, 20, 2),  # more than one 64-row block per expert
]


@pytest.fixture(scope="module")
def moe():
    with interpreter() as modules:
        yield modules.moe


def routed(T, H, E, I, k, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, H, generator=gen).to(dtype)
    weights, index = moe_route(torch.randn(T, E, generator=gen), k)
    w_in = (torch.randn(E, 2 * I, H, generator=gen) / H**0.5).to(dtype)
    w_out = (torch.randn(E, H, I, generator=gen) / I**0.5).to(dtype)
    return x, index, weights.to(dtype), w_in, w_out


def fp32(*tensors):
    return [t.float() if t.is_floating_point() else t for t in tensors]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_experts_match_dense_reference(moe, shape, dtype):
    T, H, E, I, k = shape
    x, index, weights, w_in, w_out = routed(T, H, E, I, k, dtype)
    out = moe.moe_experts(x, index, weights, w_in, w_out)
    assert out.dtype == dtype and out.shape == (T, H)
    close(out, moe_experts_ref(*fp32(x, index, weights, w_in, w_out)), REL[dtype])


def test_only_routed_experts_run(moe):
    # Experts nobody was routed to hold nan: any computation with them would poison the output.
    x, index, weights, w_in, w_out = routed(6, 8, 6, 4, 2, torch.float32)
    index = index % 3
    index[:, 1] = (index[:, 0] + 1) % 3
    w_in[3:], w_out[3:] = float("nan"), float("nan")
    out = moe.moe_experts(x, index, weights, w_in, w_out)
    assert torch.isfinite(out).all()
    w_in[3:], w_out[3:] = 0, 0
    close(out, moe_experts_ref(x, index, weights, w_in, w_out), REL[torch.float32])


def test_strided_inputs_int32_ids_and_token_slices(moe, monkeypatch):
    x, index, weights, w_in, w_out = routed(40, 24, 5, 12, 2, torch.float32)
    expected = moe_experts_ref(x, index, weights, w_in, w_out)
    xt = x.t().contiguous().t()
    wt = weights.t().contiguous().t()
    w_in_t = w_in.transpose(1, 2).contiguous().transpose(1, 2)
    # Slices of 7 tokens, as a long prefill is processed in bounded scratch memory.
    monkeypatch.setattr(moe, "SCRATCH_BYTES", 7 * 4 * 2 * 24)
    out = moe.moe_experts(xt, index.to(torch.int32), wt, w_in_t, w_out)
    close(out, expected, REL[torch.float32])


@pytest.mark.parametrize("E,k", [(4, 2), (64, 6), (72, 10), (5, 5)])
def test_routing_matches_reference(moe, E, k):
    logits = torch.randn(37, E, generator=torch.Generator().manual_seed(E)).to(torch.bfloat16)
    weights, index = moe.moe_route(logits, k)
    weights_ref, index_ref = moe_route_ref(logits, k)
    assert weights.dtype == torch.float32 and index.dtype == torch.int64
    assert torch.equal(index, index_ref)
    close(weights, weights_ref, 1e-6)  # one fp32 exp and division per weight
    close(weights.sum(dim=-1), torch.ones(37), 1e-6)


def test_routing_ties_go_to_the_lower_expert_id(moe):
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.5, 3.0], [2.0, 2.0, 2.0, 2.0, 2.0]])
    weights, index = moe.moe_route(logits[:, :].t().contiguous().t(), 2)
    assert index.tolist() == [[1, 2], [0, 1]] == moe_route_ref(logits, 2)[1].tolist()
    close(weights, torch.full((2, 2), 0.5), 1e-7)


def test_routing_torch_path_matches_its_reference():
    logits = torch.randn(50, 64, generator=torch.Generator().manual_seed(5))
    weights, index = moe_route(logits, 6)
    weights_ref, index_ref = moe_route_ref(logits, 6)
    assert torch.equal(index, index_ref)
    close(weights, weights_ref, 1e-6)


def test_dispatch_runs_the_kernels_under_the_interpreter(moe):
    with kernels.use_backend("triton"):
        for op in ("moe_route", "moe_experts"):
            assert dispatch.implementation(op, kernels.selected_backend(), "cpu") is getattr(moe, op)


@pytest.mark.parametrize("case", ["k", "w_out shape", "index dtype", "dtype mix"])
def test_bad_inputs_are_clear_errors(moe, case):
    x, index, weights, w_in, w_out = routed(4, 8, 3, 4, 2, torch.float32)
    with pytest.raises(kernels.KernelError, match=r"^moe_(route|experts): "):
        if case == "k":
            moe.moe_route(torch.randn(4, 3), 4)
        elif case == "w_out shape":
            moe.moe_experts(x, index, weights, w_in, w_out[:, :, :3])
        elif case == "index dtype":
            moe.moe_experts(x, index.float(), weights, w_in, w_out)
        else:
            moe.moe_experts(x, index, weights, w_in.bfloat16(), w_out)
