"""Follow-up questions (issue 14): retrieval recall of the LAST turn of the two- and three-turn
dialogues of knowledge/eval/followups.jsonl, asked alone and resolved against the conversation the
way the action server does (actions/followups.py: each turn resolved against the previous resolved
question, the `last_question` slot).

    .venv/bin/python bench/followup_eval.py [--index DIR] [--no-product] [--json]

Without --index the demo documentation is ingested into a temporary folder first (about a minute).
Prints n, recall@1, recall@5 and MRR@10 for "alone" and "resolved", and the dialogues the resolver
still misses.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DIALOGUES = ROOT / "knowledge" / "eval" / "followups.jsonl"


def load(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        turns = row.get("turns")
        if not (isinstance(turns, list) and len(turns) >= 2 and all(isinstance(t, str) and t.strip() for t in turns)
                and isinstance(row.get("expected"), str)):
            raise SystemExit(f"{path}:{n}: needs turns (2 or more strings) and expected")
        rows.append(row)
    return rows


def resolved_chain(turns: list[str], modules: list) -> list[str]:  # type: ignore[type-arg]
    from actions.followups import resolve_followup

    out: list[str] = []
    previous: str | None = None
    for text in turns:
        query = resolve_followup(text, previous, modules)
        out.append(query)
        previous = query
    return out


def measure(index_dir: Path, rows: list[dict], use_product: bool) -> dict:
    from actions.followups import file_modules
    from knowledge.config import Settings
    from knowledge.retrieve import search
    from knowledge.runtime import get_runtime

    settings = Settings.from_env(index_dir)
    runtime = get_runtime(settings.index_dir)
    index = runtime.current()
    if index is None:
        raise SystemExit(f"no index in {index_dir}")
    embedder = runtime.embedder(index, settings)
    modules = file_modules()
    figures: dict[str, dict[str, float]] = {}
    misses: list[str] = []
    for variant in ("alone", "resolved"):
        r1 = r5 = mrr = 0.0
        for row in rows:
            query = row["turns"][-1] if variant == "alone" else resolved_chain(row["turns"], modules)[-1]
            products = [row["product"]] if use_product and row.get("product") else None
            hits = search(index, embedder, query, products, k=10)
            rank = next((i for i, h in enumerate(hits, 1) if h.chunk.doc_key.endswith(row["expected"])), None)
            if rank is not None:
                r1 += rank == 1
                r5 += rank <= 5
                mrr += 1.0 / rank
            if variant == "resolved" and (rank is None or rank > 5):
                misses.append(f"{' → '.join(row['turns'])}  ⇒  {query!r} (rank {rank})")
        n = len(rows)
        figures[variant] = {"n": n, "recall@1": round(r1 / n, 3), "recall@5": round(r5 / n, 3),
                            "mrr@10": round(mrr / n, 3)}
    return {"figures": figures, "misses": misses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", help="an index of the demo documentation (default: ingest one now)")
    parser.add_argument("--no-product", action="store_true", help="no product filter (the default filters "
                        "by the dialogue's product, as the action does for a known customer)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = load(DIALOGUES)
    if args.index:
        result = measure(Path(args.index), rows, not args.no_product)
    else:
        from knowledge.config import Settings
        from knowledge.ingest import ingest
        from knowledge.sources import load_sources

        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings.from_env(tmp)
            ingest(load_sources(ROOT / "knowledge" / "sources.yml"), settings, progress=False)
            result = measure(Path(tmp), rows, not args.no_product)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    for variant, f in result["figures"].items():
        print(f"[{variant:8}] n={f['n']}  recall@1={f['recall@1']:.3f}  recall@5={f['recall@5']:.3f}  "
              f"MRR@10={f['mrr@10']:.3f}")
    for miss in result["misses"]:
        print(f"  miss: {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
