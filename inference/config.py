"""The model configuration, parsed from a checkpoint's config.json and validated on construction.

Defaults for keys a config.json may omit are transformers' (GraniteMoeHybridConfig), so a file
means the same thing to both. The released checkpoints spell `layer_types` as mamba/attention and
transformers 5.x `save_pretrained` writes linear_attention/full_attention; both are accepted and
normalised to mamba/attention.
"""

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from inference.errors import ConfigError

MODEL_TYPE = "granitemoehybrid"
MAMBA, ATTENTION = "mamba", "attention"
LAYER_TYPE_NAMES = {"mamba": MAMBA, "linear_attention": MAMBA, "attention": ATTENTION, "full_attention": ATTENTION}


@dataclasses.dataclass(frozen=True)
class HybridConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    layer_types: tuple[str, ...]
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int = 11008
    shared_intermediate_size: int = 1024
    num_local_experts: int = 8
    num_experts_per_tok: int = 2
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-6
    embedding_multiplier: float = 1.0
    attention_multiplier: float = 1.0
    residual_multiplier: float = 1.0
    logits_scaling: float = 1.0
    attention_bias: bool = False
    position_embedding_type: str | None = None  # anything but "rope" means no position encoding
    rope_theta: float = 10000.0
    mamba_n_heads: int = 128
    mamba_d_head: int = 0  # 0: derived, mamba_expand * hidden_size / mamba_n_heads
    mamba_d_state: int = 256
    mamba_n_groups: int = 1
    mamba_d_conv: int = 4
    mamba_expand: int = 2
    mamba_chunk_size: int = 256
    mamba_conv_bias: bool = True
    mamba_proj_bias: bool = False
    time_step_limit: tuple[float, float] = (0.0, math.inf)
    tie_word_embeddings: bool = False
    max_position_embeddings: int = 2048
    # Longest prompt + completion Tome will run; defaults to max_position_embeddings. The H
    # models have no position encoding, so a caller may raise it (memory is the real limit).
    context_budget: int = 0
    bos_token_id: int | None = 1
    eos_token_ids: tuple[int, ...] = (2,)
    pad_token_id: int | None = None
    torch_dtype: str | None = None  # the dtype the checkpoint was saved in, if it says

    def __post_init__(self):
        if not self.mamba_d_head and self.mamba_n_heads > 0:
            object.__setattr__(self, "mamba_d_head", self.mamba_expand * self.hidden_size // self.mamba_n_heads)
        if not self.context_budget:
            object.__setattr__(self, "context_budget", self.max_position_embeddings)
        for problem in _problems(self):
            raise ConfigError(problem)

    # Derived sizes, named as in the reference (`../shared/reference/granite-4.0-h.md`).
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def mamba_d_inner(self) -> int:
        return self.mamba_n_heads * self.mamba_d_head

    @property
    def mamba_conv_dim(self) -> int:
        return self.mamba_d_inner + 2 * self.mamba_n_groups * self.mamba_d_state

    @property
    def uses_rope(self) -> bool:
        return self.position_embedding_type == "rope"

    @property
    def has_experts(self) -> bool:
        return self.num_local_experts > 0

    def with_context_budget(self, tokens: int) -> "HybridConfig":
        return dataclasses.replace(self, context_budget=tokens)

    @classmethod
    def from_pretrained(cls, folder: str | Path, context_budget: int | None = None) -> "HybridConfig":
        """Read `folder/config.json` (and the EOS ids of `generation_config.json` beside it)."""
        path = Path(folder) / "config.json"
        raw = _read_json(path)
        generation = Path(folder) / "generation_config.json"
        extra_eos = _as_ids(_read_json(generation).get("eos_token_id")) if generation.is_file() else ()
        try:
            config = cls.from_dict(raw, extra_eos_ids=extra_eos)
            return config if context_budget is None else config.with_context_budget(context_budget)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], extra_eos_ids: tuple[int, ...] = ()) -> "HybridConfig":
        if raw.get("model_type") != MODEL_TYPE:
            raise ConfigError(f"model_type {raw.get('model_type')!r} is not {MODEL_TYPE!r} (Granite 4.0 H)")
        missing = [key for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads") if key not in raw]
        if missing:
            raise ConfigError(f"missing required key(s) {', '.join(missing)}")
        names = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in raw.items() if key in names and value is not None}
        values["layer_types"] = _layer_types(raw)
        values["num_key_value_heads"] = raw.get("num_key_value_heads") or raw["num_attention_heads"]
        values["time_step_limit"] = _time_step_limit(raw.get("time_step_limit"))
        values["rope_theta"] = _rope_theta(raw)
        values["eos_token_ids"] = tuple(dict.fromkeys(_as_ids(raw.get("eos_token_id", 2)) + extra_eos_ids))
        values["torch_dtype"] = raw.get("dtype") or raw.get("torch_dtype")
        if values.get("mamba_d_head") == "auto":
            values["mamba_d_head"] = 0
        return cls(**values)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: not found (a model folder needs config.json beside its weights)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not readable JSON ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def _as_ids(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (value,)


def _layer_types(raw: dict[str, Any]) -> tuple[str, ...]:
    given = raw.get("layer_types") or raw.get("layers_block_type")
    if given is None:  # transformers' default: every layer a Mamba layer
        return (MAMBA,) * raw["num_hidden_layers"]
    unknown = sorted({str(kind) for kind in given} - LAYER_TYPE_NAMES.keys())
    if unknown:
        raise ConfigError(f"layer_types has unknown value(s) {', '.join(unknown)} (expected mamba or attention)")
    return tuple(LAYER_TYPE_NAMES[kind] for kind in given)


def _time_step_limit(value: Any) -> tuple[float, float]:
    if value is None:
        return (0.0, math.inf)

    def number(item: Any) -> float:
        # transformers writes infinity as {"__float__": "Infinity"} to keep the JSON standard
        return float(item["__float__"]) if isinstance(item, dict) else float(item)

    low, high = (number(item) for item in value)
    return (low, high)


def _rope_theta(raw: dict[str, Any]) -> float:
    parameters = raw.get("rope_parameters") or {}
    scaling = raw.get("rope_scaling") or {}
    kind = parameters.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if raw.get("position_embedding_type") == "rope" and kind != "default":
        raise ConfigError(f"rope type {kind!r} is not supported (only the default RoPE)")
    return float(parameters.get("rope_theta", raw.get("rope_theta", 10000.0)))


def _problems(c: HybridConfig):
    """Every way the values cannot describe a runnable model, as messages naming the value."""
    positive = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "shared_intermediate_size", "mamba_d_conv", "mamba_chunk_size", "context_budget"]
    for name in positive:
        if not isinstance(getattr(c, name), int) or getattr(c, name) < 1:
            yield f"{name} = {getattr(c, name)!r} must be a positive integer"
    if len(c.layer_types) != c.num_hidden_layers:
        yield f"layer_types has {len(c.layer_types)} entries but num_hidden_layers = {c.num_hidden_layers}"
    if c.hidden_act != "silu":
        yield f"hidden_act = {c.hidden_act!r} is not supported (Granite 4.0 uses silu)"
    if c.hidden_size % c.num_attention_heads:
        yield f"hidden_size = {c.hidden_size} is not divisible by num_attention_heads = {c.num_attention_heads}"
    if c.num_attention_heads % c.num_key_value_heads:
        yield (f"num_attention_heads = {c.num_attention_heads} is not a multiple of "
               f"num_key_value_heads = {c.num_key_value_heads}")
    if MAMBA in c.layer_types:
        if c.mamba_n_heads < 1 or c.mamba_n_groups < 1 or c.mamba_d_state < 1:
            yield "mamba_n_heads, mamba_n_groups and mamba_d_state must be positive"
        elif c.mamba_d_head * c.mamba_n_heads != c.mamba_expand * c.hidden_size:
            yield (f"mamba_n_heads * mamba_d_head = {c.mamba_n_heads} * {c.mamba_d_head} differs from "
                   f"mamba_expand * hidden_size = {c.mamba_expand * c.hidden_size}")
        elif c.mamba_n_heads % c.mamba_n_groups:
            yield f"mamba_n_heads = {c.mamba_n_heads} is not divisible by mamba_n_groups = {c.mamba_n_groups}"
    if c.num_local_experts < 0 or (c.has_experts and not 1 <= c.num_experts_per_tok <= c.num_local_experts):
        yield (f"num_experts_per_tok = {c.num_experts_per_tok} must be between 1 and "
               f"num_local_experts = {c.num_local_experts}")
    if c.has_experts and c.intermediate_size < 1:
        yield f"intermediate_size = {c.intermediate_size} must be positive"
    if not c.logits_scaling:
        yield "logits_scaling must not be 0 (logits are divided by it)"
    if not c.eos_token_ids:
        yield "eos_token_id is missing"
