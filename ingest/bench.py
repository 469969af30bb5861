"""Retrieval quality, ingestion throughput and search latency, against the baseline a user would
otherwise build: pypdf page text, fixed 1,000-character windows with 200 overlap, the same
embedder, Chroma cosine top-k with a per-document filter.

    python -m ingest.bench cuad [--split dev|held-out] [--docs N] [--seed S]   # CUAD PDFs; pages/s
    python -m ingest.bench samples              # sample_docs/qa.jsonl
    python -m ingest.bench contractnli [--docs N] [--seed S]   # ContractNLI NDAs (TXT): nothing was tuned on them
    python -m ingest.bench corpus [--baseline] [--random-vectors]  # all 509 CUAD TXT contracts in one store

Rules: answerable questions only, a per-document filter on both sides. A retrieved chunk hits when,
after normalising both (case, hyphenation, punctuation, whitespace), it contains an evidence span
or at least half of that span's content words. "hit@5" looks at the top 5 chunks; "within N chars"
concatenates chunks in rank order and cuts the last one at N characters (the context a model would
get, whatever the chunk size); MRR is over the top 20. Prints Markdown tables for BENCHMARKS.md.
"""

import argparse
import gzip
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.keyword import STOP_WORDS

BUDGETS = (1000, 2500, 5000)
DEPTH = 20  # chunks retrieved per question
# The CUAD contracts retrieval was tuned on: the seeded sample earlier runs reported (`--docs 16`).
DEV_SEED, DEV_DOCS = 0, 16
REPO = Path(__file__).resolve().parents[1]


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", text)
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def _content_words(normalised: str) -> list[str]:
    return [w for w in normalised.split() if w not in STOP_WORDS] or normalised.split()


def hits_evidence(text: str, evidence: list[str]) -> bool:
    chunk = normalise(text)
    present = Counter(chunk.split())
    for span in evidence:
        wanted = normalise(span)
        if wanted and wanted in chunk:
            return True
        words = Counter(_content_words(wanted))
        if words and sum(min(n, present[w]) for w, n in words.items()) >= 0.5 * sum(words.values()):
            return True
    return False


def score(results: list[tuple[list[str], list[str]]]) -> dict[str, float]:
    """results: (retrieved chunk texts in rank order, evidence spans) per question."""
    totals = Counter()
    for texts, evidence in results:
        flags = [hits_evidence(t, evidence) for t in texts[:DEPTH]]
        totals["hit@5"] += any(flags[:5])
        totals["mrr"] += next((1 / (i + 1) for i, f in enumerate(flags) if f), 0.0)
        for budget in BUDGETS:
            totals[budget] += _hit_within(texts, evidence, budget)
    n = max(1, len(results))
    return {key: value / n for key, value in totals.items()} | {"n": len(results)}


def _hit_within(texts: list[str], evidence: list[str], budget: int) -> bool:
    left = budget
    for text in texts:
        if left <= 0:
            return False
        if hits_evidence(text[:left], evidence):
            return True
        left -= len(text)
    return False


class Baseline:
    """pypdf page text (or the whole text file), 1,000-character windows with 200 overlap, the
    same embedder, Chroma cosine top-k filtered by document."""

    def __init__(self, folder: Path):
        import chromadb
        from chromadb.config import Settings

        client = chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))
        self.collection = client.get_or_create_collection(
            "baseline", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    def has(self, path: Path) -> bool:
        return bool(self.collection.get(where={"doc": path.name}, limit=1, include=[])["ids"])

    def ingest(self, path: Path) -> tuple[int, int]:
        from ingest.embed import get_embedder

        if path.suffix == ".pdf":
            from pypdf import PdfReader

            pages = [page.extract_text() or "" for page in PdfReader(path).pages]
        else:
            pages = [path.read_text(errors="replace")]
        windows = [page[i:i + 1000] for page in pages for i in range(0, max(1, len(page) - 200), 800) if page[i:i + 1000].strip()]
        if windows:
            vectors = get_embedder().encode(windows)
            ids = [f"{path.name}:{i}" for i in range(len(windows))]
            for start in range(0, len(ids), 1000):
                self.collection.add(
                    ids=ids[start:start + 1000], embeddings=vectors[start:start + 1000],
                    documents=windows[start:start + 1000], metadatas=[{"doc": path.name}] * len(ids[start:start + 1000]),
                )
        return len(pages), len(windows)

    def search(self, query: str, doc: str | None, n: int = DEPTH) -> list[str]:
        from ingest.embed import get_embedder

        vector = get_embedder().encode_query(query)[None, :]
        result = self.collection.query(
            query_embeddings=vector, n_results=n, where={"doc": doc} if doc else None, include=["documents", "metadatas"]
        )
        self.last_docs = [m["doc"] for m in result["metadatas"][0]]
        return result["documents"][0]


@dataclass
class Question:
    doc: str  # file name
    question: str
    evidence: list[str]


def _evaluate(store, baseline: Baseline, questions: list[Question], doc_ids: dict[str, str]) -> dict[str, dict]:
    results: dict[str, list] = {"dense": [], "keyword": [], "hybrid": [], "baseline": []}
    for q in questions:
        for mode in ("dense", "keyword", "hybrid"):
            hits = store.search(q.question, k=DEPTH, doc_id=doc_ids[q.doc], mode=mode)
            results[mode].append(([h.text for h in hits], q.evidence))
        results["baseline"].append((baseline.search(q.question, q.doc), q.evidence))
    return {name: score(rows) for name, rows in results.items()}


def _ingest_both(files: list[Path], work: Path, settings, groups: int = 5):
    """Ingest the files into our store and the baseline, timed. The machine's load drifts, so
    the files go in groups, alternating which system goes first (ABBA), and times are summed.
    Files a store in `work` already holds are not ingested again; the throughput is then None."""
    from ingest import Store, ingest_paths
    from ingest.embed import get_embedder
    from ingest.settings import IngestSettings

    get_embedder().encode(["warm up"])
    default = settings == IngestSettings()
    ours = work / ("ours" if default else f"ours-{settings.chunk_tokens}-{settings.overlap_tokens}")
    store, baseline = Store(ours, settings=settings), Baseline(work / "baseline")
    reused = any(baseline.has(path) for path in files) or any(store.documents())
    done, seconds = [], {"ours": 0.0, "baseline": 0.0}
    base_pages = base_chunks = 0
    for g in range(groups):
        group = files[g::groups]
        for system in (("ours", "baseline") if g % 2 == 0 else ("baseline", "ours")):
            started = time.perf_counter()
            if system == "ours":
                report = ingest_paths(group, store)
                done += report.added + report.replaced + report.unchanged
                for source, reason in report.failed:
                    print(f"ours failed {source}: {reason}", file=sys.stderr)
            else:
                for path in (p for p in group if not baseline.has(p)):
                    pages, chunks = baseline.ingest(path)
                    base_pages, base_chunks = base_pages + pages, base_chunks + chunks
            seconds[system] += time.perf_counter() - started
    doc_ids = {Path(r.source).name: r.doc_id for r in done}
    throughput = None if reused else {
        "ours": (sum(r.pages for r in done), sum(r.chunks for r in done), seconds["ours"]),
        "baseline": (base_pages, base_chunks, seconds["baseline"]),
    }
    return store, baseline, doc_ids, throughput


def _quality_table(title: str, scores: dict[str, dict]) -> str:
    names = {"dense": "ours, dense only", "keyword": "ours, BM25 only", "hybrid": "ours, hybrid (RRF)",
             "baseline": "baseline (1,000-char windows, dense)"}
    lines = [f"**{title}**", "", "| system | questions | hit@5 | MRR@20 | hit within 1,000 chars | 2,500 | 5,000 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for key in ("dense", "keyword", "hybrid", "baseline"):
        s = scores[key]
        lines.append(
            f"| {names[key]} | {s['n']} | {s['hit@5']:.1%} | {s['mrr']:.3f} | {s[1000]:.1%} | {s[2500]:.1%} | {s[5000]:.1%} |"
        )
    return "\n".join(lines)


def _throughput_table(throughput: dict | None) -> str:
    if throughput is None:
        return "(stores reused from --work: no throughput figures)"
    ours, base = throughput["ours"], throughput["baseline"]
    lines = ["| system | pages | chunks | seconds | pages/s |", "|---|---:|---:|---:|---:|"]
    for name, (pages, chunks, seconds) in (("ours (parse, clean, chunk, embed, Chroma + BM25 + catalog)", ours),
                                           ("baseline (parse, window, embed, Chroma)", base)):
        lines.append(f"| {name} | {pages} | {chunks} | {seconds:.0f} | {pages / seconds:.2f} |")
    ratio = (ours[0] / ours[2]) / (base[0] / base[2])
    return "\n".join(lines) + f"\n\nours / baseline speed: {ratio:.2f}x"


def cuad_contracts(names: list[str], split: str, docs: int | None, seed: int) -> list[str]:
    """The PDF contracts of a split ("all", "dev" or "held-out"), or a seeded sample of them."""
    dev = sorted(random.Random(DEV_SEED).sample(sorted(names), DEV_DOCS))
    chosen = {"all": sorted(names), "dev": dev, "held-out": sorted(set(names) - set(dev))}[split]
    if docs and docs < len(chosen):
        chosen = sorted(random.Random(seed).sample(chosen, docs))
    return chosen


def run_cuad(evaldata: Path, split: str, docs: int | None, seed: int, work: Path, settings) -> None:
    cuad = evaldata / "cuad"
    rows = [json.loads(line) for line in (cuad / "qa.jsonl").open()]
    names = cuad_contracts(sorted({Path(r["pdf"]).name for r in rows if r["in_pdf_set"]}), split, docs, seed)
    files = [cuad / "pdf" / n for n in names]
    store, baseline, doc_ids, throughput = _ingest_both(files, work, settings)
    questions = [
        Question(Path(r["pdf"]).name, r["question"], [e["text"] for e in r["evidence"] if e["text"].strip()])
        for r in rows if r["answerable"] and Path(r["pdf"]).name in doc_ids and r["evidence"]
    ]
    scores = _evaluate(store, baseline, questions, doc_ids)
    print(f"contracts: {' '.join(n.removesuffix('.pdf') for n in names)}\n")
    print(_quality_table(f"CUAD PDFs ({split}): {len(files)} contracts, answerable questions", scores))
    print()
    print(_throughput_table(throughput))


def run_contractnli(evaldata: Path, docs: int | None, seed: int, work: Path, settings) -> None:
    """ContractNLI's NDAs against its 17 hypotheses, asked as questions ("Does the agreement
    provide that: ...?"); the rows with evidence (Entailment and Contradiction)."""
    cnli = evaldata / "contractnli"
    rows = [json.loads(line) for line in (cnli / "qa.jsonl").open()]
    names = sorted({Path(r["txt"]).name for r in rows})
    if docs and docs < len(names):
        names = sorted(random.Random(seed).sample(names, docs))
    store, baseline, doc_ids, throughput = _ingest_both([cnli / "txt" / n for n in names], work, settings)
    questions = [
        Question(Path(r["txt"]).name, r["question"], [e["text"] for e in r["evidence"] if e["text"].strip()])
        for r in rows if r["evidence"] and Path(r["txt"]).name in doc_ids
    ]
    print(_quality_table(f"ContractNLI: {len(doc_ids)} NDAs, questions with evidence", _evaluate(store, baseline, questions, doc_ids)))
    print()
    print(_throughput_table(throughput))


def run_samples(work: Path, settings) -> None:
    qa = REPO / "sample_docs" / "qa.jsonl"
    if not qa.exists():
        sys.exit(f"{qa} does not exist yet")
    rows = [json.loads(line) for line in qa.open() if line.strip()]
    files = sorted({REPO / "sample_docs" / r["doc"] for r in rows})
    store, baseline, doc_ids, throughput = _ingest_both(files, work, settings)
    questions = [Question(r["doc"], r["question"], [r["evidence"]]) for r in rows if r["answerable"] and r["evidence"]]
    print(_quality_table(f"sample_docs: {len(files)} documents, answerable questions", _evaluate(store, baseline, questions, doc_ids)))
    print()
    print(_throughput_table(throughput))


def _corpus_questions(evaldata: Path, count: int) -> list[tuple[str, str]]:
    """(txt file name, question naming the contract by title and parties)."""
    import csv

    cuad = evaldata / "cuad"
    titles = {r["doc_id"]: r["title"] for r in csv.DictReader((cuad / "documents.csv").open())}
    rows = [json.loads(line) for line in gzip.open(cuad / "qa_all.jsonl.gz", "rt")]
    parties = {r["doc_id"]: r["gold_answer"] for r in rows if r["category"] == "Parties" and r["answerable"]}
    # One contract's files are missing from the source copy: its rows have no "txt".
    asked = [r for r in rows if r["answerable"] and r["txt"] and r["category"] not in ("Document Name", "Parties")]
    random.Random(0).shuffle(asked)
    questions = []
    for r in asked[:count]:
        names = [p.strip() for p in re.split(r";", parties.get(r["doc_id"], "")) if p.strip()][:2]
        between = f" between {' and '.join(names)}" if names else ""
        question = r["question"][0].lower() + r["question"][1:]
        questions.append((Path(r["txt"]).name, f"In the {titles.get(r['doc_id'], 'agreement')}{between}, {question}"))
    return questions


class RandomVectors:
    """The real embedder with seeded random unit vectors in place of its chunk embeddings; its
    tokenizer still sizes the chunks and queries are still embedded for real. Search latency
    depends on the store's size, not on what its vectors say, and embedding CUAD's ~35,000 chunks
    takes the better part of an hour on two idle cores."""

    def __init__(self, real):
        self._real = real
        self._random = np.random.default_rng(0)

    def __getattr__(self, name):
        return getattr(self._real, name)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        vectors = self._random.standard_normal((len(texts), self._real.dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def run_corpus(evaldata: Path, work: Path, with_baseline: bool, count: int, random_vectors: bool) -> None:
    from ingest import Store, ingest_paths, pipeline
    from ingest.embed import get_embedder

    files = sorted((evaldata / "cuad" / "txt").glob("*.txt"))
    get_embedder().encode(["warm up"])
    if random_vectors:
        stand_in = RandomVectors(get_embedder())
        pipeline.get_embedder = lambda: stand_in
    store = Store(work / "corpus")
    started = time.perf_counter()
    report = ingest_paths(files, store)
    seconds = time.perf_counter() - started
    docs = store.documents()
    chunks = sum(d.chunks for d in docs)
    print(f"corpus store: {len(docs)} contracts, {chunks} chunks, ingested in {seconds:.0f} s; {len(report.failed)} failed"
          + ("; random chunk vectors (latency only: dense and hybrid find nothing real)" if random_vectors else "") + "\n")
    by_name = {Path(source).name: d.doc_id for d in docs for source in d.sources}  # duplicates are one document
    questions = _corpus_questions(evaldata, count)
    lines = ["| system | questions | right contract in top 5 | p50 search latency (ms) | p90 | p50 CPU time (ms) |",
             "|---|---:|---:|---:|---:|---:|"]
    for mode in ("dense", "keyword", "hybrid"):
        found, times = 0, []
        for name, question in questions:
            hits, wall, cpu = _timed(lambda: store.search(question, k=5, mode=mode))
            times.append((wall, cpu))
            found += by_name[name] in {h.doc_id for h in hits}
        share = "-" if random_vectors and mode != "keyword" else f"{found / len(questions):.1%}"
        lines.append(f"| ours, {mode} | {len(questions)} | {share} | {_latency(times)} |")
    filtered = [_timed(lambda: store.search(question, k=5, doc_id=by_name[name]))[1:] for name, question in questions[:200]]
    lines.append(f"| ours, hybrid, filtered to the contract | {len(filtered)} | - | {_latency(filtered)} |")
    if with_baseline:
        baseline = Baseline(work / "corpus-baseline")
        for path in files:
            baseline.ingest(path)
        found, times = 0, []
        for name, question in questions:
            times.append(_timed(lambda: baseline.search(question, None, 5))[1:])
            found += name in baseline.last_docs
        lines.append(f"| baseline | {len(questions)} | {found / len(questions):.1%} | {_latency(times)} |")
    print("\n".join(lines))


def _timed(call):
    """(result, wall ms, CPU ms of this process). On a loaded machine the wall time includes
    waiting for a core; the CPU time is close to what an idle core would take."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu)


def _latency(times: list[tuple[float, float]]) -> str:
    """Table cells: p50 and p90 wall time, p50 CPU time."""
    wall = [w for w, _ in times]
    return (f"{statistics.median(wall):.1f} | {statistics.quantiles(wall, n=10)[-1]:.1f} | "
            f"{statistics.median(c for _, c in times):.1f}")


def _settings(chunk_tokens: int | None, overlap_tokens: int | None):
    from ingest.errors import IngestError
    from ingest.settings import IngestSettings

    default = IngestSettings()
    try:
        return IngestSettings(chunk_tokens=chunk_tokens or default.chunk_tokens,
                              overlap_tokens=default.overlap_tokens if overlap_tokens is None else overlap_tokens)
    except IngestError as error:
        sys.exit(f"python -m ingest.bench: {error}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ingest.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=("cuad", "samples", "corpus", "contractnli"))
    parser.add_argument("--split", choices=("all", "dev", "held-out"), default="all",
                        help="cuad: the contracts tuned on (dev), the others (held-out) or all 65 (default)")
    parser.add_argument("--docs", type=int, help="cuad, contractnli: a seeded sample of this many documents")
    parser.add_argument("--seed", type=int, default=0, help="cuad, contractnli: the seed of that sample (default 0)")
    parser.add_argument("--chunk-tokens", type=int, help="our chunk size in tokens (default: IngestSettings')")
    parser.add_argument("--overlap-tokens", type=int, help="our chunk overlap in tokens (default: IngestSettings')")
    parser.add_argument("--questions", type=int, default=1000, help="corpus: questions asked (default 1000)")
    parser.add_argument("--baseline", action="store_true", help="corpus: also build and ask the baseline")
    parser.add_argument("--random-vectors", action="store_true",
                        help="corpus: random chunk vectors, for search latency (and BM25 quality) only")
    parser.add_argument("--work", type=Path, help="folder for the stores (default: a temporary one)")
    args = parser.parse_args(argv)
    settings = _settings(args.chunk_tokens, args.overlap_tokens)
    evaldata = Path(os.environ.get("TOME_EVALDATA", REPO.parent / "shared" / "evaldata"))
    if args.suite != "samples" and not evaldata.is_dir():
        sys.exit(f"evaluation data not found at {evaldata} (set TOME_EVALDATA)")
    with tempfile.TemporaryDirectory(prefix="tome-bench-") as tmp:
        work = args.work or Path(tmp)
        if args.suite == "cuad":
            run_cuad(evaldata, args.split, args.docs, args.seed, work, settings)
        elif args.suite == "samples":
            run_samples(work, settings)
        elif args.suite == "contractnli":
            run_contractnli(evaldata, args.docs, args.seed, work, settings)
        else:
            run_corpus(evaldata, work, args.baseline, args.questions, args.random_vectors)


if __name__ == "__main__":
    main()
