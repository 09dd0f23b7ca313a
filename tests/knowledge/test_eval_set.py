"""The project's own evaluation set and the quality bar on the demo documentation."""
from __future__ import annotations

import json
from pathlib import Path

from knowledge.config import REPO_ROOT
from knowledge.embed import get_embedder
from knowledge.evaluate import evaluate, load_questions
from knowledge.index import IndexStore

OWN_SET = REPO_ROOT / "knowledge" / "eval" / "demo_questions.jsonl"
DEMO = REPO_ROOT / "knowledge" / "demo_docs"


def test_eval_set_is_large_and_points_to_real_pages() -> None:
    rows = [json.loads(line) for line in OWN_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 100
    assert len({r["question"] for r in rows}) == len(rows)
    for r in rows:
        assert (DEMO / r["expected"]).is_file(), r
    products = {r["expected"].split("/")[1] for r in rows if r["expected"].count("/") >= 2}
    assert {"gestor", "pdv", "bi", "tef", "nfe", "omnicrm", "social", "chatbot", "ailxp", "inpaas", "dtm"} <= products


def test_hybrid_beats_bm25_and_clears_the_recall_bar(demo_index: Path) -> None:
    index = IndexStore(demo_index).load()
    questions = load_questions(OWN_SET)
    bm25 = evaluate(index, None, questions, mode="bm25")
    hybrid = evaluate(index, get_embedder(index.model_name), questions, mode="hybrid", batch_embed=True)
    assert hybrid["recall@5"] >= 0.85
    assert hybrid["recall@5"] >= bm25["recall@5"]
    assert hybrid["mrr@10"] > bm25["mrr@10"]
