"""knowledge.runtime under concurrency: a deadline for the LLM call, callers in parallel threads,
and the warm start (preload) that spares the first question the model and index load."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

import knowledge.embed as embed
import knowledge.runtime as runtime
from knowledge import answer
from loopback.openai_api import FakeOpenAI

QUESTION = "está dando erro 503 na emissão da NF-e, o que faço?"
REPLY = "O erro 503 é de comunicação: a nota pode ser retransmitida sem alterações [1]."


@pytest.fixture()
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default_reply=REPLY) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("KNOWLEDGE_ANSWER_CACHE_SIZE", "0")  # every ask reaches the LLM (cache: test_cache.py)
        yield fake


def test_preload_loads_model_and_index_once_and_the_first_answer_loads_nothing(
        demo_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a process that has loaded nothing yet
    monkeypatch.setattr(runtime, "_runtimes", {})
    monkeypatch.setattr(embed, "_models", {})
    monkeypatch.setattr(embed, "model_loads", 0)
    assert runtime.preload(demo_index) is True
    rt = runtime.get_runtime(demo_index)
    assert (embed.model_loads, rt.index_loads) == (1, 1)
    result = answer(QUESTION, index_dir=demo_index)
    assert result.grounded
    assert (embed.model_loads, rt.index_loads) == (1, 1)  # nothing loaded again


def test_preload_without_an_index_is_harmless(tmp_path: Path) -> None:
    assert runtime.preload(tmp_path / "nada") is False


def test_parallel_callers_wait_for_the_llm_together(demo_index: Path, llm: FakeOpenAI) -> None:
    answer(QUESTION, index_dir=demo_index)  # model and index loaded
    n, delay = 8, 1.0
    llm.default_delay_s = delay
    results: list[object] = [None] * n

    def ask(i: int) -> None:
        results[i] = answer(QUESTION, index_dir=demo_index, conversation_id=f"par-{i}")

    started = time.monotonic()
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    total = time.monotonic() - started
    assert all(r is not None and r.mode == "llm" and r.answer == REPLY for r in results)  # type: ignore[attr-defined]
    assert total < 0.5 * n * delay, total
    assert llm.max_concurrent > 1


def test_deadline_cuts_a_slow_llm_and_answers_extractively(demo_index: Path, llm: FakeOpenAI) -> None:
    answer(QUESTION, index_dir=demo_index)  # model and index loaded
    llm.default_delay_s = 5.0
    started = time.monotonic()
    result = answer(QUESTION, index_dir=demo_index, timeout_s=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, elapsed
    assert result.grounded and result.mode == "extractive" and "SEFAZ" in result.answer
    assert len(llm.chat_requests()) == 2  # one each: no retry past the deadline


def test_no_llm_call_when_the_deadline_is_already_spent(demo_index: Path, llm: FakeOpenAI) -> None:
    answer(QUESTION, index_dir=demo_index)
    sent = len(llm.chat_requests())
    result = answer(QUESTION, index_dir=demo_index, timeout_s=0.01)
    assert result.grounded and result.mode == "extractive"
    assert len(llm.chat_requests()) == sent
