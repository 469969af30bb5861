"""Tome's built-in runtime for IBM Granite 4.0 H models (Hugging Face `granitemoehybrid`).

    from inference import HybridModel, Tokenizer, Generator
    model = HybridModel.from_pretrained(path, dtype=torch.bfloat16, device="cpu")
    logits = model(input_ids)                         # [batch, seq, vocab] float logits
    cache = model.new_cache(batch_size=1)
    logits = model(input_ids[:, :n], cache=cache)     # continues from and updates the cache
    tok = Tokenizer.from_pretrained(path)
    gen = Generator(model, tok)
    for text in gen.stream(messages, max_new_tokens=256, temperature=0.0): ...
"""

from inference.cache import HybridCache
from inference.config import HybridConfig
from inference.document_cache import DocumentCache
from inference.errors import CacheMismatchError, CheckpointError, ConfigError, InferenceError, PromptTooLongError
from inference.memory import MemoryEstimate, MemoryLimitError
from inference.generate import GenerationResult, GenerationStream, Generator
from inference.model import HybridModel
from inference.tokenizer import Tokenizer

__all__ = [
    "CacheMismatchError",
    "CheckpointError",
    "ConfigError",
    "DocumentCache",
    "HybridCache",
    "HybridConfig",
    "GenerationResult",
    "GenerationStream",
    "Generator",
    "HybridModel",
    "InferenceError",
    "MemoryEstimate",
    "MemoryLimitError",
    "PromptTooLongError",
    "Tokenizer",
]
