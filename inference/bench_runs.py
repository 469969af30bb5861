"""The measurements `python -m inference.bench` makes, one per process (see bench.py).

Each returns a dict of plain numbers: prefill tokens/s and time to first token (prefill plus the
first argmax), prefill tokens per CPU-second (all threads; what a busy machine does not change),
decode tokens/s (the median step, greedy) and the read bandwidth measured between its steps, the
peak RSS (VmHWM, this process only, taken before the decode's read probe allocates its buffer)
and its growth over a baseline taken after the imports; ours adds the memory estimate and,
asked for, the warm document-state time to first token.
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

import torch


def run_ours(folder: Path, dtype: torch.dtype, length: int, steps: int, warm: int, chunk: int | None,
             gen: torch.Generator) -> dict:
    from inference import HybridConfig, HybridModel, memory

    config = HybridConfig.from_pretrained(folder)
    estimate = memory.estimate(config, dtype, length + steps, chunk).total  # also loads the rest of torch.nn
    baseline = _status("VmRSS")
    model = HybridModel.from_pretrained(folder, dtype=dtype)
    if chunk:
        model.prefill_chunk = chunk
    ids = torch.randint(3, model.config.vocab_size - 1, (1, length), generator=gen)
    state = model.new_cache()
    state.reserve(length)
    started, cpu = time.perf_counter(), time.process_time()
    token = model(ids, cache=state, last_only=True).argmax(dim=-1, keepdim=True)
    ttft, ttft_cpu = time.perf_counter() - started, time.process_time() - cpu
    cache = state.copy(headroom=steps + 1)  # what a question does: the document state stays as it is
    peak = _status("VmHWM")
    decode, read = _decode(lambda t: model(t, cache=cache, last_only=True), token, steps)
    result = {"tokens": length, "prefill_tps": length / ttft, "prefill_cpu_tps": length / ttft_cpu, "ttft": ttft,
              "decode_tps": 1 / decode, "read": read, "peak_rss": peak, "estimate": estimate}
    result["growth"] = result["peak_rss"] - baseline
    if warm:
        result |= _warm(model, state, ids, warm, ttft, gen)
    return result


def _warm(model, state, ids: torch.Tensor, tokens: int, ttft: float, gen: torch.Generator) -> dict:
    """A question after the document: cold (read everything) vs warm (load the saved state)."""
    question = torch.randint(3, model.config.vocab_size - 1, (1, tokens), generator=gen)
    started = time.perf_counter()
    model(question, cache=state.copy(headroom=tokens), last_only=True).argmax(dim=-1)
    cold = ttft + time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="tome-bench-state-") as tmp:
        path = Path(tmp) / "state.safetensors"
        state.save(path)
        started = time.perf_counter()
        loaded = model.load_cache(path)
        if loaded.token_ids[0].tolist() != ids[0].tolist():  # what DocumentCache checks on a hit
            raise RuntimeError("the saved state does not hold the document")
        model(question, cache=loaded.copy(headroom=tokens), last_only=True).argmax(dim=-1)
        warm = time.perf_counter() - started
    return {"warm_tokens": tokens, "warm_ttft": warm, "cold_ttft": cold}


def run_transformers(folder: Path, dtype: torch.dtype, length: int, steps: int, gen: torch.Generator) -> dict:
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import GraniteMoeHybridForCausalLM
    from transformers.utils import logging

    logging.set_verbosity_error()  # its "falling back to the torch path" notices
    baseline = _status("VmRSS")
    model = GraniteMoeHybridForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    ids = torch.randint(3, model.config.vocab_size - 1, (1, length), generator=gen)
    state = {}

    def step(tokens: torch.Tensor) -> torch.Tensor:
        out = model(input_ids=tokens, past_key_values=state.get("cache"), use_cache=True, logits_to_keep=1)
        state["cache"] = out.past_key_values
        return out.logits[:, -1]

    with torch.inference_mode():
        started, cpu = time.perf_counter(), time.process_time()
        token = step(ids).argmax(dim=-1, keepdim=True)
        ttft, ttft_cpu = time.perf_counter() - started, time.process_time() - cpu
        peak = _status("VmHWM")
        decode, read = _decode(step, token, steps)
    return {"tokens": length, "prefill_tps": length / ttft, "prefill_cpu_tps": length / ttft_cpu, "ttft": ttft,
            "decode_tps": 1 / decode, "read": read, "peak_rss": peak, "growth": peak - baseline}


def run_transformers_decode(folder: Path, dtype: torch.dtype, length: int, steps: int, gen: torch.Generator,
                            prompt: int = 256) -> dict:
    """transformers' decode step with `length` positions in its attention layers' K/V, for lengths its
    prefill cannot reach in the time given: a `prompt`-token prefill, then every attention layer's K/V
    extended at the front with random entries to `length`. A step's cost depends on the K/V length,
    not its values; the Mamba layers' state has a fixed size whatever the length."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import GraniteMoeHybridForCausalLM
    from transformers.cache_utils import CacheLayerMixin
    from transformers.utils import logging

    logging.set_verbosity_error()
    model = GraniteMoeHybridForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    ids = torch.randint(3, model.config.vocab_size - 1, (1, prompt), generator=gen)
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        state = {"cache": out.past_key_values}
        for layer in state["cache"].layers:
            if isinstance(layer, CacheLayerMixin) and layer.keys is not None and layer.keys.numel():
                b, heads, _, dim = layer.keys.shape
                extra = (b, heads, length - prompt, dim)
                layer.keys = torch.cat([torch.randn(extra, generator=gen).to(layer.keys.dtype), layer.keys], dim=2)
                layer.values = torch.cat([torch.randn(extra, generator=gen).to(layer.values.dtype), layer.values], dim=2)
        if state["cache"].get_seq_length() != length:
            raise RuntimeError(f"transformers' cache holds {state['cache'].get_seq_length()} positions, not {length}")

        def step(tokens: torch.Tensor) -> torch.Tensor:
            result = model(input_ids=tokens, past_key_values=state["cache"], use_cache=True, logits_to_keep=1)
            state["cache"] = result.past_key_values
            return result.logits[:, -1]

        decode, read = _decode(step, out.logits[:, -1].argmax(dim=-1, keepdim=True), steps)
    return {"tokens": length, "decode_tps": 1 / decode, "read": read, "prompt": prompt}


def _decode(step, token: torch.Tensor, steps: int, every: int = 4) -> tuple[float, float]:
    """Median seconds per greedy decode step, and the median read bandwidth (bytes/s) measured
    before every `every` steps. Side by side because this shared machine's speed drifts by tens
    of percent within minutes: the same decode ran at 22 to 38 tokens/s in runs minutes apart, so
    a decode set against a bandwidth probed at another time says little."""
    big = torch.ones(32 << 20)  # 128 MB, far beyond the caches (as inference.timing's probe)
    times, reads = [], []
    for i in range(max(steps, 1)):
        if i % every == 0:
            started = time.perf_counter()
            big.sum()
            reads.append(big.numel() * big.element_size() / (time.perf_counter() - started))
        started = time.perf_counter()
        token = step(token).argmax(dim=-1, keepdim=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times), statistics.median(reads)


def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field + ":"))
