"""An approved article answered with its citation by the real assistant (issue #16, done when).

The session's second stack (tests/conftest.py `variant_stack`: real Rasa server + action server,
started with ATENDE_CONSOLE_URL), so that its knowledge index, which this test re-ingests, is not
the one the other answer journeys read: a technician registers a solution
with "Sugerir como artigo", a manager approves the article, the real `python -m knowledge ingest`
runs, and the question asked over Rasa's REST channel is answered from the article, citing its
console URL. Before the approval the same question does not cite it.
"""
from __future__ import annotations

import os
import subprocess
from typing import Any, Iterator

import pytest
import requests

from helpdesk.db import dispose_engines, session_scope
from helpdesk.services import articles, technicians, tickets
from ops.paths import APP_PYTHON, ROOT
from tests.support.stack import VARIANT_CONSOLE_URL, Stack

pytestmark = pytest.mark.integration

CONSOLE = VARIANT_CONSOLE_URL  # "https://console.atende.example"
TITLE = "Emitir vale-troca no PDV"
BODY = ("Para emitir um vale-troca no PDV: pressione F7 > Trocas, informe o número do cupom da venda, "
        "marque os itens devolvidos e confirme em Emitir vale-troca. O vale-troca sai na impressora do "
        "caixa com código de barras e validade de 30 dias; o cliente usa o vale-troca como forma de "
        "pagamento na próxima compra.")
QUESTION = "como emitir vale-troca no pdv?"


@pytest.fixture(scope="module")
def article_stack(variant_stack: Stack) -> Iterator[Stack]:
    assert variant_stack.env["ATENDE_CONSOLE_URL"] == CONSOLE
    yield variant_stack
    dispose_engines()


def _ask(stack: Stack, sender: str) -> list[dict[str, Any]]:
    resp = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": QUESTION},
                         timeout=120)
    assert resp.status_code == 200, resp.text
    return list(resp.json())


def _approve_article(stack: Stack) -> int:
    """The console's path, through its services, on the stack's database."""
    url = stack.database_url
    with session_scope(url) as s:
        tech = technicians.create(s, name="Rita Suporte", email="rita.artigos@teste.dev", password="segredo-123")
        boss = technicians.create(s, name="Gil Gestor", email="gil.artigos@teste.dev", password="segredo-123",
                                  role="manager")
        t = tickets.open_ticket(s, customer_id=None, channel="phone", type="duvida", module="pdv",
                                subject="Vale-troca", description="Cliente quer trocar um produto.",
                                conversation_id=None)
        tickets.assume(s, t.id, tech.id)
        tickets.resolve(s, t.id, technician_id=tech.id, solution="Expliquei o F7 > Trocas.", suggest_article=True)
        aid = articles.listing(s, ["pending"])[0].id
        articles.approve(s, aid, manager_id=boss.id, title=TITLE, module="pdv", body=BODY)
    return aid


def _ingest(stack: Stack) -> str:
    env = dict(os.environ, **stack.env, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    done = subprocess.run([str(APP_PYTHON), "-m", "knowledge", "ingest"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_an_approved_article_is_cited_with_its_console_url(article_stack: Stack) -> None:
    before = " ".join(m.get("text", "") for m in _ask(article_stack, "artigo-antes"))
    assert f"{CONSOLE}/artigos" not in before

    aid = _approve_article(article_stack)
    log = _ingest(article_stack)
    assert "(ativada)" in log, log
    link = f"{CONSOLE}/artigos?id={aid}"

    messages = _ask(article_stack, "artigo-depois")
    texts = [m.get("text", "") for m in messages]
    answer = next((t for t in texts if "Fontes:" in t), "")
    assert answer, texts
    # the answer's text (Rasa sends paragraphs as messages of their own) comes from the article
    assert "F7 > Trocas" in "\n\n".join(texts), texts
    cited = [line for line in answer.splitlines() if line.startswith("[")]
    assert f"[1] {TITLE} — {link}" == cited[0], answer  # the article is the first source
    assert any("Isso resolveu?" in t for t in texts)
    # the website's JSON carries the same source
    sources = next(m["custom"]["sources"] for m in messages if isinstance(m.get("custom"), dict))
    assert {"title": TITLE, "url": link} == sources[0]
