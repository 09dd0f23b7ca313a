"""LLM cost accounting (migration 0011): each logged question keeps how it was answered, its tokens
and whether the cache served it; the usage report counts calls, cache hits and tokens per day."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from helpdesk.db import downgrade, get_engine, session_scope, upgrade
from helpdesk.models import KnowledgeQuery
from helpdesk.services import llm_usage, outcomes
from helpdesk.services.metrics import Period


def _log(url: str, at: datetime, **kw: object) -> None:
    with session_scope(url) as s:
        q = outcomes.log_question(s, "web:x", "como faço a sangria?", answered=True, grounded=True, **kw)
        q.at = at


def test_calls_cache_hits_and_tokens_per_day(db_url: str) -> None:
    _log(db_url, datetime(2026, 11, 2, 10), mode="llm", llm_tokens=900)
    _log(db_url, datetime(2026, 11, 2, 11), mode="llm", llm_tokens=0, cached=True)
    _log(db_url, datetime(2026, 11, 3, 9), mode="llm", llm_tokens=1100)
    _log(db_url, datetime(2026, 11, 3, 9, 30), mode="extractive")
    _log(db_url, datetime(2026, 11, 3, 10))  # no mode: before 0011, or not answered at all
    _log(db_url, datetime(2026, 12, 1, 10), mode="llm", llm_tokens=5000)  # outside the period
    period = Period.from_dates(date(2026, 11, 1), date(2026, 11, 30))
    with session_scope(db_url) as s:
        total = llm_usage.usage(s, period)
        days = llm_usage.usage_per_day(s, period)
    assert total == llm_usage.LlmUsage(questions=5, llm_calls=2, cached=1, extractive=1, tokens=2000)
    assert total.tokens_per_call == 1000
    assert [(d, u.llm_calls, u.cached, u.tokens) for d, u in days] == [
        (date(2026, 11, 2), 1, 1, 900), (date(2026, 11, 3), 1, 0, 1100)]
    assert sum(u.questions for _, u in days) == total.questions


def test_odd_values_from_the_action_are_stored_safely(db_url: str) -> None:
    _log(db_url, datetime(2026, 11, 2), mode="<script>", llm_tokens=-5)
    _log(db_url, datetime(2026, 11, 2), mode="llm", llm_tokens="900")  # type: ignore[arg-type]
    with session_scope(db_url) as s:
        rows = s.scalars(sa.select(KnowledgeQuery).order_by(KnowledgeQuery.id)).all()
        assert [(r.mode, r.llm_tokens) for r in rows] == [(None, 0), ("llm", 0)]


def test_migration_0011_goes_up_and_down(db_url: str) -> None:
    _log(db_url, datetime(2026, 11, 2), mode="llm", llm_tokens=10)
    downgrade(db_url, "0010")
    get_engine(db_url).dispose()
    cols = {c["name"] for c in sa.inspect(get_engine(db_url)).get_columns("knowledge_queries")}
    assert not {"mode", "llm_tokens", "cached"} & cols and "question" in cols
    upgrade(db_url)
    get_engine(db_url).dispose()
    with session_scope(db_url) as s:
        row = s.scalars(sa.select(KnowledgeQuery)).one()
        assert (row.mode, row.llm_tokens, row.cached) == (None, 0, False)  # history shows no guess
