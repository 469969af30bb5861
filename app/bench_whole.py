"""Time to first token of whole-document answers, cold and warm: `python -m app.bench ttft`.

A random checkpoint of the "smoke" shape (inference/shapes.py: 4 layers, one of them attention,
fp32) and the tests' small byte-level Granite-style tokenizer are written to a temporary folder,
and a document of about --tokens tokens (the start of the sample MSA's source text) is ingested
into a temporary store. One Assistant over `ChatGranite` then answers in whole-document mode:
- cold: the first question reads the whole document and the DocumentCache saves its state;
- warm: the next questions continue from that state (kept in memory) and read only themselves;
- from disk: a new Assistant (as after a restart) loads the saved state instead of reading.
Time to first token is from `ask` to the first streamed item after the read (text, or the
answer when a random model's first token ends it). The peer is the cold read of the same run.
"""

import os
import re
import statistics
import tempfile
import time
from pathlib import Path

QUESTIONS = ("How much notice is needed to terminate for convenience?", "Which law governs the agreement?",
             "What is the cap on liability?", "When does the agreement renew?")


def run(tokens: int, threads: int, repeat: int) -> None:
    import torch

    from app.qa import Assistant
    from app.whole import Reading
    from inference import shapes
    from inference.langchain import ChatGranite
    from ingest import Store, ingest_paths
    from tests.inference import granite_style

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="tome-ttft-") as tmp:
        folder = shapes.write_random_checkpoint("smoke", Path(tmp) / "model", torch.float32)
        granite_style.build(folder)
        llm = ChatGranite(model_path=str(folder), dtype="float32", max_tokens=8)
        document = Path(tmp) / "agreement.txt"
        document.write_text(_document(llm, tokens))
        store = Store(Path(tmp) / "store")
        failed = ingest_paths([document], store).failed
        if failed:
            raise SystemExit(f"ingest failed: {failed[0][0]}: {failed[0][1]}")
        doc_id = store.documents()[0].doc_id

        def ask(assistant: Assistant, question: str) -> tuple[float, int]:
            started, read = time.perf_counter(), 0
            for part in assistant.stream(question, doc_id=doc_id, mode="whole"):
                if isinstance(part, Reading):
                    read = part.tokens_total
                    continue
                return time.perf_counter() - started, read
            raise RuntimeError("the answer stream ended without an answer")

        assistant = Assistant(store, llm)
        length = assistant.reader.tokens(doc_id)
        cold, _ = ask(assistant, QUESTIONS[0])
        warm = [ask(assistant, QUESTIONS[1 + i % 3])[0] for i in range(repeat)]
        disk = [ask(Assistant(store, llm), QUESTIONS[1 + i % 3])[0] for i in range(repeat)]
        state = sum(f.stat().st_size for f in (store.path / "doc-states").rglob("*.safetensors"))
        store.close()
    _print(length, cold, warm, disk, state, threads)


def _document(llm, tokens: int) -> str:
    """The sample MSA's text (markup removed), cut to about `tokens` tokens of this tokenizer."""
    source = (Path(__file__).resolve().parents[1] / "sample_docs" / "src" / "msa.tmk").read_text()
    lines = [re.sub(r"^#+!? *\| *|\*\*", "", line) for line in source.splitlines()
             if not re.match(r"\s*[@{\[]", line)]
    text = "\n".join(lines)
    while len(text) < 4 * tokens:
        text += "\n\n" + text
    per_char = len(llm.tokenizer.encode(text[:20_000])) / 20_000
    return text[:int(tokens / per_char)]


def _print(length: int, cold: float, warm: list[float], disk: list[float], state: int, threads: int) -> None:
    print(f"# app.bench ttft: smoke-shape random checkpoint, fp32, {threads} thread(s), "
          f"load average {os.getloadavg()[0]:.2f}; document prompt {length:,} tokens; "
          f"saved state {state / 1e6:.1f} MB\n")
    print("| question | time to first token | vs cold |")
    print("|---|---:|---:|")
    print(f"| first (cold: reads the document, saves its state) | {cold:.2f} s | 1x |")
    for label, times in (("next, same assistant (state in memory)", warm),
                         ("next, new assistant (state loaded from disk)", disk)):
        median = statistics.median(times)
        print(f"| {label}, median of {len(times)} | {median * 1000:.0f} ms | {cold / median:.0f}x faster |")
