"""Real contracts (../shared/evaldata/cuad) through the tokenizer, the template and the model.

The tiny model's numbers mean nothing as language, but a real contract gives realistic lengths
and characters: thousands of tokens through the cache in pieces must still equal one forward pass
and transformers. 32k tokens of the longest contract run under `-m slow`.
"""

import pytest
import torch

from inference import HybridModel, Tokenizer
from tests.inference.tiny import close, reference

pytestmark = pytest.mark.evaldata


def contract(evaldata, doc_id: str) -> str:
    return (evaldata / "cuad" / "txt" / f"{doc_id}.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tok(model_folder):
    return Tokenizer.from_pretrained(model_folder)


def test_contract_round_trips_and_streams_whole_characters(evaldata, tok):
    text = contract(evaldata, "cuad-000")
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    decoder = tok.decoder()
    pieces = [decoder.push(i) for i in ids[:3000]] + [decoder.flush()]
    assert "".join(pieces) == tok.decode(ids[:3000])


def test_contract_as_a_document_renders_like_transformers(evaldata, tok, model_folder):
    from transformers import AutoTokenizer

    documents = [{"doc_id": "cuad-001", "title": "Services Agreement", "text": contract(evaldata, "cuad-001")}]
    messages = [{"role": "user", "content": "What is the governing law?"}]
    theirs = AutoTokenizer.from_pretrained(model_folder)
    assert tok.render_chat(messages, documents) == theirs.apply_chat_template(
        messages, documents=documents, tokenize=False, add_generation_prompt=True)


def run_in_pieces(model, ids, piece):
    cache = model.new_cache()
    out = [model(ids[:, i : i + piece], cache=cache) for i in range(0, ids.shape[1], piece)]
    return torch.cat(out, dim=1)


def test_thousands_of_contract_tokens_in_pieces_match_transformers(evaldata, tok, tiny_folder):
    ids = torch.tensor([tok.encode(contract(evaldata, "cuad-001"))[:2500]])
    model = HybridModel.from_pretrained(tiny_folder, dtype=torch.float32)
    with torch.no_grad():
        expected = reference(tiny_folder)(ids).logits
    close(model(ids), expected)
    close(run_in_pieces(model, ids, 700), expected)


@pytest.mark.slow
def test_long_contract_through_the_cache(evaldata, tok, tiny_folder):
    # 32k tokens of a 115-page contract, prefilled in 4k pieces, against transformers' single
    # pass (SDPA attention: the eager path would hold a 32k x 32k score matrix per head).
    from transformers import GraniteMoeHybridForCausalLM

    ids = torch.tensor([tok.encode(contract(evaldata, "cuad-177"))[:32768]])
    model = HybridModel.from_pretrained(tiny_folder, dtype=torch.float32)
    last = run_in_pieces(model, ids, 4096)[:, -64:]
    ref = GraniteMoeHybridForCausalLM.from_pretrained(tiny_folder, dtype=torch.float32, attn_implementation="sdpa",
                                                      experts_implementation="eager")
    with torch.no_grad():
        expected = ref(ids, logits_to_keep=64).logits
    close(last, expected)
