"""Retrieval evaluation: recall@1, recall@5, MRR@10 and latency over a JSONL question set."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .embed import Embedder
from .index import LoadedIndex
from .models import Chunk
from .retrieve import DEFAULT_FUSION, Fusion, search


@dataclass(frozen=True)
class Question:
    question: str
    expected: str
    product: str | None = None


class EvalFileError(ValueError):
    pass


def is_expected(chunk: Chunk, expected: str) -> bool:
    """An eval row names its document by the end of its path ("erp/pdv/instalacao.md"): the chunk's
    document key (the file's repository path, a crawled page's URL) or its cited URL ends with it."""
    return chunk.doc_key.endswith(expected) or chunk.url.split("#", 1)[0].endswith(expected)


def load_questions(path: Path) -> list[Question]:
    out: list[Question] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out.append(Question(str(row["question"]), str(row["expected"]), row.get("product")))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise EvalFileError(f"{path}:{lineno}: expected {{\"question\", \"expected\"}}: {exc}") from exc
    if not out:
        raise EvalFileError(f"{path}: no questions")
    return out


def evaluate(idx: LoadedIndex, embedder: Embedder | None, questions: Sequence[Question], mode: str = "hybrid",
             fusion: Fusion = DEFAULT_FUSION, use_product: bool = False, batch_embed: bool = False,
             expansion: object = True) -> dict[str, float]:
    """Recall and MRR; latency includes embedding each question unless batch_embed pre-embeds them
    all in one batch (faster when only quality matters; the latency figures then exclude embedding).
    expansion: the BM25 query expansion (knowledge.retrieve.search), False to measure without it."""
    r1 = r5 = mrr = 0.0
    lat: list[float] = []
    if embedder is not None and mode != "bm25":
        embedder.clear_query_cache()
        if batch_embed:
            embedder.prime_queries([q.question for q in questions])
    for q in questions:
        t0 = time.perf_counter()
        hits = search(idx, embedder, q.question, [q.product] if use_product and q.product else None, k=10,
                      mode=mode, fusion=fusion, expansion=expansion)
        lat.append((time.perf_counter() - t0) * 1000)
        rank = next((i for i, h in enumerate(hits, 1) if is_expected(h.chunk, q.expected)), None)
        if rank is not None:
            r1 += rank == 1
            r5 += rank <= 5
            mrr += 1.0 / rank
    n = len(questions)
    return {
        "n": n, "recall@1": round(r1 / n, 4), "recall@5": round(r5 / n, 4), "mrr@10": round(mrr / n, 4),
        "p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2),
    }


def faquad_corpus(dataset: Path) -> tuple[list[Chunk], list[Question]]:
    """FaQuAD: every paragraph is one document (url faquad/<title>/<n>), every question points to it."""
    data = json.loads(Path(dataset).read_text(encoding="utf-8"))
    chunks: list[Chunk] = []
    questions: list[Question] = []
    for art in data["data"]:
        for i, para in enumerate(art["paragraphs"]):
            url = f"faquad/{art['title']}/{i}"
            chunks.append(Chunk(id=url, doc_key=url, url=url, title=art["title"].replace("_", " ").title(),
                                product=None, module=None, heading="", text=para["context"]))
            questions.extend(Question(qa["question"], url) for qa in para["qas"])
    return chunks, questions


def _passage_text(idx: LoadedIndex, doc: str, heading: str) -> str:
    """The text of the indexed chunk(s) of one document section (its url ends with `doc`)."""
    from .answer import evidence_text

    parts = [evidence_text(c) for c in idx.chunks if is_expected(c, doc) and c.heading.split(" > ")[-1] == heading]
    if not parts:
        raise EvalFileError(f"section not in the index: {doc} › {heading}")
    return "\n".join(parts)


def _answers(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise EvalFileError(f"{path}:{n}: invalid JSON ({exc})") from None
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) and row[k] for k in ("doc", "heading", "answer")):
            raise EvalFileError(f"{path}:{n}: needs string fields doc, heading and answer")
        rows.append(row)
    return rows


def faithfulness_eval(idx: LoadedIndex, good: Path, bad: Path) -> dict:
    """The faithfulness check (knowledge/faithfulness.py) over hand-written answers, each against
    the passage it cites: how many correct answers lose a sentence (false removals) or are
    rejected whole, and how many wrong answers are caught (lose at least one sentence)."""
    from .answer import idf_of
    from .faithfulness import check

    idf = idf_of(idx)
    goods, bads = _answers(good), _answers(bad)
    cut = rejected = caught = 0
    misses: list[str] = []
    for row in goods:
        result = check(row["answer"], [_passage_text(idx, row["doc"], row["heading"])], idf)
        if result.removed:
            cut += 1
            misses.append(f"boa cortada ({row['heading']}): " + "; ".join(r.reason for r in result.removed))
        if not result.supported:
            rejected += 1
    for row in bads:
        result = check(row["answer"], [_passage_text(idx, row["doc"], row["heading"])], idf)
        if result.removed:
            caught += 1
        else:
            misses.append(f"ruim não pega ({row.get('kind', '?')}): {row['answer'][:80]}")
    return {"good": len(goods), "good_cut": cut, "good_cut_share": cut / max(1, len(goods)),
            "good_rejected": rejected, "bad": len(bads), "bad_caught": caught,
            "bad_caught_share": caught / max(1, len(bads)), "misses": misses}
