"""The per-conversation budget of LLM calls per hour, against the fake OpenAI-compatible server."""
from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import answer
from knowledge.budget import CallBudget, llm_budget
from knowledge.config import Settings
from loopback.openai_api import FakeOpenAI

QUESTION = "como fazer sangria no caixa do pdv?"
REPLY = "Para fazer a sangria, pressione F6 e informe o valor e o motivo [1]."


@pytest.fixture()
def llm(monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    llm_budget.reset()
    with FakeOpenAI(default_reply=REPLY) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("KNOWLEDGE_ANSWER_CACHE_SIZE", "0")  # every ask reaches the LLM (cache: test_cache.py)
        yield fake
    llm_budget.reset()


def test_past_the_budget_answers_are_extractive_and_never_reach_the_llm(
        demo_index: Path, llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOWLEDGE_LLM_CALLS_PER_HOUR", "3")
    for n in range(1, 4):
        result = answer(QUESTION, index_dir=demo_index, conversation_id="whatsapp:5511999990000")
        assert result.mode == "llm" and result.answer == REPLY and len(llm.chat_requests()) == n
    over = answer(QUESTION, index_dir=demo_index, conversation_id="whatsapp:5511999990000")
    assert len(llm.chat_requests()) == 3  # the 4th call of the hour did not reach the server
    assert over.grounded and over.mode == "extractive" and over.sources
    assert over.answer.startswith("Encontrei isto na documentação")
    # other conversations, and callers without a conversation (CLI, evaluation), are not affected
    assert answer(QUESTION, index_dir=demo_index, conversation_id="website:abc").mode == "llm"
    assert answer(QUESTION, index_dir=demo_index).mode == "llm"
    assert len(llm.chat_requests()) == 5
    # a failed LLM call counts as a call: it reached the server
    llm.set_reply(status=500)
    llm.set_reply(status=500)
    assert answer(QUESTION, index_dir=demo_index, conversation_id="c-err").mode == "extractive"
    assert llm_budget.used("c-err") == 1


def test_zero_means_no_limit_and_bad_values_are_rejected(
        demo_index: Path, llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().llm_calls_per_hour == 30  # the default
    monkeypatch.setenv("KNOWLEDGE_LLM_CALLS_PER_HOUR", "0")
    for _ in range(4):
        assert answer(QUESTION, index_dir=demo_index, conversation_id="c0").mode == "llm"
    assert len(llm.chat_requests()) == 4
    for bad in ("-1", "muitas"):
        monkeypatch.setenv("KNOWLEDGE_LLM_CALLS_PER_HOUR", bad)
        with pytest.raises(ValueError, match="KNOWLEDGE_LLM_CALLS_PER_HOUR"):
            Settings.from_env()


def test_the_window_slides_and_memory_is_bounded() -> None:
    now = [1000.0]
    budget = CallBudget(window_s=3600, max_conversations=3, clock=lambda: now[0])
    assert [budget.try_acquire("a", 2) for _ in range(3)] == [True, True, False]
    now[0] += 1800
    assert not budget.try_acquire("a", 2)  # both calls are still within the hour
    now[0] += 1801
    assert budget.try_acquire("a", 2) and budget.used("a") == 1  # they slid out of the window
    for key in ("b", "c", "d"):
        budget.try_acquire(key, 2)
    assert len(budget._calls) == 3 and "a" not in budget._calls  # least recently used forgotten first
    budget.try_acquire("e", 1)
    assert max(len(v) for v in budget._calls.values()) <= 2
