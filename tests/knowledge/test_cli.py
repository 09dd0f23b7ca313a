"""The CLI contracts: ask --json, eval --json, ingest exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge.cli import main
from knowledge.config import REPO_ROOT

ANSWER_KEYS = {"answer", "sources", "grounded", "mode"}
EVAL_KEYS = {"n", "recall@1", "recall@5", "mrr@10", "p50_ms", "p95_ms"}


def test_ask_json_without_index_in_a_real_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    env["KNOWLEDGE_INDEX_DIR"] = str(tmp_path / "vazio")
    proc = subprocess.run([sys.executable, "-m", "knowledge", "ask", "Como emitir NF-e?", "--json"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == ANSWER_KEYS and out["grounded"] is False and out["sources"] == []
    assert out["mode"] == "extractive" and "Não encontrei na documentação" in out["answer"]


def test_ask_json_with_product_filter(demo_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "o pinpad não é encontrado", "--product", "erp", "--index", str(demo_index), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == ANSWER_KEYS and out["grounded"] is True and out["mode"] == "extractive"
    assert all(set(s) == {"title", "url", "score"} for s in out["sources"])
    assert out["sources"][0]["url"].endswith("/docs/erp-demo/tef/erros-tef.html#tef-101-pinpad-nao-encontrado")


def test_eval_json_contract_and_bad_file(demo_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qs = tmp_path / "q.jsonl"
    qs.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in [
        {"question": "erro 503 ao emitir nota", "expected": "erp/nfe/erro-503-emissao.md"},
        {"question": "como criar funil de vendas", "expected": "funil-de-vendas.md"},
        {"question": "pergunta sem resposta sobre astronomia", "expected": "nao-existe.md"},
    ]) + "\n")
    assert main(["eval", str(qs), "--index", str(demo_index), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == EVAL_KEYS and out["n"] == 3
    assert out["recall@5"] == pytest.approx(2 / 3, abs=1e-3) and out["p95_ms"] >= out["p50_ms"] > 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"pergunta": "x"}\n')
    assert main(["eval", str(bad), "--index", str(demo_index)]) == 2
    assert "expected" in capsys.readouterr().err
    assert main(["eval", str(qs), "--index", str(tmp_path / "none")]) == 2
    assert "nenhum índice" in capsys.readouterr().err


def test_ingest_bad_sources_and_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "s.yml"
    bad.write_text("sources: [{name: x}]")
    assert main(["ingest", "--sources", str(bad), "--index", str(tmp_path / "i")]) == 2
    assert "erro:" in capsys.readouterr().err
    assert not (tmp_path / "i" / "CURRENT").exists()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Horário do suporte: segunda a sexta, das 8h às 18h.\n")
    assert main(["ingest", "--path", str(docs), "--product", "erp", "--index", str(tmp_path / "i"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "Resumo da ingestão" in err and "trechos: 1" in err
    assert (tmp_path / "i" / "CURRENT").exists()
