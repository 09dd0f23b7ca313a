"""Knowledge base benchmark: prints its figures (not part of the test run).

    .venv/bin/python bench/knowledge_bench.py [--chunks 100000] [--queries 200] [--skip-faquad]

1. Ingestion throughput: `python -m knowledge ingest` of the demo documentation into a fresh index
   (extract + chunk + embed + FAISS + BM25 + atomic write), in chunks/s, against raw
   `model.encode` of the same chunk texts in the same run.
2. Retrieval quality, BM25 alone vs dense alone vs hybrid, measured in the same run on
   FaQuAD (249 paragraphs as documents, 900 questions) and on knowledge/eval/demo_questions.jsonl.
3. Query latency at N chunks (default 100k): the index is built from synthetic Portuguese text
   (words drawn from the demo documentation) with synthetic unit vectors, because embedding 100k
   chunks with MiniLM on a 2-core CPU takes hours; the query path is the real one: embed the
   question with the model, FAISS search, BM25 scores, fusion. Also peak memory (max RSS).
"""
from __future__ import annotations

import argparse
import os
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from knowledge.chunk import chunk_document  # noqa: E402
from knowledge.config import Settings  # noqa: E402
from knowledge.embed import get_embedder  # noqa: E402
from knowledge.evaluate import evaluate, faquad_corpus, load_questions  # noqa: E402
from knowledge.extract import extract  # noqa: E402
from knowledge.index import IndexStore, in_memory_index  # noqa: E402
from knowledge.ingest import ingest  # noqa: E402
from knowledge.models import Chunk  # noqa: E402
from knowledge.retrieve import search  # noqa: E402
from knowledge.sources import load_sources  # noqa: E402

FAQUAD = REPO.parent / "shared" / "fixtures" / "kb_eval" / "faquad" / "dataset.json"
OWN_SET = REPO / "knowledge" / "eval" / "demo_questions.jsonl"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def line(label: str, r: dict[str, float]) -> str:
    # questions are embedded in one batch beforehand: latency is measured in the latency section
    return (f"  {label:<7} recall@1={r['recall@1']:.3f} recall@5={r['recall@5']:.3f} mrr@10={r['mrr@10']:.3f} "
            f"(search without embedding: p50={r['p50_ms']:.2f} ms p95={r['p95_ms']:.2f} ms)")


def bench_ingest(settings: Settings) -> None:
    print("== ingestion throughput (demo documentation) ==", flush=True)
    sources = load_sources(REPO / "knowledge" / "sources.yml")
    embedder = get_embedder(settings.embedding_model)
    texts: list[str] = []
    for src in sources:
        assert src.folder is not None
        for f in sorted(src.folder.rglob("*")):
            if f.suffix in (".md", ".html", ".pdf"):
                doc = extract(str(f), f.read_bytes())
                texts += [c.embed_text() for c in chunk_document(doc, str(f))]
    embedder.encode(texts[:32])  # warm-up
    t0 = time.perf_counter()
    embedder.encode(texts)
    raw = len(texts) / (time.perf_counter() - t0)
    summary = ingest(sources, settings, progress=False)
    ing = summary.chunks_embedded / summary.seconds
    t0 = time.perf_counter()
    embedder.encode(texts)
    raw2 = len(texts) / (time.perf_counter() - t0)
    raw_avg = (raw + raw2) / 2
    print(f"  chunks: {summary.chunks} from {summary.documents} documents")
    print(f"  raw model.encode: {raw:.1f} and {raw2:.1f} chunks/s (before/after; mean {raw_avg:.1f})")
    print(f"  full ingestion:   {ing:.1f} chunks/s ({summary.seconds:.1f} s, of which embedding "
          f"{summary.embed_seconds:.1f} s) -> ratio {ing / raw_avg:.2f} of raw", flush=True)


def bench_quality(settings: Settings, skip_faquad: bool) -> None:
    embedder = get_embedder(settings.embedding_model)
    if not skip_faquad and FAQUAD.exists():
        print("== FaQuAD (249 paragraphs, 900 questions) ==", flush=True)
        chunks, questions = faquad_corpus(FAQUAD)
        t0 = time.perf_counter()
        vecs = embedder.encode([c.embed_text() for c in chunks])
        print(f"  embedded {len(chunks)} paragraphs in {time.perf_counter() - t0:.1f} s")
        idx = in_memory_index(chunks, vecs, {"embedding_model": settings.embedding_model})
        for mode in ("bm25", "dense", "hybrid"):
            print(line(mode, evaluate(idx, embedder, questions, mode, batch_embed=True)), flush=True)
    print(f"== own eval set ({OWN_SET.relative_to(REPO)}) ==", flush=True)
    idx = IndexStore(settings.index_dir).load()
    questions = load_questions(OWN_SET)
    print(f"  {len(questions)} questions over {len(idx.chunks)} chunks")
    for mode in ("bm25", "dense", "hybrid"):
        print(line(mode, evaluate(idx, embedder, questions, mode, batch_embed=True)), flush=True)


def synthetic_chunks(n: int, seed: int = 7) -> list[Chunk]:
    words: list[str] = []
    for f in (REPO / "knowledge" / "demo_docs").rglob("*.md"):
        words += re.findall(r"[a-zà-ú0-9-]{3,}", f.read_text(encoding="utf-8").lower())
    vocab = sorted(set(words))
    rng = random.Random(seed)
    out = []
    for i in range(n):
        body = " ".join(rng.choices(vocab, k=rng.randint(40, 110)))
        product = "erp" if i % 2 else "omni"
        out.append(Chunk(id=str(i), doc_key=f"syn/{i // 5}", url=f"https://docs.example.com/{product}/{i // 5}.html",
                         title=f"Página sintética {i // 5}", product=product, module=None,
                         heading=f"Seção {i % 5}", text=body))
    return out


def bench_latency(settings: Settings, n: int, n_queries: int) -> None:
    print(f"== query latency at {n} chunks (synthetic text and vectors, real query path) ==", flush=True)
    embedder = get_embedder(settings.embedding_model)
    t0 = time.perf_counter()
    chunks = synthetic_chunks(n)
    rng = np.random.default_rng(7)
    vecs = rng.standard_normal((n, embedder.dim), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    before = rss_mb()
    idx = in_memory_index(chunks, vecs, {"embedding_model": settings.embedding_model})
    print(f"  built FAISS {type(idx.faiss_index).__name__} + BM25 in {time.perf_counter() - t0:.1f} s; "
          f"max RSS {before:.0f} MB before index, {rss_mb():.0f} MB after")
    questions = [q.question for q in load_questions(OWN_SET)]
    questions = (questions * (n_queries // len(questions) + 1))[:n_queries]
    embedder.clear_query_cache()
    total, emb_only = [], []
    for i, q in enumerate(questions):
        q = f"{q} ({i})"  # distinct text: no query-cache hits
        t = time.perf_counter()
        embedder.encode_query(q)
        t1 = time.perf_counter()
        search(idx, embedder, q, ["erp"] if i % 4 == 0 else None, k=10)  # cached vector: rest of the path
        t2 = time.perf_counter()
        emb_only.append((t1 - t) * 1000)
        total.append((t2 - t) * 1000)
    rest = np.array(total) - np.array(emb_only)
    print(f"  {len(questions)} queries (1 in 4 filtered by product)")
    print(f"  total   p50={np.percentile(total, 50):.1f} ms p95={np.percentile(total, 95):.1f} ms")
    print(f"  embed   p50={np.percentile(emb_only, 50):.1f} ms p95={np.percentile(emb_only, 95):.1f} ms")
    print(f"  FAISS+BM25+fusion p50={np.percentile(rest, 50):.1f} ms p95={np.percentile(rest, 95):.1f} ms")
    print(f"  peak memory (max RSS of this process): {rss_mb():.0f} MB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip-faquad", action="store_true")
    ap.add_argument("--only", choices=["ingest", "quality", "latency"], action="append")
    args = ap.parse_args()
    only = set(args.only or ["ingest", "quality", "latency"])
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(Path(tmp) / "index")
        t0 = time.perf_counter()
        get_embedder(settings.embedding_model)
        print(f"model load: {time.perf_counter() - t0:.1f} s ({settings.embedding_model})", flush=True)
        if only & {"ingest", "quality"}:
            bench_ingest(settings)
        if "quality" in only:
            bench_quality(settings, args.skip_faquad)
        if "latency" in only:
            bench_latency(settings, args.chunks, args.queries)


if __name__ == "__main__":
    main()
