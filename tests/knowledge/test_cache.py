"""Repeat questions (knowledge/cache.py): answered from the cache with no second LLM call and no
budget spent; a different scope, a swapped index or an LLM failure miss; entries expire."""
from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import answer
from knowledge.budget import llm_budget
from knowledge.cache import AnswerCache, answer_cache, key, normalise
from knowledge.ingest import ingest
from knowledge.models import Answer
from knowledge.sources import SourceSpec
from tests.knowledge.conftest import fast_settings
from loopback.openai_api import FakeOpenAI

DOC = "# Sangria\n\n## Como fazer\n\nPressione F6, informe o valor e o motivo da sangria.\n"
REPLY = "Pressione F6 e informe o valor e o motivo da sangria [1]."


@pytest.fixture()
def llm(monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    llm_budget.reset()
    answer_cache.clear()
    with FakeOpenAI(default_reply=REPLY) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        yield fake
    answer_cache.clear()
    llm_budget.reset()


@pytest.fixture()
def docs(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "sangria.md").write_text(DOC, encoding="utf-8")
    settings = fast_settings(tmp_path / "idx")
    ingest([SourceSpec(name="d", product="erp", folder=folder)], settings, progress=False)
    return folder, settings.index_dir


def test_a_repeat_question_is_answered_once_by_the_llm(docs: tuple[Path, Path], llm: FakeOpenAI) -> None:
    _, index = docs
    first = answer("Como faço a sangria?", index_dir=index, conversation_id="whatsapp:1")
    again = answer("  como FAÇO a sangria ", index_dir=index, conversation_id="web:2")  # normalised alike
    assert len(llm.chat_requests()) == 1
    assert first.grounded and first.mode == "llm" and first.llm_tokens > 0 and not first.cached
    assert again == first and again.cached and again.llm_tokens == 0
    # another product scope is another question
    answer("como faço a sangria?", ["erp"], index_dir=index)
    assert len(llm.chat_requests()) == 2


def test_a_cache_hit_spends_no_budget(docs: tuple[Path, Path], llm: FakeOpenAI,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, index = docs
    monkeypatch.setenv("KNOWLEDGE_LLM_CALLS_PER_HOUR", "1")
    assert answer("como faço a sangria?", index_dir=index, conversation_id="c1").mode == "llm"
    repeat = answer("como faço a sangria?", index_dir=index, conversation_id="c1")
    assert repeat.mode == "llm" and repeat.cached and llm_budget.used("c1") == 1


def test_a_swapped_index_invalidates_the_cache(docs: tuple[Path, Path], llm: FakeOpenAI, tmp_path: Path) -> None:
    folder, index = docs
    answer("como faço a sangria?", index_dir=index)
    (folder / "sangria.md").write_text(DOC + "\nA sangria acima de R$ 500,00 exige senha.\n", encoding="utf-8")
    summary = ingest([SourceSpec(name="d", product="erp", folder=folder)], fast_settings(index), progress=False)
    assert summary.swapped
    after = answer("como faço a sangria?", index_dir=index)
    assert len(llm.chat_requests()) == 2 and not after.cached


def test_failures_and_fallbacks_are_not_cached(docs: tuple[Path, Path], llm: FakeOpenAI) -> None:
    _, index = docs
    llm.set_reply(status=500)
    llm.set_reply(status=500)
    failed = answer("como faço a sangria?", index_dir=index)
    assert failed.mode == "extractive"
    ok = answer("como faço a sangria?", index_dir=index)
    assert ok.mode == "llm" and not ok.cached
    assert len(llm.chat_requests()) >= 2


def test_the_cache_can_be_turned_off(docs: tuple[Path, Path], llm: FakeOpenAI,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _, index = docs
    monkeypatch.setenv("KNOWLEDGE_ANSWER_CACHE_SIZE", "0")
    answer("como faço a sangria?", index_dir=index)
    answer("como faço a sangria?", index_dir=index)
    assert len(llm.chat_requests()) == 2
    monkeypatch.setenv("KNOWLEDGE_ANSWER_CACHE_SIZE", "lots")
    with pytest.raises(ValueError, match="KNOWLEDGE_ANSWER_CACHE_SIZE"):
        answer("como faço a sangria?", index_dir=index)


def test_entries_expire_and_the_oldest_are_evicted() -> None:
    now = [0.0]
    cache = AnswerCache(clock=lambda: now[0])
    a = Answer("x", [], True, "llm")
    cache.put(("q1",), a, size=2)
    cache.put(("q2",), a, size=2)
    assert cache.get(("q1",), ttl_s=10) is a  # q1 is now the most recent
    cache.put(("q3",), a, size=2)
    assert cache.get(("q2",), ttl_s=10) is None and len(cache) == 2
    now[0] = 11
    assert cache.get(("q1",), ttl_s=10) is None


def test_keys_fold_case_accents_punctuation_and_scope_order() -> None:
    assert normalise("Como   FAÇO a sangria?!") == "como faco a sangria"
    assert key("Sangria?", ["pdv", "erp"], "v1", "m") == key("sangria", ["ERP", "pdv "], "v1", "m")
    assert key("sangria", None, "v1", "m") != key("sangria", None, "v2", "m")
    assert normalise("erro GES-014") == "erro ges-014"
