"""Loading checkpoints: sharded, tied, dtype casts, memory mapping, and every bad folder."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from inference import CheckpointError, ConfigError, HybridModel
from tests.inference.tiny import close


def copy(folder, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


def test_sharded_checkpoint_loads_like_the_single_file(tiny_folder, tmp_path):
    folder = copy(tiny_folder, tmp_path)
    tensors = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, shard_names in shards.items():
        save_file({name: tensors[name] for name in shard_names}, folder / shard)
    weight_map = {name: shard for shard, shard_names in shards.items() for name in shard_names}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    ids = torch.tensor([[5, 9, 33, 2, 7]])
    single = HybridModel.from_pretrained(tiny_folder, dtype=torch.float32)
    sharded = HybridModel.from_pretrained(folder, dtype=torch.float32)
    close(sharded(ids), single(ids), rel=1e-6)  # bit-equality is not promised: alignment can pick other BLAS paths
    assert sharded.fingerprint == single.fingerprint


def test_tied_checkpoint_that_also_stores_lm_head(tiny_folders, tmp_path):
    folder = copy(tiny_folders["dense-attn-first"], tmp_path)
    tensors = load_file(folder / "model.safetensors")
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
    save_file(tensors, folder / "model.safetensors")
    model = HybridModel.from_pretrained(folder, dtype=torch.float32)
    assert model.lm_head is None
    ids = torch.tensor([[4, 5, 6]])
    assert torch.equal(model(ids), HybridModel.from_pretrained(tiny_folders["dense-attn-first"], dtype=torch.float32)(ids))


def test_dtype_cast_and_default_dtype(tiny_folder, tmp_path):
    assert HybridModel.from_pretrained(tiny_folder).dtype == torch.float32  # the stored dtype
    model = HybridModel.from_pretrained(tiny_folder, dtype=torch.bfloat16)
    matrices = {p.dtype for p in model.parameters() if p.dim() > 1 and p.shape[1] > 1}  # not the conv taps [c, 1, k]
    assert matrices == {torch.bfloat16}
    # Vectors and conv taps take the compute dtype: fp32 where this CPU has no fast bf16 products.
    assert {p.dtype for name, p in model.named_parameters() if p.dim() == 1 or "conv1d" in name} == {model.compute_dtype}
    assert model(torch.tensor([[3, 4]])).dtype == torch.float32  # logits are always float32


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's /proc/self/maps")
def test_weights_stay_memory_mapped(tiny_folder):
    # Loaded in the stored dtype, a weight points into the mapped file rather than into a copy.
    model = HybridModel.from_pretrained(tiny_folder, dtype=torch.float32)
    regions = [line.split()[0].split("-") for line in Path("/proc/self/maps").read_text().splitlines()
               if line.endswith(str(tiny_folder / "model.safetensors"))]
    address = model.model.embed_tokens.weight.data_ptr()
    assert any(int(low, 16) <= address < int(high, 16) for low, high in regions)


def test_folder_without_config_or_weights(tmp_path, tiny_folder):
    with pytest.raises(CheckpointError, match="nowhere: not a model folder"):
        HybridModel.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="config.json: not found"):
        HybridModel.from_pretrained(tmp_path)
    folder = tmp_path / "no-weights"
    folder.mkdir()
    shutil.copy(tiny_folder / "config.json", folder)
    with pytest.raises(CheckpointError, match="no-weights: no weights found"):
        HybridModel.from_pretrained(folder)


def test_pickle_checkpoint_is_refused_with_the_reason(tmp_path, tiny_folder):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(tiny_folder / "config.json", folder)
    torch.save({"x": torch.zeros(1)}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin: refusing a pickle checkpoint, because loading "
                                              r"pickle can execute arbitrary code"):
        HybridModel.from_pretrained(folder)


def test_different_model_type_is_named(tmp_path, tiny_folder):
    folder = copy(tiny_folder, tmp_path)
    raw = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(raw, model_type="mamba2")))
    with pytest.raises(ConfigError, match="model_type 'mamba2' is not 'granitemoehybrid'"):
        HybridModel.from_pretrained(folder)


def test_missing_unexpected_and_misshaped_tensors_are_all_named(tmp_path, tiny_folder):
    folder = copy(tiny_folder, tmp_path)
    tensors = load_file(folder / "model.safetensors")
    del tensors["model.layers.0.mamba.D"]
    tensors["model.layers.0.mamba.extra"] = torch.zeros(2)
    tensors["model.norm.weight"] = torch.zeros(65)
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(CheckpointError) as error:
        HybridModel.from_pretrained(folder)
    message = str(error.value)
    assert "\n" not in message and "weights do not match config.json" in message
    assert "1 missing: model.layers.0.mamba.D" in message
    assert "1 unexpected: model.layers.0.mamba.extra" in message
    assert "1 mis-shaped: model.norm.weight [65] (config needs [64])" in message


def test_bad_token_ids_are_named(tiny_folder):
    from inference import InferenceError

    model = HybridModel.from_pretrained(tiny_folder)
    with pytest.raises(InferenceError, match="token id 320 is out of range for vocab_size 320"):
        model(torch.tensor([[5, 320]]))
    with pytest.raises(InferenceError, match="token id -1 is out of range"):
        model(torch.tensor([[-1, 5]]))
    with pytest.raises(InferenceError, match="input_ids must be a non-empty integer tensor"):
        model(torch.tensor([[0.5]]))
