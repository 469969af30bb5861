"""Tome's built-in runtime for IBM Granite 4.0 H models (Hugging Face `granitemoehybrid`).

    from inference import HybridModel, Tokenizer, Generator
    model = HybridModel.from_pretrained(path, dtype=torch.bfloat16, device="cpu")
    logits = model(input_ids)                         # [batch, seq, vocab] float logits
    cache = model.new_cache(batch_size=1)
    logits = model(input_ids[:, :n], cache=cache)     # continues from and updates the cache
    tok = Tokenizer.from_pretrained(path)
    gen = Generator(model, tok)
    for text in gen.stream(messages, max_new_tokens=256, temperature=0.0): ...
    state = DocumentCache(folder, max_bytes).get_or_build(model, tok, prefix_messages, doc_hash)
    gen.stream(prefix_messages + [question], state=state)   # reads only the question

Importing this package before torch makes OpenMP's idle threads sleep instead of spin
(OMP_WAIT_POLICY=PASSIVE unless already set): with other programs busy on the same cores,
spinning threads made a 2-thread prefill 4x and a decode step 16x slower on the development
machine; the price on an idle machine is a thread wake-up per parallel region.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read by OpenMP when torch loads

from inference.cache import HybridCache  # noqa: E402
from inference.config import HybridConfig  # noqa: E402
from inference.document_cache import DocumentCache  # noqa: E402
from inference.errors import CacheMismatchError, CheckpointError, ConfigError, InferenceError, PromptTooLongError  # noqa: E402
from inference.memory import MemoryEstimate, MemoryLimitError  # noqa: E402
from inference.generate import GenerationResult, GenerationStream, Generator  # noqa: E402
from inference.model import HybridModel  # noqa: E402
from inference.tokenizer import Tokenizer  # noqa: E402

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
