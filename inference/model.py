"""The Granite 4.0 hybrid model (GraniteMoeHybridForCausalLM), reading like the equations:

    x = embed_tokens[ids] * embedding_multiplier
    per layer:  x = x + mixer(norm(x)) * residual_multiplier        (mixer: Mamba-2 or attention)
                x = x + (shared_mlp + MoE)(norm(x)) * residual_multiplier
    logits = lm_head(norm(x)) / logits_scaling
"""

import dataclasses
import json
from pathlib import Path

import torch
from torch import nn

import kernels
from inference import checkpoint
from inference.attention import Attention, AttentionInputs, attention_inputs
from inference.cache import HybridCache, LayerState, MambaState
from inference.config import MAMBA, HybridConfig
from inference.errors import CheckpointError, InferenceError
from inference.layers import Linear, MoE, RMSNorm, SharedMLP
from inference.mamba import Mamba2Mixer
from kernels.layer import ExpertsStep, LayerRun, LayerStep
from kernels.matmul import compute_dtype, linear

# Tokens per forward pass when a longer input is read in pieces. Peak memory is the weights, the
# KV cache and a working set that grows with this. Measured on h-350m bf16 reading 4K tokens on
# one thread (BENCHMARKS.md, chunk sizes): 77 / 77 / 66 / 65 tokens per CPU-second and a working
# set of 0.13 / 0.22 / 0.33 / 0.34 GB with pieces of 512 / 1024 / 2048 / 4096; 1024 is as fast
# as 512 in half the calls; larger pieces were slower.
PREFILL_CHUNK = 1024


class DecoderLayer(nn.Module):
    def __init__(self, config: HybridConfig, kind: str):
        super().__init__()
        self.residual_multiplier = config.residual_multiplier
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        if kind == MAMBA:
            self.mamba = Mamba2Mixer(config)
        else:
            self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.shared_mlp = SharedMLP(config.hidden_size, config.shared_intermediate_size)
        self.block_sparse_moe = MoE(config) if config.has_experts else None
        self._step: LayerStep | None = None  # see _decode_step
        self.register_load_state_dict_post_hook(_forget_step_after_load)

    def forward(self, x: torch.Tensor, state: LayerState | None, pad: torch.Tensor | None,
                attention: AttentionInputs) -> torch.Tensor:
        if x.shape[1] == 1 and state is not None and self._decodes_in_one_op(attention):
            return kernels.layer_step(x, self._decode_step(), self._decode_state(state))
        h = self.input_layernorm(x)
        h = self.mamba(h, state, pad) if hasattr(self, "mamba") else self.self_attn(h, state, attention)
        norm = self.post_attention_layernorm
        x, h = kernels.add_rms_norm(x, h, self.residual_multiplier, norm.weight, norm.eps)  # x += h * m; h = norm(x)
        ffn = self.shared_mlp(h)
        if self.block_sparse_moe is not None:
            ffn = self.block_sparse_moe(h) + ffn
        return torch.add(x, ffn, alpha=self.residual_multiplier)

    def _decodes_in_one_op(self, attention: AttentionInputs) -> bool:
        """Whether a decoded token takes `kernels.layer_step` (one C call per layer on a CPU): not in
        attention with padding or RoPE (the layer-by-op path does those)."""
        return hasattr(self, "mamba") or (attention.key_bias is None and attention.rope is None)

    def _decode_state(self, state: LayerState):
        """The state as `kernels.layer_step` takes it (an attention layer's cache gains the token's slot)."""
        return (state.conv, state.ssm) if isinstance(state, MambaState) else state.decode_slot()

    def _decode_step(self) -> LayerStep:
        """The parameters a decoded token reads, gathered once and kept (with them the C kernel's
        checked arguments, kernels/layer_native.py: ~100 us per layer and token otherwise); dropped
        when the layer's parameters are converted (`.to()`, `.float()`) or loaded."""
        if self._step is None or not self._step_is_current():
            mixer = self.mamba.decode_step() if hasattr(self, "mamba") else self.self_attn.decode_step()
            moe, experts = self.block_sparse_moe, None
            if moe is not None:
                experts = ExpertsStep(moe.router.layer.weight, moe.input_linear.weight, moe.output_linear.weight,
                                      moe.top_k)
            self._step = LayerStep(self.input_layernorm.weight, self.post_attention_layernorm.weight,
                                   self.input_layernorm.eps, self.residual_multiplier, mixer,
                                   self.shared_mlp.input_linear.weight, self.shared_mlp.output_linear.weight, experts)
        return self._step

    def _step_is_current(self) -> bool:
        """The kept step holds the parameters themselves (a conversion swaps their storage under it,
        which kernels/layer_native.py notices) except the Mamba conv taps, a view: check that one."""
        return not hasattr(self, "mamba") or self._step.mixer.conv.data_ptr() == self.mamba.conv1d.weight.data_ptr()

    def _forget_step(self) -> None:
        self._step = None

    def _apply(self, fn, *args, **kwargs):
        self._forget_step()
        return super()._apply(fn, *args, **kwargs)


def _forget_step_after_load(layer: DecoderLayer, incompatible_keys) -> None:
    layer._forget_step()  # (a module-level function: a model with this hook still pickles)


class Backbone(nn.Module):
    """Embedding, decoder layers and final norm (checkpoint prefix `model.`)."""

    def __init__(self, config: HybridConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config, kind) for kind in config.layer_types)
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class HybridModel(nn.Module):
    """`model(input_ids, cache=None, last_only=False, attention_mask=None)` -> float32 logits.

    input_ids [b, t] int. Without a cache the call sees only these tokens; with one it continues
    from and updates it. attention_mask [b, t] (1 = token, 0 = left padding) covers the new
    tokens only; the cache remembers earlier padding. Returns [b, t, vocab], or [b, vocab] for
    the last position with last_only=True (the LM head then runs on that position only).

    Inputs longer than `prefill_chunk` tokens are read in pieces of that many, carrying the states
    (a temporary cache when none is given): memory is then the weights, the KV cache and a
    constant, whatever the length. `progress(done, total)`, if given, is called after each layer of
    each piece (done counts the piece's tokens in proportion to the layers read) and between parts
    of a long attention; it may raise to stop the read, which leaves the cache holding part of a
    piece: discard it.
    """

    def __init__(self, config: HybridConfig, fingerprint: str = "unloaded"):
        super().__init__()
        self.config, self.fingerprint = config, fingerprint
        self.prefill_chunk = PREFILL_CHUNK
        self.model = Backbone(config)
        self.lm_head = None if config.tie_word_embeddings else Linear(config.hidden_size, config.vocab_size, bias=False)
        self._run: LayerRun | None = None  # see _layer_run

    @property
    def dtype(self) -> torch.dtype:
        return self.model.embed_tokens.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.model.embed_tokens.weight.device

    @property
    def compute_dtype(self) -> torch.dtype:
        """The activations' dtype: the weights' own, or fp32 for bf16 weights on a CPU without fast
        bf16 matmuls (see kernels/matmul.py). Caches keep the weights' dtype either way."""
        return compute_dtype(self.dtype, self.device)

    def new_cache(self, batch_size: int = 1) -> HybridCache:
        return HybridCache.empty(self.config, batch_size, self.dtype, self.device, self.fingerprint)

    def load_cache(self, path: str | Path) -> HybridCache:
        """A cache saved by `HybridCache.save`, checked to belong to this model and dtype."""
        return HybridCache.load(path, self.config, self.fingerprint, self.dtype, self.device)

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, cache: HybridCache | None = None, last_only: bool = False,
                attention_mask: torch.Tensor | None = None, progress=None) -> torch.Tensor:
        self._check_inputs(input_ids, cache, attention_mask)
        total = input_ids.shape[1]
        if total <= self.prefill_chunk:
            return self._forward(input_ids, cache, last_only, attention_mask)
        cache = cache if cache is not None else self.new_cache(input_ids.shape[0])
        cache.reserve(cache.length + total)
        pieces = []
        for start in range(0, total, self.prefill_chunk):
            span = slice(start, start + self.prefill_chunk)
            mask = None if attention_mask is None else attention_mask[:, span]
            piece = None if progress is None else _PieceProgress(progress, start, min(span.stop, total), total,
                                                                 self.config.num_hidden_layers)
            pieces.append(self._forward(input_ids[:, span], cache, last_only, mask, piece))
            if last_only:
                pieces = pieces[-1:]
        return pieces[-1] if last_only else torch.cat(pieces, dim=1)

    def _forward(self, input_ids: torch.Tensor, cache: HybridCache | None, last_only: bool,
                 attention_mask: torch.Tensor | None, progress: "_PieceProgress | None" = None) -> torch.Tensor:
        """One pass over input_ids (the tokens of one piece)."""
        past = cache.length if cache is not None else 0
        pad = _padding(attention_mask)
        positions = _positions(cache, pad, input_ids.shape, past, input_ids.device) if self.config.uses_rope else None
        if cache is not None:
            cache.record(input_ids, pad)
        key_bias = cache.key_bias if cache is not None else _additive(pad, self.compute_dtype)
        attention = attention_inputs(self.config, key_bias, positions, self.compute_dtype,
                                     check=None if progress is None else progress.report)
        x = self.model.embed_tokens(input_ids).to(self.compute_dtype) * self.config.embedding_multiplier
        states = cache.layers if cache is not None else [None] * len(self.model.layers)
        mamba_pad = pad if input_ids.shape[1] > 1 else None  # a decoded token is never padding
        layers = self.model.layers
        if input_ids.shape[1] == 1 and cache is not None and all(layer._decodes_in_one_op(attention)
                                                                 for layer in layers):
            x = kernels.layers_step(x, self._layer_run(), [layer._decode_state(s) for layer, s in zip(layers, states)])
            if progress is not None:  # a long input's last piece of one token
                progress.layer_done(len(layers) - 1)
        else:
            for i, (layer, state) in enumerate(zip(layers, states)):
                x = layer(x, state, mamba_pad, attention)
                if progress is not None:
                    progress.layer_done(i)
        if last_only:
            x = x[:, -1]
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return linear(x, head).float().div_(self.config.logits_scaling)

    def _layer_run(self) -> LayerRun:
        """The layers' kept decode steps as one run (`kernels.layers_step`: one C call for all of them
        on a CPU), kept while every layer keeps its step."""
        steps = tuple(layer._decode_step() for layer in self.model.layers)
        if self._run is None or any(kept is not step for kept, step in zip(self._run.steps, steps, strict=True)):
            self._run = LayerRun(steps)
        return self._run

    def _check_inputs(self, ids: torch.Tensor, cache: HybridCache | None, mask: torch.Tensor | None) -> None:
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype.is_floating_point or ids.numel() == 0:
            raise InferenceError(f"input_ids must be a non-empty integer tensor [batch, tokens], got {_describe(ids)}")
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= self.config.vocab_size:
            bad = low if low < 0 else high
            raise InferenceError(f"token id {bad} is out of range for vocab_size {self.config.vocab_size}")
        if cache is not None and cache.batch_size != ids.shape[0]:
            raise InferenceError(f"cache holds batch size {cache.batch_size}, input_ids has {ids.shape[0]}")
        if cache is not None and cache.model_id != self.fingerprint:
            raise InferenceError("cache was made by another model")
        if mask is not None and tuple(mask.shape) != tuple(ids.shape):
            raise InferenceError(f"attention_mask {list(mask.shape)} does not match input_ids {list(ids.shape)}")

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None, device: str | torch.device = "cpu",
                        context_budget: int | None = None) -> "HybridModel":
        """Load a Hugging Face Granite 4.0 H folder (config.json + safetensors).

        dtype: None keeps the checkpoint's stored dtype. context_budget: overrides the default
        (max_position_embeddings) used by prompt-length checks.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise CheckpointError(f"{folder}: not a model folder")
        config = HybridConfig.from_pretrained(folder, context_budget)
        tensors = checkpoint.Tensors(checkpoint.weight_files(folder))
        with torch.device("meta"):
            model = cls(config)
        needed = {name: tuple(p.shape) for name, p in model.named_parameters()}
        allowed = dict(needed)
        if config.tie_word_embeddings and "lm_head.weight" in tensors:
            allowed["lm_head.weight"] = needed["model.embed_tokens.weight"]  # tied: may be stored, is unused
        checkpoint.check_names_and_shapes(folder, tensors, allowed)
        dtype = dtype or tensors["model.embed_tokens.weight"].dtype
        small = compute_dtype(dtype, device)
        # assign=True keeps each tensor as loaded: a memory-mapped view when no cast was needed.
        model.load_state_dict({name: tensors[name].to(device=device, dtype=small if _is_small(name, shape) else dtype)
                               for name, shape in needed.items()}, assign=True, strict=True)
        model.fingerprint = checkpoint.fingerprint(_identity(config), tensors)
        return model.eval().requires_grad_(False)


def _is_small(name: str, shape: tuple[int, ...]) -> bool:
    """Whether a tensor is one no matmul reads: norm weights, biases, A_log, D, the conv taps.

    These are kept in the compute dtype (fp32 for a bf16 model on a CPU without fast bf16, see
    kernels/matmul.py): they meet fp32 activations, and a CPU op whose operands differ in dtype
    first copies the narrower one, which was ~230 copies per decoded token on h-350m. Upcasting
    is exact, so the products are the same; only the gated norm's output, which takes its
    weight's dtype, now reaches out_proj unrounded in prefill. They add under 1 MB to h-350m.
    """
    return len(shape) == 1 or name.endswith(".conv1d.weight")


def _identity(config: HybridConfig) -> bytes:
    fields = dataclasses.asdict(config)
    fields.pop("context_budget")  # a policy, not part of what the model computes
    return json.dumps(fields, sort_keys=True, default=str).encode()


class _PieceProgress:
    """A piece's tokens reported as read layer by layer (in proportion), and again between the
    parts of a long attention: a progress callback that raises to stop a read acts within a layer
    (a fortieth of the piece on h-1b) or an attention part (STOP_BLOCK keys), not after the piece."""

    def __init__(self, progress, start: int, stop: int, total: int, layers: int):
        self.progress, self.start, self.stop, self.total, self.layers = progress, start, stop, total, layers
        self.done = start

    def layer_done(self, i: int) -> None:
        self.done = self.start + (self.stop - self.start) * (i + 1) // self.layers
        self.report()

    def report(self) -> None:
        self.progress(self.done, self.total)


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} {list(value.shape)}"
    return type(value).__name__


def _padding(mask: torch.Tensor | None) -> torch.Tensor | None:
    """The mask as 0/1 floats when it marks any padding, else None (no masking work at all)."""
    if mask is None or bool(mask.all()):
        return None
    return mask.float()


def _additive(pad: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """[b, t] 0 at tokens and -inf at padding (what attention adds to its scores), or None."""
    return None if pad is None else torch.zeros(pad.shape, dtype=dtype, device=pad.device).masked_fill_(pad == 0, -torch.inf)


def _positions(cache: HybridCache | None, pad: torch.Tensor | None, shape, past: int, device) -> torch.Tensor:
    """[b, t] position of each token among its row's real tokens (RoPE only; NoPE ignores it)."""
    if pad is None and (cache is None or cache.attention_mask is None):
        return torch.arange(past, past + shape[1], device=device).expand(shape)
    seen = 0 if cache is None or cache.attention_mask is None else cache.attention_mask.sum(dim=1, keepdim=True)
    real = torch.ones(shape, device=device) if pad is None else pad
    return (seen + real.cumsum(dim=1) - 1).clamp(min=0).long()
