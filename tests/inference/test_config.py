"""config.json parsing: both layer_types spellings, defaults, budget, and clear errors."""

import json
import math

import pytest

from inference import ConfigError, HybridConfig

RELEASED_350M = {  # h-350m as the reference gives it, in the released spelling
    "model_type": "granitemoehybrid", "vocab_size": 100352, "hidden_size": 768, "num_hidden_layers": 32,
    "layer_types": ["attention" if i in (10, 13, 17, 27) else "mamba" for i in range(32)],
    "num_attention_heads": 12, "num_key_value_heads": 4, "mamba_n_heads": 48, "mamba_d_head": 32,
    "mamba_d_state": 128, "mamba_n_groups": 1, "mamba_d_conv": 4, "mamba_expand": 2, "mamba_chunk_size": 256,
    "num_local_experts": 0, "num_experts_per_tok": 0, "intermediate_size": 2048, "shared_intermediate_size": 2048,
    "max_position_embeddings": 32768, "position_embedding_type": "nope", "embedding_multiplier": 12,
    "attention_multiplier": 0.015625, "residual_multiplier": 0.246, "logits_scaling": 3, "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True, "bos_token_id": 100257, "eos_token_id": 100257, "pad_token_id": 100256,
}


def write(folder, raw):
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(raw))
    return folder


def test_released_spelling_and_derived_sizes(tmp_path):
    config = HybridConfig.from_pretrained(write(tmp_path, RELEASED_350M))
    assert config.layer_types.count("attention") == 4 and config.layer_types[10] == "attention"
    assert (config.head_dim, config.mamba_d_inner, config.mamba_conv_dim) == (64, 1536, 1792)
    assert config.context_budget == 32768 and not config.uses_rope and not config.has_experts
    assert config.eos_token_ids == (100257,)


def test_transformers_spelling_and_infinity_encoding(tmp_path):
    raw = dict(RELEASED_350M, layer_types=["full_attention" if t == "attention" else "linear_attention"
                                            for t in RELEASED_350M["layer_types"]],
               time_step_limit=[0.0, {"__float__": "Infinity"}], mamba_d_head="auto")
    config = HybridConfig.from_pretrained(write(tmp_path, raw))
    assert config.layer_types == HybridConfig.from_dict(RELEASED_350M).layer_types
    assert config.time_step_limit == (0.0, math.inf) and config.mamba_d_head == 32


def test_context_budget_override_and_generation_eos(tmp_path):
    folder = write(tmp_path, RELEASED_350M)
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [100257, 100265]}))
    config = HybridConfig.from_pretrained(folder, context_budget=200_000)
    assert config.context_budget == 200_000 and config.max_position_embeddings == 32768
    assert config.eos_token_ids == (100257, 100265)


@pytest.mark.parametrize("change,message", [
    ({"model_type": "llama"}, "model_type 'llama' is not 'granitemoehybrid'"),
    ({"layer_types": ["mamba"] * 31 + ["sliding"]}, "layer_types has unknown value(s) sliding"),
    ({"layer_types": ["mamba"] * 30}, "layer_types has 30 entries but num_hidden_layers = 32"),
    ({"num_key_value_heads": 5}, "num_attention_heads = 12 is not a multiple of num_key_value_heads = 5"),
    ({"mamba_d_head": 30}, "mamba_n_heads * mamba_d_head = 48 * 30 differs from mamba_expand * hidden_size = 1536"),
    ({"hidden_act": "gelu"}, "hidden_act = 'gelu' is not supported"),
    ({"num_local_experts": 4, "num_experts_per_tok": 6}, "num_experts_per_tok = 6 must be between 1 and"),
    ({"hidden_size": None}, "missing required key(s) hidden_size"),
])
def test_bad_values_are_named(tmp_path, change, message):
    raw = {k: v for k, v in dict(RELEASED_350M, **change).items() if v is not None}
    with pytest.raises(ConfigError) as error:
        HybridConfig.from_pretrained(write(tmp_path, raw))
    assert message in str(error.value) and "config.json" in str(error.value)


def test_missing_and_broken_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"config.json: not found"):
        HybridConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"config.json: not readable JSON"):
        HybridConfig.from_pretrained(tmp_path)


def test_zero_budget_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="context_budget = -1 must be a positive integer"):
        HybridConfig.from_pretrained(write(tmp_path, RELEASED_350M), context_budget=-1)
