"""Our fp32 logits against transformers' over the config matrix, batch 1 and 2, with padding."""

import pytest
import torch

from inference import HybridModel
from tests.inference.tiny import MATRIX, close, reference

NAMES = [tiny.name for tiny in MATRIX]


@pytest.mark.parametrize("name", NAMES)
def test_logits_match_transformers(name, tiny_folders):
    folder = tiny_folders[name]
    ours = HybridModel.from_pretrained(folder, dtype=torch.float32)
    ref = reference(folder)
    ids = torch.randint(3, 320, (2, 21), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ref(ids).logits
    logits = ours(ids)
    assert logits.shape == (2, 21, 320) and logits.dtype == torch.float32
    close(logits, expected)
    close(ours(ids[:1]), expected[:1])  # batch 1
    close(ours(ids, last_only=True), expected[:, -1])


@pytest.mark.parametrize("name", ["moe-attn-last-untied-rope", "dense-attn-first"])
def test_left_padded_batch_equals_single_prompts(name, tiny_folders):
    model = HybridModel.from_pretrained(tiny_folders[name], dtype=torch.float32)
    gen = torch.Generator().manual_seed(2)
    short, long = torch.randint(3, 320, (1, 9), generator=gen), torch.randint(3, 320, (1, 30), generator=gen)
    batch = torch.cat([torch.cat([torch.zeros(1, 21, dtype=torch.long), short], dim=1), long])
    mask = torch.ones_like(batch)
    mask[0, :21] = 0
    logits = model(batch, attention_mask=mask)
    close(logits[0, 21:], model(short)[0])
    close(logits[1], model(long)[0])
    assert torch.isfinite(logits).all()


def test_padded_batch_matches_transformers_at_real_positions(tiny_folders):
    folder = tiny_folders["dense-attn-last-g2-untied"]  # NoPE: positions do not depend on padding
    ours, ref = HybridModel.from_pretrained(folder, dtype=torch.float32), reference(folder)
    ids = torch.randint(3, 320, (2, 19), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    mask[1, :6] = 0
    with torch.no_grad():
        expected = ref(ids, attention_mask=mask).logits
    logits = ours(ids, attention_mask=mask)
    close(logits[0], expected[0])
    close(logits[1, 6:], expected[1, 6:])


@pytest.mark.parametrize("name", ["moe-attn-middle-g2-untied-rope", "dense-attn-first"])
def test_bf16_stays_close_to_fp32(name, tiny_folders):
    # bf16 keeps 8 mantissa bits: every matmul rounds to ~2^-9 relative, and about ten of them in
    # sequence (embedding, 3 layers of mixer + MLP, head) compound to ~0.7% of the largest logit,
    # which is what transformers' own bf16 run shows (0.8%). 2% leaves room for other seeds; we must
    # also be no worse than twice transformers' bf16 error.
    folder = tiny_folders[name]
    ids = torch.randint(3, 320, (2, 37), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        fp32 = reference(folder)(ids).logits
        hf_bf16 = reference(folder, torch.bfloat16)(ids).logits.float()
    model = HybridModel.from_pretrained(folder, dtype=torch.bfloat16)
    ours = model(ids)
    close(ours, fp32, rel=2e-2)
    assert (ours - fp32).abs().max() <= 2 * (hf_bf16 - fp32).abs().max()
    cache = model.new_cache(batch_size=2)
    pieces = [model(ids[:, :30], cache=cache)] + [model(ids[:, i : i + 1], cache=cache) for i in range(30, 37)]
    close(torch.cat(pieces, dim=1), fp32, rel=2e-2)
