"""Cache invariants: full forward == uneven prefill pieces == prefill + decode; save/load."""

import pytest
import torch

import kernels
from inference import CacheMismatchError, HybridModel
from tests.inference.tiny import close


@pytest.fixture(scope="module")
def model(tiny_folder):
    return HybridModel.from_pretrained(tiny_folder, dtype=torch.float32)


@pytest.fixture(scope="module")
def ids():
    return torch.randint(3, 320, (2, 72), generator=torch.Generator().manual_seed(4))


def pieces(model, ids, sizes):
    cache = model.new_cache(batch_size=ids.shape[0])
    out, start = [], 0
    for size in sizes:
        out.append(model(ids[:, start : start + size], cache=cache))
        start += size
    return torch.cat(out, dim=1), cache


def test_full_forward_equals_uneven_prefill_and_decode(model, ids):
    full = model(ids)
    chunked, cache = pieces(model, ids, [1, 7, 64])
    close(chunked, full)
    assert cache.length == 72 and torch.equal(cache.token_ids, ids)
    decoded, _ = pieces(model, ids, [20] + [1] * 52)
    close(decoded, full)


@pytest.mark.parametrize("name", ["dense-attn-first", "dense-all-attention-rope", "moe-attn-first-g2"])
def test_cache_invariants_hold_across_the_matrix(name, tiny_folders, ids):
    model = HybridModel.from_pretrained(tiny_folders[name], dtype=torch.float32)
    full = model(ids[:, :40])
    close(pieces(model, ids[:, :40], [3, 17, 1, 1, 18])[0], full)


def test_padded_batch_continues_through_the_cache(model):
    gen = torch.Generator().manual_seed(5)
    short, long = torch.randint(3, 320, (1, 5), generator=gen), torch.randint(3, 320, (1, 12), generator=gen)
    batch = torch.cat([torch.cat([torch.zeros(1, 7, dtype=torch.long), short], dim=1), long])
    mask = torch.ones_like(batch)
    mask[0, :7] = 0
    cache = model.new_cache(batch_size=2)
    model(batch, cache=cache, attention_mask=mask)
    step = torch.tensor([[11], [12]])
    batched = model(step, cache=cache, last_only=True)
    for row, (prompt, token) in enumerate([(short, 11), (long, 12)]):
        alone = model(torch.cat([prompt, torch.tensor([[token]])], dim=1), last_only=True)
        close(batched[row], alone[0])


def test_saved_and_loaded_cache_gives_identical_next_logits(model, ids, tmp_path):
    cache = model.new_cache(batch_size=2)
    model(ids[:, :30], cache=cache)
    cache.save(tmp_path / "state.safetensors")
    loaded = model.load_cache(tmp_path / "state.safetensors")
    assert loaded.length == 30 and torch.equal(loaded.token_ids, ids[:, :30])
    expected = model(ids[:, 30:33], cache=cache)
    assert torch.equal(model(ids[:, 30:33], cache=loaded), expected)
    assert torch.equal(model(ids[:, 33:34], cache=loaded), model(ids[:, 33:34], cache=cache))


def test_cache_file_from_another_model_or_dtype_is_refused(model, tiny_folders, tmp_path):
    cache = model.new_cache()
    model(torch.tensor([[5, 6, 7]]), cache=cache)
    cache.save(tmp_path / "state.safetensors")
    other = HybridModel.from_pretrained(tiny_folders["moe-attn-last-untied-rope"], dtype=torch.float32)
    with pytest.raises(CacheMismatchError, match=r"state.safetensors: cache layer_types is 'mam'"):
        other.load_cache(tmp_path / "state.safetensors")
    same_layout = HybridModel.from_pretrained(tiny_folders["dense-attn-first"], dtype=torch.float32)
    cache = same_layout.new_cache()
    same_layout(torch.tensor([[5]]), cache=cache)
    cache.save(tmp_path / "dense.safetensors")
    with pytest.raises(CacheMismatchError, match="cache dtype is 'float32' but this model needs 'bfloat16'"):
        HybridModel.from_pretrained(tiny_folders["dense-attn-first"], dtype=torch.bfloat16).load_cache(
            tmp_path / "dense.safetensors")
    with pytest.raises(CacheMismatchError, match="cache model is"):
        HybridModel.from_pretrained(tiny_folders["moe-attn-first-g2"], dtype=torch.float32).load_cache(
            tmp_path / "dense.safetensors")
    with pytest.raises(CacheMismatchError, match="missing.safetensors: not a readable cache file"):
        model.load_cache(tmp_path / "missing.safetensors")


def test_copy_is_independent(model, ids):
    cache = model.new_cache(batch_size=2)
    model(ids[:, :10], cache=cache)
    twin = cache.copy(headroom=8)
    model(ids[:, 10:20], cache=twin)
    assert cache.length == 10 and twin.length == 20
    close(model(ids[:, 10:11], cache=cache), model(ids[:, :11])[:, 10:])


def test_reference_kernels_give_the_same_model_output(model, ids):
    fast = model(ids[:, :24])
    with kernels.use_backend("reference"):
        slow = model(ids[:, :24])
    close(fast, slow, rel=1e-5)
