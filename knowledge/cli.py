"""Command line: python -m knowledge ingest | ask | eval."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .config import DEFAULT_SOURCES_FILE, Settings


def _setup_logging(verbose: bool) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "sentence_transformers", "transformers", "bm25s", "urllib3", "openai", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
    except Exception:  # pragma: no cover - optional quieting only
        pass


def cmd_ingest(args: argparse.Namespace) -> int:
    from .ingest import ingest
    from .sources import SourcesError, load_sources, source_for_path

    settings = Settings.from_env(args.index)
    try:
        specs = []
        if args.sources or not args.path:
            specs += load_sources(Path(args.sources) if args.sources else DEFAULT_SOURCES_FILE)
        specs += [source_for_path(p, args.product) for p in args.path or []]
    except SourcesError as exc:
        print(f"erro: {exc}", file=sys.stderr)
        return 2
    print(f"Indexando {len(specs)} fonte(s) em {settings.index_dir} (modelo: {settings.embedding_model})",
          file=sys.stderr)
    try:
        summary = ingest(specs, settings, progress=None if not args.quiet else False)
    except RuntimeError as exc:
        print(f"erro: {exc}", file=sys.stderr)
        return 1
    print(summary.render(), file=sys.stderr)
    if args.json:
        print(json.dumps({k: v for k, v in summary.__dict__.items()}, ensure_ascii=False))
    return 0 if summary.version else 1


def cmd_ask(args: argparse.Namespace) -> int:
    from .runtime import answer

    result = answer(args.question, args.product or None, index_dir=args.index)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        from .answer import render_sources

        print(result.answer)
        if result.sources:
            print("\n" + render_sources(result))
        print(f"\n(modo: {result.mode}; fundamentada: {'sim' if result.grounded else 'não'})", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import EvalFileError, evaluate, load_questions
    from .index import IndexNotFound, IndexStore
    from .runtime import get_runtime

    settings = Settings.from_env(args.index)
    try:
        questions = load_questions(Path(args.file))
    except (OSError, EvalFileError) as exc:
        print(f"erro: {exc}", file=sys.stderr)
        return 2
    try:
        index = IndexStore(settings.index_dir).load()
    except IndexNotFound:
        print(f"erro: nenhum índice em {settings.index_dir}; rode `python -m knowledge ingest`", file=sys.stderr)
        return 2
    embedder = get_runtime(settings.index_dir).embedder(index, settings)
    modes = ["bm25", "dense", "hybrid"] if args.compare else [args.mode]
    results = {m: evaluate(index, embedder, questions, mode=m, use_product=args.use_product) for m in modes}
    if args.json:
        print(json.dumps(results if args.compare else results[args.mode], ensure_ascii=False))
        return 0
    for mode, r in results.items():
        print(f"[{mode}] n={r['n']}  recall@1={r['recall@1']:.3f}  recall@5={r['recall@5']:.3f}  "
              f"MRR@10={r['mrr@10']:.3f}  latência p50={r['p50_ms']:.1f} ms  p95={r['p95_ms']:.1f} ms")
    return 0


def cmd_faithfulness(args: argparse.Namespace) -> int:
    from .evaluate import EvalFileError, faithfulness_eval
    from .index import IndexNotFound, IndexStore

    settings = Settings.from_env(args.index)
    try:
        index = IndexStore(settings.index_dir).load()
    except IndexNotFound:
        print(f"erro: nenhum índice em {settings.index_dir}; rode `python -m knowledge ingest`", file=sys.stderr)
        return 2
    try:
        result = faithfulness_eval(index, Path(args.good), Path(args.bad))
    except (OSError, EvalFileError) as exc:
        print(f"erro: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"respostas boas: {result['good']}  com frase removida por engano: {result['good_cut']} "
          f"({result['good_cut_share']:.1%})  rejeitadas inteiras: {result['good_rejected']}")
    print(f"respostas ruins: {result['bad']}  pegas: {result['bad_caught']} ({result['bad_caught_share']:.1%})")
    for miss in result["misses"]:
        print(f"  - {miss}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m knowledge", description="Base de conhecimento do Atende")
    p.add_argument("-v", "--verbose", action="store_true", help="mostra logs detalhados")
    sub = p.add_subparsers(dest="command", required=True)

    pi = sub.add_parser("ingest", help="baixa, extrai, divide, gera embeddings e indexa a documentação")
    pi.add_argument("--sources", help=f"arquivo de fontes (padrão: {DEFAULT_SOURCES_FILE})")
    pi.add_argument("--path", action="append", metavar="DIR_OR_URL",
                    help="pasta, sitemap (.xml) ou URL inicial; pode repetir")
    pi.add_argument("--product", help="código do produto para as fontes de --path")
    pi.add_argument("--index", help="pasta do índice (padrão: KNOWLEDGE_INDEX_DIR ou var/knowledge)")
    pi.add_argument("--quiet", action="store_true", help="sem barras de progresso")
    pi.add_argument("--json", action="store_true", help="imprime o resumo em JSON")
    pi.set_defaults(func=cmd_ingest)

    pa = sub.add_parser("ask", help="responde a uma pergunta a partir da documentação")
    pa.add_argument("question")
    pa.add_argument("--product", action="append", help="filtra por produto (pode repetir)")
    pa.add_argument("--index")
    pa.add_argument("--json", action="store_true")
    pa.set_defaults(func=cmd_ask)

    pe = sub.add_parser("eval", help="mede recall@1, recall@5, MRR@10 e latência")
    pe.add_argument("file", help='JSONL: {"question": "...", "expected": "..."} por linha')
    pe.add_argument("--index")
    pe.add_argument("--json", action="store_true")
    pe.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid")
    pe.add_argument("--compare", action="store_true", help="mede bm25, dense e hybrid na mesma execução")
    pe.add_argument("--use-product", action="store_true", help="usa o campo product das perguntas como filtro")
    pe.set_defaults(func=cmd_eval)

    pf = sub.add_parser("faithfulness", help="mede a checagem de respostas contra as fontes")
    pf.add_argument("--good", default=str(Path(__file__).parent / "eval" / "faithful_answers.jsonl"),
                    help="JSONL de respostas corretas: {\"doc\", \"heading\", \"answer\"}")
    pf.add_argument("--bad", default=str(Path(__file__).parent / "eval" / "unfaithful_answers.jsonl"),
                    help="JSONL de respostas que a checagem deve pegar")
    pf.add_argument("--index")
    pf.add_argument("--json", action="store_true")
    pf.set_defaults(func=cmd_faithfulness)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    return int(args.func(args))
