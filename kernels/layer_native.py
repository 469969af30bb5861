"""`layer_step` on a CPU in C (`layer_native.c`, built by `kernels/native.py`): one call per layer;
`layers_step`: one call for all the layers of a decoded token.

Inputs the C code does not take (biases on the MLP or the attention projections, mixed weight
dtypes, fp16, shapes it cannot index) go to the PyTorch path, which composes the dispatched ops.
A layer's weights are checked once and its call's fixed arguments kept with its `LayerStep`
(`_plans`, dropped with it; the model keeps one step per layer): building and checking them
anew was ~100 us of Python per layer and token, a tenth of a decoded token on h-350m. A run of
layers keeps, beside its layers' plans, their calls packed into one array (`_Program`), so a token
re-packs only what changed: the attention layers' caches, which grow.
"""

import ctypes
import itertools
import struct
import threading
import weakref

import torch

from kernels import attention_native, layer, mamba_native, native
from kernels.mamba import MambaStep
from kernels.matmul import compute_dtype

_F32 = torch.float32
_plans: dict[int, tuple] = {}  # each step's plan (or None), kept by `native.kept_plan`
_programs: dict[int, tuple] = {}  # each LayerRun's program (or None), the same way

# The entry points' argument types (native.load's letters), which `tome_layers` takes packed.
MAMBA_LAYER = "ppppppppiffp" + mamba_native.SIGNATURE[1:]
ATTENTION_LAYER = "p" * 13 + "i" + "pp" + "i" * 10 + "fff" + "nnn"


def available() -> bool:
    return _library() is not None


def _library() -> ctypes.CDLL | None:
    return native.load("layer_native", tome_mamba_layer=MAMBA_LAYER, tome_attention_layer=ATTENTION_LAYER,
                       tome_layers="ippp")


def layer_step(x, step: layer.LayerStep, state):
    """Same contract as `kernels.layer.layer_step`."""
    plan = native.kept_plan(_plans, step, lambda: _tensors(step), lambda: _plan(step, x.shape[-1]))
    b, _, hidden = x.shape
    if plan is None or x.dtype != _F32 or not x.is_contiguous() or hidden != plan.hidden:
        return layer.layer_step(x, step, state)
    out = torch.empty(b, 1, hidden)
    scratch = torch.empty(b * plan.scratch_per_row + plan.scratch_extra)
    call, keep = plan.arguments(x, out, scratch, state)  # keep: what the call points into, alive until it ends
    if call is None or plan.function(*call):
        return layer.layer_step(x, step, state)
    return out


def layers_step(x, run: layer.LayerRun, states):
    """Same contract as `kernels.layer.layers_step`."""
    program = native.kept_plan(_programs, run, lambda: [t for step in run.steps for t in _tensors(step)],
                               lambda: _program(run, x.shape[-1]))
    if program is None or x.dtype != _F32 or not x.is_contiguous() or x.shape[-1] != program.hidden:
        return layer.layers_step(x, run, states)
    with program.lock:  # one token at a time through the program's blocks and buffers
        done, out = program.run(x, states)
    for step, state in zip(run.steps[done:], states[done:], strict=True):  # a layer the C code declined
        out = layer_step(out, step, state)
    return out


class _Program:
    """The plans of a run's layers, and their calls packed for `tome_layers`: layer i reads
    buffers[i % 2] and writes buffers[(i + 1) % 2]; all share one scratch. A Mamba layer's call
    is packed again only when its states or the batch size or thread count change; an attention
    layer's, whose cache grows by a position, on every token."""

    def __init__(self, library, plans: "list[_Plan]", hidden: int):
        self.function, self.plans, self.hidden = library.tome_layers, plans, hidden
        self.attention = [plan.function is library.tome_attention_layer for plan in plans]
        self.letters = [ATTENTION_LAYER if attention else MAMBA_LAYER for attention in self.attention]
        ends = list(itertools.accumulate(len(letters) for letters in self.letters))
        starts = [0, *ends[:-1]]
        self.spans = [slice(start, end) for start, end in zip(starts, ends)]
        self.kinds = (ctypes.c_int64 * len(plans))(*self.attention)
        self.offsets = (ctypes.c_int64 * len(plans))(*starts)
        self.packed = (ctypes.c_int64 * ends[-1])()
        self.lock = threading.Lock()
        self.packed_for = None  # (batch, threads) of the Mamba layers' packed calls, with their states:
        self.held: list[tuple] = []  # (layer, conv ref, ssm ref, conv address, ssm address, conv dtype)

    def run(self, x, states) -> tuple[int, torch.Tensor]:
        """(layers done, the output of the last one done)."""
        b = x.shape[0]
        repack = self.packed_for != (b, torch.get_num_threads()) or not self._holds(states)
        if repack and not self._pack_mamba(b, states):
            return 0, x  # states the C code does not take: the per-layer path does every layer
        self.buffers[0].copy_(x)
        tables = []  # the attention layers' segment tables, alive until the call ends
        for i, attention in enumerate(self.attention):
            if attention:
                call, table = self.plans[i].arguments(self.buffers[i % 2], self.buffers[(i + 1) % 2], self.scratch,
                                                      states[i])
                if call is None:
                    return 0, x  # a cache the C code does not take: the per-layer path does every layer
                self.packed[self.spans[i]] = _packed(call, self.letters[i])
                tables.append(table)
        done = self.function(len(self.plans), self.kinds, self.packed, self.offsets)
        return done, self.buffers[done % 2].clone()

    def _holds(self, states) -> bool:
        for i, conv_ref, ssm_ref, conv_address, ssm_address, conv_dtype in self.held:
            conv, ssm = states[i]
            if (conv_ref() is not conv or ssm_ref() is not ssm or conv.data_ptr() != conv_address
                    or ssm.data_ptr() != ssm_address or conv.dtype != conv_dtype):
                return False
        return True

    def _pack_mamba(self, b: int, states) -> bool:
        self.buffers = torch.empty(2, b, 1, self.hidden)
        self.scratch = torch.empty(max(b * plan.scratch_per_row + plan.scratch_extra for plan in self.plans))
        self.packed_for, self.held = None, []
        for i, attention in enumerate(self.attention):
            if attention:
                continue
            conv, ssm = states[i]
            call, _ = self.plans[i].arguments(self.buffers[i % 2], self.buffers[(i + 1) % 2], self.scratch,
                                              (conv, ssm))
            if call is None:
                return False
            self.packed[self.spans[i]] = _packed(call, self.letters[i])
            self.held.append((i, weakref.ref(conv), weakref.ref(ssm), conv.data_ptr(), ssm.data_ptr(), conv.dtype))
        self.packed_for = (b, torch.get_num_threads())
        return True


def _packed(call: list, letters: str) -> list[int]:
    """A call's arguments as `tome_layers` reads them: a float by its bits, None (no tensor) as 0."""
    return [struct.unpack("<I", struct.pack("<f", value))[0] if letter == "f" else value or 0
            for value, letter in zip(call, letters, strict=True)]


def _program(run: layer.LayerRun, hidden: int) -> _Program | None:
    """The run's program, or None when the C code does not take one of its layers."""
    library = _library()
    plans = [native.kept_plan(_plans, step, lambda step=step: _tensors(step), lambda step=step: _plan(step, hidden))
             for step in run.steps]
    if library is None or not plans or any(plan is None for plan in plans):
        return None
    return _Program(library, plans, hidden)


def _tensors(step: layer.LayerStep) -> list[torch.Tensor]:
    """Every tensor of the step, whose addresses a plan holds."""
    mixer = step.mixer
    if isinstance(mixer, MambaStep):
        mixed = [mixer.in_proj, mixer.in_bias, mixer.conv, mixer.conv_bias, mixer.dt_bias, mixer.A_log, mixer.D,
                 mixer.norm, mixer.out_proj, mixer.out_bias]
    else:
        mixed = [mixer.q_proj, mixer.k_proj, mixer.v_proj, mixer.o_proj, *mixer.biases]
    routed = [] if step.experts is None else [step.experts.router, step.experts.w_in, step.experts.w_out]
    return [t for t in (step.input_norm, step.post_norm, step.mlp_in, step.mlp_out, *mixed, *routed) if t is not None]


class _Plan:
    """A layer's C entry point and what its calls share; `arguments` adds a call's own tensors."""

    def __init__(self, function, hidden: int, mlp_scratch: int, scratch_per_row: int, scratch_extra: int, fixed: list,
                 arguments, experts: torch.Tensor | None):
        self.function, self.hidden, self.fixed, self.mlp_scratch = function, hidden, fixed, mlp_scratch
        self.scratch_per_row, self.scratch_extra = scratch_per_row, scratch_extra
        self.experts = experts  # the routed experts' table the calls point to (kept alive here), or None
        self.arguments = lambda x, out, scratch, state: arguments(self, x, out, scratch, state)


def _plan(step: layer.LayerStep, hidden: int) -> _Plan | None:
    """The layer's plan, or None when the C code does not take this layer."""
    library, weights = _library(), step.mlp_in.dtype
    width = step.mlp_out.shape[1] if step.mlp_out.dim() == 2 else 0
    if (library is None or weights not in native.BF16_FLAG or compute_dtype(weights, "cpu") != _F32
            or step.mlp_in.device.type != "cpu" or step.mlp_out.dtype != weights
            or step.mlp_in.shape != (2 * width, hidden) or step.mlp_out.shape != (hidden, width)
            or not all(t.is_contiguous() for t in (step.mlp_in, step.mlp_out))
            or not all(t.dtype == _F32 and t.is_contiguous() and t.shape == (hidden,)
                       for t in (step.input_norm, step.post_norm))):
        return None
    experts = _experts_table(step.experts, hidden, weights)
    if experts is False:
        return None
    # the MLP's scratch: per row, then the routed experts' (tome_attention_layer's is the last of its scratch)
    mlp = [step.input_norm.data_ptr(), step.post_norm.data_ptr(), step.mlp_in.data_ptr(), step.mlp_out.data_ptr()]
    mlp_scratch, routed_scratch = 2 * hidden + 3 * width, 0
    if experts is not None:
        routed_scratch = step.experts.router.shape[0] + 3 * hidden + 3 * step.experts.w_out.shape[2]
    if isinstance(step.mixer, MambaStep):
        mixer = mamba_native.static_arguments(step.mixer, hidden)
        if mixer is None or step.mixer.in_proj.dtype != weights:
            return None
        # the layer's scratch: the MLP's, h, the mixer's output, then the mixer's own
        fixed = [None, None, *mlp, None, 0 if experts is None else experts.data_ptr(), width, step.residual, step.eps]
        plan = _Plan(library.tome_mamba_layer, hidden, mlp_scratch, mlp_scratch + 2 * hidden + mixer.scratch_per_row,
                     routed_scratch + mixer.scratch_extra, fixed, _mamba_arguments, experts)
        plan.mixer, plan.routed_scratch = mixer, routed_scratch
        return plan
    return _attention_plan(library, step, hidden, width, weights, mlp, mlp_scratch, experts, routed_scratch)


def _experts_table(experts: layer.ExpertsStep | None, hidden: int, weights: torch.dtype):
    """The C code's table of a MoE layer's routed experts (router, w_in and w_out addresses, their
    count, width, k), None for a dense layer, False when the C code does not take them."""
    if experts is None:
        return None
    count, width2 = experts.w_in.shape[0], experts.w_in.shape[1]
    tensors = (experts.router, experts.w_in, experts.w_out)
    if (not all(t.dtype == weights and t.device.type == "cpu" and t.is_contiguous() for t in tensors)
            or experts.router.shape != (count, hidden) or experts.w_in.shape != (count, width2, hidden)
            or width2 % 2 or experts.w_out.shape != (count, hidden, width2 // 2)
            or (width2 // 2) % 8 or not 1 <= experts.top_k <= min(count, 64)):
        return False
    return torch.tensor([t.data_ptr() for t in tensors] + [count, width2 // 2, experts.top_k], dtype=torch.int64)


def _mamba_arguments(plan: _Plan, x, out, scratch, state) -> tuple[list | None, None]:
    b, hidden = x.shape[0], plan.hidden
    sizes = [b * plan.mlp_scratch + plan.routed_scratch, b * hidden, b * hidden]
    _, h, mixed, rest = scratch.split([*sizes, scratch.numel() - sum(sizes)])
    call = mamba_native.arguments(plan.mixer, h.view(b, 1, hidden), *state, mixed.view(b, 1, hidden), rest)
    if call is None:
        return None, None
    fixed = list(plan.fixed)
    fixed[0], fixed[1], fixed[6] = x.data_ptr(), out.data_ptr(), scratch.data_ptr()
    return fixed + call, None


def _attention_plan(library, step, hidden, width, weights, mlp, mlp_scratch, experts, routed_scratch) -> _Plan | None:
    mixer = step.mixer
    d, nkv = mixer.head_dim, mixer.kv_heads
    projections = (mixer.q_proj, mixer.k_proj, mixer.v_proj, mixer.o_proj)
    if (any(bias is not None for bias in mixer.biases) or nkv == 0 or mixer.heads % nkv
            or not all(w.dtype == weights and w.is_contiguous() for w in projections)
            or mixer.q_proj.shape != (mixer.heads * d, hidden) or mixer.o_proj.shape != (hidden, mixer.heads * d)
            or mixer.k_proj.shape != (nkv * d, hidden) or mixer.v_proj.shape != (nkv * d, hidden)):
        return None
    group = mixer.heads // nkv
    fixed = [None, None, *mlp, *(w.data_ptr() for w in projections)]
    # per row, as tome_attention_layer lays it out: h, q, k, v, the attended, lse, the mixer's output, the MLP's
    scratch = 2 * hidden + 2 * nkv * group * d + 2 * nkv * d + nkv * group + mlp_scratch
    plan = _Plan(library.tome_attention_layer, hidden, mlp_scratch, scratch, routed_scratch, fixed,
                 _attention_arguments, experts)
    plan.sizes = (nkv, group, d, width)
    plan.scalars = (mixer.scale, step.residual, step.eps, native.BF16_FLAG[weights])
    return plan


def _attention_arguments(plan: _Plan, x, out, scratch, slot: layer.KVSlot) -> tuple[list | None, torch.Tensor | None]:
    b, hidden = x.shape[0], plan.hidden
    nkv, group, d, width = plan.sizes
    cache = slot.keys.dtype
    if cache not in native.BF16_FLAG or slot.keys.shape[:2] != (b, nkv) or slot.keys.shape[3] != d:
        return None, None
    table = attention_native.segment_table([*slot.earlier, (slot.keys, slot.values)])
    if table is None:
        return None, None
    new_key, new_value = slot.keys[:, :, -1], slot.values[:, :, -1]  # [b, nkv, d]: the new position
    scale, residual, eps, weights_bf16 = plan.scalars
    call = list(plan.fixed)
    call[0], call[1] = x.data_ptr(), out.data_ptr()
    experts = 0 if plan.experts is None else plan.experts.data_ptr()
    return call + [new_key.data_ptr(), new_value.data_ptr(), table.data_ptr(), table.shape[0], scratch.data_ptr(),
                   experts, b, hidden, nkv, group, d, width, *new_key.stride()[:2], *new_value.stride()[:2], scale,
                   residual, eps, weights_bf16, native.BF16_FLAG[cache], torch.get_num_threads()], table
