"""What the LLM cost in a period (issue 14, cost and repeat questions): questions asked, LLM
calls, answers served by the repeat-question cache, extractive answers and tokens, in total and
per day. Read from `knowledge_queries` (mode, llm_tokens, cached: migration 0011); questions logged
before 0011 have no mode and count as neither."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ..models import KnowledgeQuery
from .metrics import Period, _as_date, _day, _in_period


@dataclass(frozen=True)
class LlmUsage:
    questions: int
    llm_calls: int      # answered by an LLM call (not from the cache)
    cached: int         # answered from the cache: an LLM answer without a call
    extractive: int     # answered without the LLM (no key, budget spent, timeout or error)
    tokens: int

    @property
    def tokens_per_call(self) -> float | None:
        return None if not self.llm_calls else self.tokens / self.llm_calls


def _columns():  # type: ignore[no-untyped-def]
    q = KnowledgeQuery
    llm = and_(q.mode == "llm", q.cached.is_(False))
    return (func.count(),
            func.coalesce(func.sum(case((llm, 1), else_=0)), 0),
            func.coalesce(func.sum(case((q.cached.is_(True), 1), else_=0)), 0),
            func.coalesce(func.sum(case((q.mode == "extractive", 1), else_=0)), 0),
            func.coalesce(func.sum(q.llm_tokens), 0))


def _usage(row) -> LlmUsage:  # type: ignore[no-untyped-def]
    return LlmUsage(*(int(v or 0) for v in row))


def usage(s: Session, period: Period) -> LlmUsage:
    return _usage(s.execute(select(*_columns()).where(_in_period(KnowledgeQuery.at, period))).one())


def usage_per_day(s: Session, period: Period) -> list[tuple[date, LlmUsage]]:
    day = _day(s, KnowledgeQuery.at)
    rows = s.execute(select(day, *_columns()).where(_in_period(KnowledgeQuery.at, period))
                     .group_by(day).order_by(day)).all()
    return [(_as_date(r[0]), _usage(r[1:])) for r in rows]
