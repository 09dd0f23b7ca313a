"""Follow-up questions (issue 14): retrieval recall of the LAST turn of the two- and three-turn
dialogues of knowledge/eval/followups.jsonl, asked alone and resolved against the conversation the
way the action server does (actions/followups.py: each turn resolved against the previous resolved
question, the `last_question` slot).

- "alone": the last turn as typed;
- "resolved": the deterministic rule (no LLM configured);
- "resolved+LLM": `resolve_question` with an LLM configured, here a loopback OpenAI-compatible
  server (loopback/openai_api.py) that answers each condensation call with the reference
  rewrite of knowledge/eval/followups_condensed.jsonl. The whole path runs: the JSON-quoted
  prompt, the HTTP call with its timeout, the checks of `accept_condensed` (a refused rewrite
  falls back to the rule, counted as "refused"). It measures what a model that condenses as well
  as the reference gets, not a given model.

    .venv/bin/python bench/followup_eval.py [--index DIR] [--no-product] [--no-llm] [--json]

Without --index the demo documentation is ingested into a temporary folder first (about a minute).
Prints n, recall@1, recall@5 and MRR@10 for each variant, and the dialogues still missed.
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
REWRITES = ROOT / "knowledge" / "eval" / "followups_condensed.jsonl"


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


def load_rewrites(path: Path, rows: list[dict]) -> list[list[str]]:
    """The reference standalone rewrite of every turn after the first, aligned with `rows`."""
    by_turns = {tuple(r["turns"]): r["standalone"] for r in
                (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())}
    out = []
    for row in rows:
        rewrites = by_turns.get(tuple(row["turns"]))
        if not (isinstance(rewrites, list) and len(rewrites) == len(row["turns"]) - 1):
            raise SystemExit(f"{path}: no reference rewrite for {row['turns']}")
        out.append(rewrites)
    return out


class LoopbackCondenser:
    """A loopback LLM that answers each condensation call with the reference rewrite of the turn
    being resolved; the action server's code path (`resolve_question`) does the rest."""

    def __init__(self) -> None:
        from loopback.openai_api import FakeOpenAI

        self.server = FakeOpenAI()
        self.current = ""
        self.server.reply_fn = lambda body: self.current
        self.calls = self.refused = 0

    def __enter__(self) -> "LoopbackCondenser":
        self.server.start()
        self._env = {k: os.environ.get(k) for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "KNOWLEDGE_CONDENSE")}
        os.environ.update(OPENAI_API_KEY="sk-loopback", OPENAI_BASE_URL=self.server.url, KNOWLEDGE_CONDENSE="1")
        return self

    def __exit__(self, *exc: object) -> None:
        for k, v in self._env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self.server.stop()

    def chain(self, turns: list[str], rewrites: list[str], modules: list) -> list[str]:  # type: ignore[type-arg]
        from actions.followups import resolve_question

        out: list[str] = []
        previous: str | None = None
        for n, text in enumerate(turns):
            self.current = rewrites[n - 1] if n else text
            before = len(self.server.chat_requests())
            # the action passes the customer's earlier messages too (actions.knowledge_answers.earlier_questions)
            query = resolve_question(text, previous, timeout_s=10.0, modules=modules, earlier=turns[:n])
            if len(self.server.chat_requests()) > before:
                self.calls += 1
                self.refused += query != self.current
            out.append(query)
            previous = query
        return out


def measure(index_dir: Path, rows: list[dict], use_product: bool, with_llm: bool = True) -> dict:
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
    queries: dict[str, list[str]] = {
        "alone": [row["turns"][-1] for row in rows],
        "resolved": [resolved_chain(row["turns"], modules)[-1] for row in rows],
    }
    llm: dict[str, int] = {}
    if with_llm:
        rewrites = load_rewrites(REWRITES, rows)
        with LoopbackCondenser() as condenser:
            queries["resolved+LLM"] = [condenser.chain(row["turns"], rw, modules)[-1]
                                       for row, rw in zip(rows, rewrites)]
        llm = {"calls": condenser.calls, "refused": condenser.refused}
    figures: dict[str, dict[str, float]] = {}
    misses: dict[str, list[str]] = {}
    for variant, variant_queries in queries.items():
        r1 = r5 = mrr = 0.0
        for row, query in zip(rows, variant_queries):
            products = [row["product"]] if use_product and row.get("product") else None
            hits = search(index, embedder, query, products, k=10)
            rank = next((i for i, h in enumerate(hits, 1) if _is_expected(h.chunk, row["expected"])), None)
            if rank is not None:
                r1 += rank == 1
                r5 += rank <= 5
                mrr += 1.0 / rank
            if variant != "alone" and (rank is None or rank > 5):
                misses.setdefault(variant, []).append(f"{' → '.join(row['turns'])}  ⇒  {query!r} (rank {rank})")
        n = len(rows)
        figures[variant] = {"n": n, "recall@1": round(r1 / n, 3), "recall@5": round(r5 / n, 3),
                            "mrr@10": round(mrr / n, 3)}
    return {"figures": figures, "misses": misses, "llm": llm}


def _is_expected(chunk, expected: str) -> bool:  # type: ignore[no-untyped-def]
    """The chunk comes from the expected file: its document key (the source path), else its URL
    without the anchor (a folder source may be cited by a published page, knowledge/publish.py)."""
    return chunk.doc_key.endswith(expected) or chunk.url.split("#", 1)[0].endswith(expected)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", help="an index of the demo documentation (default: ingest one now)")
    parser.add_argument("--no-product", action="store_true", help="no product filter (the default filters "
                        "by the dialogue's product, as the action does for a known customer)")
    parser.add_argument("--no-llm", action="store_true", help="skip the resolved+LLM column (loopback LLM)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = load(DIALOGUES)
    if args.index:
        result = measure(Path(args.index), rows, not args.no_product, not args.no_llm)
    else:
        from knowledge.config import Settings
        from knowledge.ingest import ingest
        from knowledge.sources import load_sources

        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings.from_env(tmp)
            ingest(load_sources(ROOT / "knowledge" / "sources.yml"), settings, progress=False)
            result = measure(Path(tmp), rows, not args.no_product, not args.no_llm)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    for variant, f in result["figures"].items():
        print(f"[{variant:12}] n={f['n']}  recall@1={f['recall@1']:.3f}  recall@5={f['recall@5']:.3f}  "
              f"MRR@10={f['mrr@10']:.3f}")
    if result["llm"]:
        print(f"loopback LLM: {result['llm']['calls']} condensation calls, {result['llm']['refused']} rewrites "
              "refused (resolved by the rule instead)")
    for variant, missed in result["misses"].items():
        for miss in missed:
            print(f"  miss [{variant}]: {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
