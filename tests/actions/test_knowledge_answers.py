"""Answers from the docs, the "Isso resolveu?" loop, and question logging for the gaps report."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import select

import actions.knowledge_answers as ka
from actions.knowledge_answers import (
    ActionAnswerQuestion, ActionAskAnythingElse, ActionAskMore, ActionMarkResolved, ActionOfferSupport,
)

from tests.support.fake_openai import FakeOpenAI

from .conftest import MARIA_PHONE, Demo, make_tracker, responses, run_action, slots_of

ROOT = Path(__file__).resolve().parents[2]
DOC = """# Sangria no PDV

## Como fazer a sangria

Para fazer a sangria no PDV, abra o menu Caixa, escolha Sangria, informe o valor retirado e confirme
com a senha do supervisor. O comprovante da sangria sai na impressora do caixa.
"""


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real knowledge index (python -m knowledge ingest) of one small document."""
    base = tmp_path_factory.mktemp("knowledge")
    docs = base / "docs"
    docs.mkdir()
    (docs / "sangria.md").write_text(DOC, encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1", OPENAI_API_KEY="", PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "knowledge", "ingest", "--path", str(docs), "--product", "erp",
                    "--index", str(base / "index"), "--quiet"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return base / "index"


@pytest.fixture()
def docs(index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("KNOWLEDGE_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("OPENAI_API_KEY", "")
    yield index_dir


def _questions(url: str) -> list[tuple[str, bool, bool]]:
    from helpdesk.db import session_scope
    from helpdesk.models import KnowledgeQuery

    with session_scope() as s:
        return [(q.question, q.answered, q.grounded) for q in s.scalars(select(KnowledgeQuery))]


def _outcome(conversation: str) -> dict[str, object]:
    from helpdesk.db import session_scope
    from helpdesk.services import outcomes

    with session_scope() as s:
        row = outcomes.current(s, conversation, create=False)
        assert row is not None
        return {"answered": row.answered_from_docs, "resolved": row.resolved_by_bot, "handed": row.handed_off,
                "rating": row.rating, "customer": row.customer_id, "channel": row.channel}


def test_grounded_answer_with_sources_and_did_it_help(db: Demo, docs: Path) -> None:
    tracker = make_tracker("como faço sangria no pdv?", "ask_question", sender=MARIA_PHONE, channel="whatsapp",
                           entities=[{"entity": "module", "value": "pdv"}])
    messages, events = run_action(ActionAnswerQuestion(), tracker)
    assert "menu Caixa" in messages[0]["text"]
    assert "Fontes:" in messages[0]["text"] and "Sangria no PDV" in messages[0]["text"].split("Fontes:")[1]
    # numbered like the citations, "[1] Título — URL", so a WhatsApp reader can match them
    listing = messages[0]["text"].split("Fontes:\n")[1].splitlines()
    assert listing[0].startswith("[1] Sangria no PDV") and " — " in listing[0] and listing[0].endswith("sangria.md")
    assert all(line.startswith(f"[{n}] ") for n, line in enumerate(listing, 1))
    assert messages[1]["response"] == "utter_did_it_help"
    slots = slots_of(events)
    assert slots["awaiting"] == "resolved_check"
    assert slots["ticket_module"] == "pdv" and slots["ticket_type"] == "duvida"
    assert _questions(db.url) == [("como faço sangria no pdv?", True, True)]
    assert _outcome(f"whatsapp:{MARIA_PHONE}")["answered"] is True
    assert _outcome(f"whatsapp:{MARIA_PHONE}")["customer"] == db.maria_id


def test_website_gets_sources_as_json_too(db: Demo, docs: Path) -> None:
    tracker = make_tracker("como fazer a sangria do pdv", "ask_question", channel="website")
    messages, _ = run_action(ActionAnswerQuestion(), tracker)
    sources = messages[0]["custom"]["sources"]
    assert sources and all(set(src) == {"title", "url"} for src in sources)
    assert sources[0]["title"].startswith("Sangria no PDV") and sources[0]["url"].endswith("sangria.md")


def test_unknown_question_offers_a_ticket_and_is_logged_as_gap(db: Demo, docs: Path) -> None:
    messages, events = run_action(ActionAnswerQuestion(), make_tracker("integra com a shopee?", "ask_question"))
    assert responses(messages) == ["utter_no_answer"]
    assert slots_of(events)["awaiting"] == "offer_ticket"
    assert _questions(db.url) == [("integra com a shopee?", False, False)]


def test_unanswered_problem_starts_the_ticket_form_at_once(db: Demo, docs: Path) -> None:
    tracker = make_tracker("o tef nao passa cartao", "report_problem", entities=[{"entity": "module", "value": "tef"}])
    messages, events = run_action(ActionAnswerQuestion(), tracker)
    assert messages == []
    assert {"event": "followup", "name": "ticket_form"} in [
        {"event": e["event"], "name": e.get("name")} for e in events]
    slots = slots_of(events)
    assert (slots["ticket_type"], slots["ticket_module"], slots["ticket_description"]) == (
        "erro", "tef", "o tef nao passa cartao")


def test_llm_budget_per_conversation_falls_back_to_extractive(
        db: Demo, docs: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from knowledge.budget import llm_budget

    llm_budget.reset()
    with FakeOpenAI(default_reply="Abra o menu Caixa, escolha Sangria e confirme com a senha do supervisor [1].") as llm:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
        monkeypatch.setenv("KNOWLEDGE_LLM_CALLS_PER_HOUR", "2")
        question = "como faço sangria no pdv?"
        for n in (1, 2):
            messages, _ = run_action(ActionAnswerQuestion(), make_tracker(question, "ask_question", sender="conv-a"))
            assert len(llm.chat_requests()) == n
            assert messages[0]["text"].startswith("Abra o menu Caixa") and "Fontes:" in messages[0]["text"]
        with caplog.at_level(logging.WARNING, logger="knowledge"):
            messages, events = run_action(ActionAnswerQuestion(), make_tracker(question, "ask_question",
                                                                               sender="conv-a"))
        assert len(llm.chat_requests()) == 2  # the third call never reached the LLM server
        # ...but the customer still gets an answer from the docs, with its sources
        assert messages[0]["text"].startswith("Encontrei isto na documentação") and "menu Caixa" in messages[0]["text"]
        assert "Fontes:" in messages[0]["text"] and messages[1]["response"] == "utter_did_it_help"
        assert slots_of(events)["awaiting"] == "resolved_check"
        assert "conv-a used its 2 LLM calls of the last hour" in caplog.text
        # another conversation has its own budget
        messages, _ = run_action(ActionAnswerQuestion(), make_tracker(question, "ask_question", sender="conv-b"))
        assert len(llm.chat_requests()) == 3 and messages[0]["text"].startswith("Abra o menu Caixa")
    llm_budget.reset()


def test_knowledge_failure_is_polite(db: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(question: str, products: list[str] | None = None, *, conversation_id: str | None = None) -> object:
        raise RuntimeError("index missing")

    monkeypatch.setattr(ka, "_answer_fn", broken)
    messages, _ = run_action(ActionAnswerQuestion(), make_tracker("como emitir nfe", "ask_question"))
    assert responses(messages) == ["utter_no_answer"]


@pytest.mark.parametrize("text,expected", [
    ("", "utter_empty_message"), ("   ", "utter_empty_message"),
    ("a" * 10_000, "utter_message_too_long"), ("😀😀🎉", "utter_emoji_only"),
])
def test_bad_input_never_reaches_the_knowledge_base(db: Demo, docs: Path, text: str, expected: str) -> None:
    messages, events = run_action(ActionAnswerQuestion(), make_tracker(text, "ask_question"))
    assert responses(messages) == [expected]
    assert events == []
    assert _questions(db.url) == []


def test_resolved_loop(db: Demo) -> None:
    messages, events = run_action(ActionMarkResolved(), make_tracker("sim", "affirm", sender="c-res"))
    assert responses(messages) == ["utter_glad", "utter_anything_else"]
    assert slots_of(events) == {"awaiting": "anything_else"}
    assert _outcome("c-res")["resolved"] is True
    messages, events = run_action(ActionAskMore(), make_tracker("sim", "affirm"))
    assert responses(messages) == ["utter_ask_more"] and slots_of(events) == {"awaiting": None}


def test_not_resolved_offers_support(db: Demo) -> None:
    messages, events = run_action(ActionOfferSupport(), make_tracker("nao", "deny", sender="c-nr"))
    assert responses(messages) == ["utter_offer_support"]
    assert slots_of(events) == {"awaiting": "offer_ticket"}
    assert _outcome("c-nr")["resolved"] is False
    messages, events = run_action(ActionAskAnythingElse(), make_tracker("nao", "deny"))
    assert responses(messages) == ["utter_anything_else"] and slots_of(events) == {"awaiting": "anything_else"}


def test_sources_are_numbered_in_citation_order() -> None:
    from actions.knowledge_answers import render_sources_text

    text = render_sources_text([{"title": "Guia da NF-e", "url": "https://docs.example.com/nfe"},
                                {"title": "Sangria no PDV", "url": "https://docs.example.com/pdv"},
                                {"title": "Sem endereço", "url": ""}])
    assert text == ("Fontes:\n[1] Guia da NF-e — https://docs.example.com/nfe\n"
                    "[2] Sangria no PDV — https://docs.example.com/pdv\n[3] Sem endereço")
