"""The answer gate (knowledge.answer.Evidence.strong) swept on tuning sets and checked on held-out ones.

    flock /work/bench.lock .venv/bin/python bench/answer_gate.py [--model NAME] [--cache DIR]

The gate decides whether the best passages cover a question well enough to answer (else the
not-found outcome, and no LLM call): term coverage >= MIN_COVERAGE (MIN_COVERAGE_LLM with an LLM),
or the model's cosine floor together with coverage >= MIN_COVERAGE_DENSE. Questions that should
pass: asked of the documentation they come from. Questions that should not: off-topic questions,
and each set asked of the other set's documents (a university's rules asked of the help desk's
docs, help-desk questions asked of the university's documents).

Tuning (the thresholds are chosen here): knowledge/eval/demo_questions.jsonl on the demo docs, the
FaQuAD titles of even position on FaQuAD, bench/knowledge_bench.py's OFF_TOPIC list.
Held out (reported, never tuned on): knowledge/eval/customer_terms.jsonl on the demo docs, the
FaQuAD titles of odd position, knowledge/eval/off_topic.jsonl.
--cache DIR keeps the demo index and FaQuAD vectors between runs (per model).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.knowledge_bench import FAQUAD, OFF_TOPIC  # noqa: E402
import importlib  # noqa: E402

gate = importlib.import_module("knowledge.answer")  # the module (`knowledge.answer` the attribute is the function)
from knowledge.answer import Evidence, evidence  # noqa: E402
from knowledge.config import Settings, embedding_model  # noqa: E402
from knowledge.embed import get_embedder  # noqa: E402
from knowledge.evaluate import Question, faquad_corpus, load_questions  # noqa: E402
from knowledge.index import IndexStore, LoadedIndex, in_memory_index  # noqa: E402
from knowledge.ingest import ingest  # noqa: E402
from knowledge.retrieve import dense_evidence_floor, search  # noqa: E402
from knowledge.sources import load_sources  # noqa: E402

EVAL = REPO / "knowledge" / "eval"
K = 8  # knowledge.runtime.RETRIEVE_K


def demo_index(model: str, cache: Path) -> LoadedIndex:
    root = cache / "demo-index"
    if not (root / "CURRENT").exists():
        sources = [s for s in load_sources(REPO / "knowledge" / "sources.yml") if s.folder is not None]
        ingest(sources, dataclasses.replace(Settings.from_env(root), embedding_model=model), progress=False)
    return IndexStore(root).load()


def faquad(model: str, cache: Path) -> tuple[LoadedIndex, list[Question]]:
    chunks, questions = faquad_corpus(FAQUAD)
    path = cache / "faquad-passages.npy"
    if not path.exists():
        np.save(path, get_embedder(model).encode([c.embed_text() for c in chunks]))
    return in_memory_index(chunks, np.load(path), {"embedding_model": model}), questions


def faquad_split(questions: list[Question]) -> tuple[list[Question], list[Question]]:
    titles = sorted({q.expected.split("/")[1] for q in questions})
    even = {t for i, t in enumerate(titles) if i % 2 == 0}
    return ([q for q in questions if q.expected.split("/")[1] in even],
            [q for q in questions if q.expected.split("/")[1] not in even])


def evidences(idx: LoadedIndex, questions: list[str]) -> list[Evidence]:
    emb = get_embedder(idx.model_name)
    emb.prime_queries(questions)
    return [evidence(idx, q, search(idx, emb, q, k=K)) for q in questions]


def passes(rows: list[Evidence], llm: bool, floor: float, cov_dense: float) -> float:
    old = gate.MIN_COVERAGE_DENSE
    gate.MIN_COVERAGE_DENSE = cov_dense
    try:
        return sum(Evidence(e.coverage, e.dense, floor, e.alone).strong(llm) for e in rows) / max(1, len(rows))
    finally:
        gate.MIN_COVERAGE_DENSE = old


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="EMBEDDING_MODEL value (default: the shipped default)")
    ap.add_argument("--cache", type=Path, help="keep the demo index and FaQuAD vectors here between runs")
    args = ap.parse_args()
    model = embedding_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        cache = (args.cache or Path(tmp)) / model.replace("/", "_").replace(":", "_")
        cache.mkdir(parents=True, exist_ok=True)
        demo = demo_index(model, cache)
        fq_idx, fq = faquad(model, cache)
        fq_tune, fq_held = faquad_split(fq)
        own = [q.question for q in load_questions(EVAL / "demo_questions.jsonl")]
        terms = [q.question for q in load_questions(EVAL / "customer_terms.jsonl")]
        off_held = [json.loads(line)["question"] for line in (EVAL / "off_topic.jsonl").read_text().splitlines() if line.strip()]
        print(f"model {model}; cosine floor in use {dense_evidence_floor(model):.2f}, MIN_COVERAGE_DENSE "
              f"{gate.MIN_COVERAGE_DENSE}, MIN_COVERAGE {gate.MIN_COVERAGE} / {gate.MIN_COVERAGE_LLM} with an LLM")
        sets = {
            "tuning": {
                "answer": [("own set on demo docs", evidences(demo, own)),
                           (f"FaQuAD even titles ({len(fq_tune)}) on FaQuAD", evidences(fq_idx, [q.question for q in fq_tune]))],
                "refuse": [(f"off-topic ({len(OFF_TOPIC)}) on demo docs", evidences(demo, OFF_TOPIC)),
                           ("FaQuAD even titles on demo docs", evidences(demo, [q.question for q in fq_tune])),
                           ("own set on FaQuAD", evidences(fq_idx, own))],
            },
            "held out": {
                "answer": [(f"customer_terms ({len(terms)}) on demo docs", evidences(demo, terms)),
                           (f"FaQuAD odd titles ({len(fq_held)}) on FaQuAD", evidences(fq_idx, [q.question for q in fq_held]))],
                "refuse": [(f"off_topic.jsonl ({len(off_held)}) on demo docs", evidences(demo, off_held)),
                           ("FaQuAD odd titles on demo docs", evidences(demo, [q.question for q in fq_held])),
                           ("customer_terms on FaQuAD", evidences(fq_idx, terms))],
            },
        }
        base = dense_evidence_floor(model)
        grid = [(f, c) for f in sorted({base, 0.84, 0.85, 0.86, 0.87, 0.88, 0.89, 0.90})
                for c in (0.0, 0.2, 0.25, 0.3, 0.35)]
        for name, groups in sets.items():
            print(f"== {name}: share that passes the gate, extractive / with an LLM ==")
            for label, rows in groups["answer"] + groups["refuse"]:
                d = [e.dense for e in rows]
                print(f"  {label}: best cosine min {min(d):.3f} median {np.median(d):.3f} max {max(d):.3f}")
            cols = [label for label, _ in groups["answer"] + groups["refuse"]]
            print("  score = mean share answered of the first two sets - mean share answered of the last three (extractive)")
            print("  floor cov+cos | score | " + " | ".join(cols))
            for floor, cov in grid:
                vals = [f"{passes(rows, False, floor, cov):.3f}/{passes(rows, True, floor, cov):.3f}"
                        for _, rows in groups["answer"] + groups["refuse"]]
                mark = " <- in use" if (floor, cov) == (base, gate.MIN_COVERAGE_DENSE) else ""
                score = (np.mean([passes(r, False, floor, cov) for _, r in groups["answer"]])
                         - np.mean([passes(r, False, floor, cov) for _, r in groups["refuse"]]))
                print(f"  {floor:.2f}  {cov:.2f}    | {score:.3f} | " + " | ".join(vals) + mark)


if __name__ == "__main__":
    main()
