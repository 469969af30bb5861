"""The inference cache: what a forward pass leaves behind so the next call can continue.

Per Mamba layer the conv state (the last d_conv - 1 inputs of x|B|C, model dtype) and the SSM
state (fp32, as transformers 5.23 keeps it); per attention layer the keys and values so far. The
cache also records the token ids it has seen (so a prefix state can be checked against a prompt)
and, for left-padded batches, which positions are real.

File format (safetensors, `HybridCache.save` / `HybridCache.load`), version 1:

| tensor | shape | dtype |
|---|---|---|
| `token_ids` | [batch, tokens] | int64 |
| `attention_mask` (only if any position is padding) | [batch, tokens] | bool |
| `layers.{i}.conv_state` (Mamba layers) | [batch, conv_dim, d_conv - 1] | model dtype |
| `layers.{i}.ssm_state` (Mamba layers) | [batch, n_heads, d_head, d_state] | float32 |
| `layers.{i}.keys`, `layers.{i}.values` (attention layers) | [batch, kv_heads, tokens, head_dim] | model dtype |

Metadata: `format` = "tome.hybrid-cache", `version` = "1", `model` (the model fingerprint:
config + small tensors), `dtype`, `tokens`, `batch_size`, `layer_types` (m/a per layer). Loading
checks all of them against the model and names the file and the first mismatch.
"""

import dataclasses
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from inference.config import ATTENTION, HybridConfig
from inference.errors import CacheMismatchError
from kernels.layer import KVSlot

FORMAT, VERSION = "tome.hybrid-cache", "1"
MIN_CAPACITY = 256  # tokens allocated at first use
GROWTH = 1.25  # storage grows by a quarter when full: appends stay amortised O(1), and a long K/V
# momentarily held twice while it moves (old + new storage) costs 2.25x, not 3x as with doubling


class Growable:
    """A tensor that grows along `dim` inside storage that grows geometrically when full (no per-step cat)."""

    def __init__(self, empty: torch.Tensor, dim: int):
        self._storage, self._dim, self.length = empty, dim, 0

    def append(self, values: torch.Tensor) -> torch.Tensor:
        """Append along `dim` and return a view of everything so far."""
        needed = self.length + values.shape[self._dim]
        if needed > self._storage.shape[self._dim]:
            self._reserve(max(needed, int(GROWTH * self._storage.shape[self._dim]), MIN_CAPACITY))
        self._storage.narrow(self._dim, self.length, values.shape[self._dim]).copy_(values)
        self.length = needed
        return self.view()

    def view(self) -> torch.Tensor:
        return self._storage.narrow(self._dim, 0, self.length)

    def grow(self, count: int) -> torch.Tensor:
        """Count `count` more entries, left for the caller to write, and return a view of all."""
        self.reserve(self.length + count)
        self.length += count
        return self.view()

    def _reserve(self, capacity: int) -> None:
        shape = list(self._storage.shape)
        shape[self._dim] = capacity
        storage = self._storage.new_empty(shape)
        storage.narrow(self._dim, 0, self.length).copy_(self.view())
        self._storage = storage

    def copy(self, headroom: int = 0) -> "Growable":
        twin = Growable(self.view().clone(), self._dim)
        twin.length = self.length
        if headroom:
            twin._reserve(self.length + headroom)
        return twin

    def reserve(self, capacity: int) -> None:
        """Make room for `capacity` entries in all (one allocation when the final size is known)."""
        if capacity > self._storage.shape[self._dim]:
            self._reserve(capacity)

    def empty_twin(self, capacity: int = 0) -> "Growable":
        """An empty Growable of the same layout, with room for `capacity` entries."""
        twin = Growable(self._storage.narrow(self._dim, 0, 0), self._dim)
        if capacity:
            twin._reserve(capacity)
        return twin


@dataclasses.dataclass
class MambaState:
    conv: torch.Tensor  # [batch, conv_dim, d_conv - 1], model dtype
    ssm: torch.Tensor  # [batch, n_heads, d_head, d_state], float32


class KVState:
    """Keys and values of one attention layer: [batch, kv_heads, tokens, head_dim] each.

    Held as segments: first read-only ones shared with the state this one was forked from (the
    questions that continue a document state never duplicate the document's K/V), then this
    layer's own positions in growable storage. Earlier positions are never written again, so a
    shared segment stays valid however the state it came from grows.
    """

    def __init__(self, keys: Growable, values: Growable, shared: tuple[tuple[torch.Tensor, torch.Tensor], ...] = ()):
        self.keys, self.values, self.shared = keys, values, shared

    @classmethod
    def empty(cls, batch: int, kv_heads: int, head_dim: int, dtype: torch.dtype, device) -> "KVState":
        def growable():
            return Growable(torch.empty(batch, kv_heads, 0, head_dim, dtype=dtype, device=device), dim=2)

        return cls(growable(), growable())

    @property
    def length(self) -> int:
        return sum(k.shape[2] for k, _ in self.shared) + self.keys.length

    def append(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Add this call's keys/values after everything so far."""
        self.keys.append(keys)
        self.values.append(values)

    def decode_slot(self) -> KVSlot:
        """The cache as a decoded token's attention reads it, with a position added for the token's
        key and value, which the decode step (`kernels.layer_step`) writes."""
        return KVSlot(self.shared, self.keys.grow(1), self.values.grow(1))

    def reserve(self, tokens: int) -> None:
        """Room for `tokens` positions in all, shared segments included."""
        own = tokens - (self.length - self.keys.length)
        self.keys.reserve(own)
        self.values.reserve(own)

    def segments(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(keys, values) views covering every position so far, in order."""
        own = [(self.keys.view(), self.values.view())] if self.keys.length else []
        return [*self.shared, *own]

    def joined(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All keys and all values as two tensors (a copy when there is more than one segment)."""
        parts = self.segments() or [(self.keys.view(), self.values.view())]
        if len(parts) == 1:
            return parts[0]
        return torch.cat([k for k, _ in parts], dim=2), torch.cat([v for _, v in parts], dim=2)

    def fork(self, headroom: int = 0) -> "KVState":
        """A continuation sharing every position so far, with room for `headroom` new ones."""
        return KVState(self.keys.empty_twin(headroom), self.values.empty_twin(headroom), tuple(self.segments()))


LayerState = MambaState | KVState


class HybridCache:
    """Per-layer states plus the token ids seen; `model(ids, cache=cache)` continues from it."""

    def __init__(self, config: HybridConfig, layers: list[LayerState], token_ids: Growable,
                 valid: Growable | None, model_id: str, dtype: torch.dtype):
        self.config, self.layers, self.model_id, self.dtype = config, layers, model_id, dtype
        self._token_ids, self._valid = token_ids, valid
        self._bias = None if valid is None else _bias_of(valid, dtype)
        # The rendered chat text its token ids encode, when made from one (DocumentCache sets it):
        # a prompt that continues this text then encodes only what it adds.
        self.prompt_text: str | None = None

    @classmethod
    def empty(cls, config: HybridConfig, batch_size: int, dtype: torch.dtype, device, model_id: str) -> "HybridCache":
        layers = [
            KVState.empty(batch_size, config.num_key_value_heads, config.head_dim, dtype, device)
            if kind == ATTENTION
            else MambaState(
                conv=torch.zeros(batch_size, config.mamba_conv_dim, config.mamba_d_conv - 1, dtype=dtype, device=device),
                ssm=torch.zeros(batch_size, config.mamba_n_heads, config.mamba_d_head, config.mamba_d_state,
                                dtype=torch.float32, device=device),
            )
            for kind in config.layer_types
        ]
        ids = Growable(torch.empty(batch_size, 0, dtype=torch.long, device=device), dim=1)
        return cls(config, layers, ids, None, model_id, dtype)

    @property
    def length(self) -> int:
        """Positions processed so far (padding included)."""
        return self._token_ids.length

    @property
    def batch_size(self) -> int:
        return self._token_ids.view().shape[0]

    @property
    def token_ids(self) -> torch.Tensor:
        """[batch, length] the ids processed so far."""
        return self._token_ids.view()

    @property
    def attention_mask(self) -> torch.Tensor | None:
        """[batch, length] True where a position is a real token; None when none is padding."""
        return None if self._valid is None else self._valid.view()

    @property
    def key_bias(self) -> torch.Tensor | None:
        """[batch, length] 0 at real tokens and -inf at padding, in the cache dtype (what attention
        adds to its scores; kept beside the mask so a padded batch never rebuilds it per step)."""
        return None if self._bias is None else self._bias.view()

    def record(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        """Note the ids of a forward call and which of them are padding (the model calls this first)."""
        self.prompt_text = None  # the ids now go beyond that text
        if attention_mask is not None and self._valid is None and not bool(attention_mask.all()):
            past = torch.ones(self.batch_size, self.length, dtype=torch.bool, device=input_ids.device)
            self._valid = Growable(past, dim=1)
            self._valid.length = self.length
            self._bias = _bias_of(self._valid, self.dtype)
        if self._valid is not None:
            new = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
            self._valid.append(new)
            self._bias.append(_additive(new, self.dtype))
        self._token_ids.append(input_ids)

    def reserve(self, tokens: int) -> None:
        """Allocate room for `tokens` positions in all now: growing by doubling would briefly hold
        the old and the new K/V (up to 3x the K/V of a long document) at the worst moment."""
        for state in self.layers:
            if isinstance(state, KVState):
                state.reserve(tokens)
        self._token_ids.reserve(tokens)
        for growable in (self._valid, self._bias):
            if growable is not None:
                growable.reserve(tokens)

    def copy(self, headroom: int = 0) -> "HybridCache":
        """An independent continuation: generation from a saved state leaves the state untouched.

        The Mamba states are copied (they are overwritten in place); the attention K/V so far is
        shared read-only (see KVState), so forking a long document state costs no K/V memory.
        """
        layers = [
            MambaState(state.conv.clone(), state.ssm.clone()) if isinstance(state, MambaState) else state.fork(headroom)
            for state in self.layers
        ]
        valid = None if self._valid is None else self._valid.copy(headroom)
        return HybridCache(self.config, layers, self._token_ids.copy(headroom), valid, self.model_id, self.dtype)

    @property
    def nbytes(self) -> int:
        """Bytes of the states (the used part of the key/value storage, shared segments included)."""
        total = 0
        for state in self.layers:
            tensors = (state.conv, state.ssm) if isinstance(state, MambaState) else sum(state.segments(), ())
            total += sum(t.numel() * t.element_size() for t in tensors)
        return total

    def save(self, path: str | Path, metadata: dict[str, str] | None = None) -> None:
        """Write the cache to a safetensors file; `metadata` adds string fields to the header
        (they cannot replace the ones `load` checks)."""
        tensors = {"token_ids": self.token_ids.contiguous()}
        if self.attention_mask is not None:
            tensors["attention_mask"] = self.attention_mask.contiguous()
        for i, state in enumerate(self.layers):
            if isinstance(state, MambaState):
                tensors[f"layers.{i}.conv_state"] = state.conv.contiguous()
                tensors[f"layers.{i}.ssm_state"] = state.ssm.contiguous()
            else:
                keys, values = state.joined()
                tensors[f"layers.{i}.keys"], tensors[f"layers.{i}.values"] = keys.contiguous(), values.contiguous()
        save_file({name: t.cpu() for name, t in tensors.items()}, str(path), metadata={**(metadata or {}), **self._metadata()})

    def _metadata(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model_id,
            "dtype": str(self.dtype).removeprefix("torch."),
            "tokens": str(self.length),
            "batch_size": str(self.batch_size),
            "layer_types": "".join(kind[0] for kind in self.config.layer_types),
        }

    @classmethod
    def load(cls, path: str | Path, config: HybridConfig, model_id: str, dtype: torch.dtype, device) -> "HybridCache":
        """Read a saved cache, refusing one made by another model, dtype or layout."""
        path = Path(path)
        try:
            with safe_open(str(path), framework="pt", device=str(device)) as file:
                metadata = file.metadata() or {}
                tensors = {name: file.get_tensor(name) for name in file.keys()}
        except Exception as error:  # a missing file or a bad header: name the file either way
            raise CacheMismatchError(f"{path}: not a readable cache file ({error})") from None
        empty = cls.empty(config, 1, dtype, device, model_id)
        expected = dict(empty._metadata(), batch_size=metadata.get("batch_size"), tokens=metadata.get("tokens"))
        for key in ("format", "version", "layer_types", "dtype", "model"):
            if metadata.get(key) != expected[key]:
                raise CacheMismatchError(
                    f"{path}: cache {key} is {metadata.get(key)!r} but this model needs {expected[key]!r}"
                )
        return cls._from_tensors(path, tensors, config, model_id, dtype, int(metadata.get("tokens", -1)))

    @classmethod
    def _from_tensors(cls, path: Path, tensors: dict[str, torch.Tensor], config: HybridConfig,
                      model_id: str, dtype: torch.dtype, tokens: int) -> "HybridCache":
        ids = tensors.get("token_ids")
        if ids is None or ids.dim() != 2 or ids.shape[1] != tokens:
            raise CacheMismatchError(f"{path}: token_ids do not hold the {tokens} tokens the metadata states")
        batch = ids.shape[0]
        reference = cls.empty(config, batch, dtype, ids.device, model_id)
        layers = []
        for i, state in enumerate(reference.layers):
            if isinstance(state, MambaState):
                conv, ssm = (_tensor(path, tensors, f"layers.{i}.{part}", like.shape, like.dtype)
                             for part, like in (("conv_state", state.conv), ("ssm_state", state.ssm)))
                layers.append(MambaState(conv, ssm))
            else:
                shape = (batch, config.num_key_value_heads, tokens, config.head_dim)
                keys, values = (Growable(_tensor(path, tensors, f"layers.{i}.{part}", shape, dtype), dim=2)
                                for part in ("keys", "values"))
                keys.length = values.length = tokens
                layers.append(KVState(keys, values))
        token_ids = Growable(ids, dim=1)
        token_ids.length = tokens
        valid = None
        if "attention_mask" in tensors:
            valid = Growable(_tensor(path, tensors, "attention_mask", tuple(ids.shape), torch.bool), dim=1)
            valid.length = tokens
        return cls(config, layers, token_ids, valid, model_id, dtype)


def _additive(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(valid.shape, dtype=dtype, device=valid.device).masked_fill_(~valid, -torch.inf)


def _bias_of(valid: Growable, dtype: torch.dtype) -> Growable:
    bias = Growable(_additive(valid.view(), dtype), dim=1)
    bias.length = valid.length
    return bias


def _tensor(path: Path, tensors: dict[str, torch.Tensor], name: str, shape, dtype) -> torch.Tensor:
    tensor = tensors.get(name)
    if tensor is None or tuple(tensor.shape) != tuple(shape) or tensor.dtype != dtype:
        found = "missing" if tensor is None else f"{list(tensor.shape)} {tensor.dtype}"
        raise CacheMismatchError(f"{path}: {name} is {found}, expected {list(shape)} {dtype}")
    return tensor
