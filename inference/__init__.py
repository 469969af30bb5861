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

Importing this package before torch bounds how long OpenMP's idle threads spin before they
sleep (GOMP_SPINCOUNT=20000 for the GNU OpenMP of PyTorch's wheels, KMP_BLOCKTIME=0 for Intel's;
unless OMP_WAIT_POLICY or these are already set). Spinning long (libgomp's default) made a
2-thread prefill 4x and a decode step 16x slower with other programs busy on the same cores;
never spinning (OMP_WAIT_POLICY=PASSIVE, used before) costs a thread wake-up per parallel region,
and a decoded token has hundreds. h-350m bf16 after 1K tokens, 2 threads: 65-67 ms/token
passive, 46 ms with the default spin, 44-49 ms with this one on an idle machine; beside two busy
processes 100, 144 and 96 ms (BENCHMARKS.md, "Long documents").
"""

import os

if "OMP_WAIT_POLICY" not in os.environ:  # read by OpenMP when torch loads
    os.environ.setdefault("GOMP_SPINCOUNT", "20000")  # checks before sleeping: spans the gaps between a decode step's ops
    os.environ.setdefault("KMP_BLOCKTIME", "0")  # Intel OpenMP counts in ms: 0, i.e. passive, is the safe bound

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
