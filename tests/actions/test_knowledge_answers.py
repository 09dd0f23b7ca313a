"""Answers from the docs, the "Isso resolveu?" loop, and question logging for the gaps report."""
from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import select

import actions.knowledge_answers as ka
from actions.knowledge_answers import (
    ActionAnswerQuestion, ActionAskAnythingElse, ActionAskMore, ActionMarkResolved, ActionOfferSupport,
)

from loopback.openai_api import FakeOpenAI

from .conftest import DOMAIN, MARIA_PHONE, Demo, make_tracker, responses, run_action, slots_of

ROOT = Path(__file__).resolve().parents[2]
DOC = """# Sangria no PDV

## Como fazer a sangria

Para fazer a sangria no PDV, abra o menu Caixa, escolha Sangria, informe o valor retirado e confirme
com a senha do supervisor. O comprovante da sangria sai na impressora do caixa.
"""

# a reply the faithfulness check accepts: what DOC says
LLM_REPLY = "Abra o menu Caixa, escolha Sangria e confirme com a senha do supervisor [1]."


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
    assert listing[0].startswith("[1] Sangria no PDV") and " — " in listing[0] and "/sangria.html#" in listing[0]
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
    assert sources[0]["title"].startswith("Sangria no PDV") and "/sangria.html#" in sources[0]["url"]


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
    with FakeOpenAI(default_reply=LLM_REPLY) as llm:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
        monkeypatch.setenv("KNOWLEDGE_ANSWER_CACHE_SIZE", "0")  # every ask reaches the LLM (cache: test_cache.py)
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
    # each question is logged with how it was answered and the tokens it cost (cost report)
    from helpdesk.db import session_scope
    from helpdesk.models import KnowledgeQuery

    with session_scope() as s:
        rows = s.scalars(select(KnowledgeQuery).order_by(KnowledgeQuery.id)).all()
        assert [(r.conversation_id, r.mode, r.cached) for r in rows] == [
            ("conv-a", "llm", False), ("conv-a", "llm", False), ("conv-a", "extractive", False),
            ("conv-b", "llm", False)]
        assert all(r.llm_tokens > 0 for r in rows if r.mode == "llm") and rows[2].llm_tokens == 0


def test_knowledge_failure_is_polite(db: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(question: str, products: list[str] | None = None, *, conversation_id: str | None = None,
               timeout_s: float | None = None) -> object:
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


# ------------------------------------------------------------------ never block the event loop
SANGRIA = "como faço sangria no pdv?"


@pytest.fixture()
def slow_llm(docs: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    from knowledge.budget import llm_budget

    llm_budget.reset()
    with FakeOpenAI(default_reply=LLM_REPLY) as llm:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
        monkeypatch.setenv("KNOWLEDGE_ANSWER_CACHE_SIZE", "0")  # every ask reaches the LLM (cache: test_cache.py)
        yield llm
    llm_budget.reset()


async def _run(action: object, tracker: object) -> tuple[list[dict[str, object]], list[dict[str, object]], float]:
    from rasa_sdk.executor import CollectingDispatcher

    dispatcher = CollectingDispatcher()
    started = time.monotonic()
    events = await action.run(dispatcher, tracker, DOMAIN)  # type: ignore[attr-defined]
    return dispatcher.messages, events, time.monotonic() - started


def test_concurrent_questions_do_not_wait_for_each_others_llm(db: Demo, slow_llm: FakeOpenAI) -> None:
    """8 conversations ask at once, the LLM takes 1 s each: together well under 8 s, and another
    conversation's action is served at once while they wait (the LLM call is off the event loop)."""
    n, delay = 8, 1.0
    run_action(ActionAnswerQuestion(), make_tracker(SANGRIA, "ask_question", sender="warm"))  # model + index
    slow_llm.default_delay_s = delay

    async def scenario() -> tuple[list[tuple[list[dict[str, object]], list[dict[str, object]], float]], float, float]:
        started = time.monotonic()
        asks = [asyncio.create_task(_run(ActionAnswerQuestion(),
                                         make_tracker(SANGRIA, "ask_question", sender=f"conc-{i}")))
                for i in range(n)]

        async def other_conversation() -> float:
            await asyncio.sleep(0.3)  # the questions are now waiting on the LLM
            await _run(ActionAskMore(), make_tracker("sim", "affirm", sender="other"))
            return time.monotonic() - started - 0.3  # how long after it was due it was served

        other = asyncio.create_task(other_conversation())
        results = await asyncio.gather(*asks)
        return results, time.monotonic() - started, await other

    results, total, other = asyncio.run(scenario())
    print(f"\n{n} concurrent questions, LLM delay {delay:.1f} s: {total:.2f} s in all "
          f"(sequential would be >= {n * delay:.0f} s); another action due meanwhile served after "
          f"{other * 1000:.0f} ms; "
          f"LLM requests in flight at once: {slow_llm.max_concurrent}")
    assert len(slow_llm.chat_requests()) == n + 1
    for messages, events, _ in results:
        assert messages[0]["text"].startswith("Abra o menu Caixa") and "Fontes:" in messages[0]["text"]
        assert slots_of(events)["awaiting"] == "resolved_check"
    assert total < 0.5 * n * delay
    assert other < 0.5 * delay
    assert slow_llm.max_concurrent > 1


def test_llm_slower_than_the_timeout_still_answers_from_the_docs(
        db: Demo, slow_llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOWLEDGE_ANSWER_TIMEOUT_S", "1.5")
    run_action(ActionAnswerQuestion(), make_tracker(SANGRIA, "ask_question", sender="warm-2"))  # model + index
    slow_llm.default_delay_s = 5.0
    started = time.monotonic()
    messages, events = run_action(ActionAnswerQuestion(), make_tracker(SANGRIA, "ask_question", sender="slow"))
    elapsed = time.monotonic() - started
    assert elapsed < 3.5, elapsed  # the deadline, not the LLM's 5 s
    assert messages[0]["text"].startswith("Encontrei isto na documentação") and "menu Caixa" in messages[0]["text"]
    assert messages[1]["response"] == "utter_did_it_help"
    assert slots_of(events)["awaiting"] == "resolved_check"


def test_a_worker_past_the_deadline_takes_the_not_found_path(db: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    def stuck(question: str, products: list[str] | None = None, **_: object) -> object:
        time.sleep(2.0)
        raise AssertionError("never used")

    monkeypatch.setattr(ka, "_answer_fn", stuck)
    monkeypatch.setattr(ka, "TIMEOUT_GRACE_S", 0.0)
    monkeypatch.setenv("KNOWLEDGE_ANSWER_TIMEOUT_S", "0.3")
    started = time.monotonic()
    messages, events = run_action(ActionAnswerQuestion(), make_tracker("como emitir nfe", "ask_question"))
    assert time.monotonic() - started < 1.5
    assert responses(messages) == ["utter_no_answer"] and slots_of(events)["awaiting"] == "offer_ticket"


# ------------------------------------------------------------------ warm start
PRELOAD_CHECK = """
import json, sys, time
import actions.knowledge_answers as ka
thread = ka.preload_thread
if thread is None:
    print(json.dumps({"thread": False})); sys.exit(0)
thread.join(120)
import knowledge, knowledge.embed as embed, knowledge.runtime as runtime
from knowledge.config import Settings
rt = runtime.get_runtime(Settings.from_env().index_dir)
before = (embed.model_loads, rt.index_loads)
started = time.monotonic()
result = knowledge.answer("como faço sangria no pdv?")
print(json.dumps({"thread": True, "before": before, "after": (embed.model_loads, rt.index_loads),
                  "grounded": result.grounded, "first_answer_s": time.monotonic() - started}))
"""


def _preload_run(index_dir: Path, preload: str | None) -> dict[str, object]:
    import json

    env = dict(os.environ, HF_HUB_OFFLINE="1", OPENAI_API_KEY="", PYTHONPATH=str(ROOT),
               KNOWLEDGE_INDEX_DIR=str(index_dir))
    env.pop("KNOWLEDGE_PRELOAD", None)
    if preload is not None:
        env["KNOWLEDGE_PRELOAD"] = preload
    out = subprocess.run([sys.executable, "-c", PRELOAD_CHECK], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=180)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_actions_preloads_model_and_index(index_dir: Path) -> None:
    """As the action server does (it imports every actions module): the first answer loads nothing."""
    run = _preload_run(index_dir, None)
    assert run["thread"] is True
    assert run["before"] == [1, 1] and run["after"] == [1, 1]  # model and index loaded once, by the preload
    assert run["grounded"] is True


def test_preload_can_be_disabled(index_dir: Path) -> None:
    assert _preload_run(index_dir, "0") == {"thread": False}


# ------------------------------------------------------------------ follow-up questions
@pytest.fixture(scope="session")
def demo_docs_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo documentation (knowledge/sources.yml), ingested as `make run` does."""
    from knowledge.ingest import ingest
    from knowledge.sources import load_sources
    from tests.knowledge.conftest import DEMO_SOURCES, fast_settings

    index = tmp_path_factory.mktemp("demo-docs") / "index"
    summary = ingest(load_sources(DEMO_SOURCES), fast_settings(index), progress=False)
    assert summary.swapped and summary.failed == 0, summary.render()
    return index


@pytest.fixture()
def demo_docs(demo_docs_index: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KNOWLEDGE_INDEX_DIR", str(demo_docs_index))
    monkeypatch.setenv("OPENAI_API_KEY", "")
    return demo_docs_index


def _ask(text: str, last_question: str | None, sender: str) -> tuple[list[dict[str, object]], dict[str, object]]:
    tracker = make_tracker(text, "ask_question", sender=sender, channel="website",
                           slots={"last_question": last_question} if last_question else None)
    messages, events = run_action(ActionAnswerQuestion(), tracker)
    return messages, slots_of(events)


def test_follow_up_question_keeps_the_previous_questions_context(db: Demo, demo_docs: Path) -> None:
    messages, slots = _ask("como instalo o PDV?", None, "fu-1")
    assert "/docs/erp-demo/pdv/instalacao.html#" in messages[0]["custom"]["sources"][0]["url"]
    assert slots["last_question"] == "como instalo o PDV?"
    messages, slots = _ask("e no TEF?", slots["last_question"], "fu-1")
    urls = [src["url"] for src in messages[0]["custom"]["sources"]]
    assert "/docs/erp-demo/tef/instalacao-e-configuracao.html#" in urls[0], urls
    assert slots["last_question"] == "como instalo o TEF?"  # the next follow-up builds on the resolved one
    assert slots["ticket_description"] == "como instalo o TEF?"
    # alone, "e no TEF?" is not an installation question
    alone = ka.answer_function()("e no TEF?", None)
    assert not alone.grounded or "/docs/erp-demo/tef/instalacao-e-configuracao.html#" not in alone.sources[0].url


def test_a_full_new_question_is_not_merged(db: Demo, demo_docs: Path) -> None:
    question = "como faço a conciliação dos cartões do TEF?"
    messages, slots = _ask(question, "como instalo o PDV?", "fu-2")
    assert slots["last_question"] == question
    assert "/docs/erp-demo/tef/conciliacao-de-cartoes.html#" in messages[0]["custom"]["sources"][0]["url"]
    assert [q for q, _, _ in _questions(db.url)] == [question]


@pytest.mark.parametrize("previous,text,expected", [
    ("como instalo o PDV?", "e no TEF?", "como instalo o TEF?"),
    ("como instalo o PDV?", "e na nota fiscal?", "como instalo o NF-e?"),  # synonym -> module name
    ("como instalo o PDV?", "no BI", "como instalo o BI?"),
    ("como faço backup do gestor?", "e pra restaurar depois?",
     "como faço backup do gestor? e pra restaurar depois?"),  # no module named: previous + new text
    ("como instalo o PDV?", "mas e a impressora do TEF?", "como instalo o TEF? mas e a impressora do TEF?"),
    ("como instalo?", "e no TEF?", "como instalo TEF?"),  # no module to replace: the new one is added
    ("como instalo o PDV?", "erro TEF-102", "erro TEF-102"),  # an error code: a question of its own
    ("como instalo o PDV?", "como configuro o pinpad do TEF?", "como configuro o pinpad do TEF?"),
    ("como instalo o PDV?", "o caixa está travando na abertura", "o caixa está travando na abertura"),
    (None, "e no TEF?", "e no TEF?"),  # nothing to continue
])
def test_follow_up_resolution_rule(previous: str | None, text: str, expected: str) -> None:
    from actions.followups import ModuleTerms, fold, resolve_followup

    modules = [ModuleTerms(c, n, tuple(sorted({fold(t) for t in (c, n, *syn)}, key=len, reverse=True)))
               for c, n, syn in [("pdv", "PDV", ["frente de caixa", "caixa"]), ("tef", "TEF", ["pinpad"]),
                                 ("nfe", "NF-e", ["nota fiscal", "nfe"]), ("bi", "BI", []),
                                 ("gestor", "Gestor", ["retaguarda"])]]
    assert resolve_followup(text, previous, modules) == expected
