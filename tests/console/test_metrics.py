"""Report figures against values computed by hand on the fixed data set (see dataset.py)."""
from __future__ import annotations

from datetime import date

import pytest

from helpdesk.db import session_scope
from helpdesk.errors import InvalidInput
from helpdesk.services import metrics

from . import dataset

PERIOD = metrics.Period.from_dates(date(2026, 3, 1), date(2026, 3, 10))


def test_ticket_summary(data: dataset.Ids) -> None:
    with session_scope() as s:
        sm = metrics.ticket_summary(s, PERIOD)
    assert (sm.total, sm.resolved, sm.open) == (7, 5, 2)
    assert sm.mean_resolution_h == pytest.approx(4.0)
    assert sm.median_resolution_h == pytest.approx(3.0)
    assert (sm.top_customer.label, sm.top_customer.count) == ("Alfa Comércio Ltda", 3)
    assert (sm.top_type.label, sm.top_type.count) == ("erro", 4)
    assert (sm.top_module.label, sm.top_module.count) == ("pdv", 2)
    assert (sm.top_technician.label, sm.top_technician.count) == ("Tiago Técnico", 4)


def test_median_of_an_even_count_and_empty_period(data: dataset.Ids) -> None:
    with session_scope() as s:
        two_days = metrics.ticket_summary(s, metrics.Period.from_dates(date(2026, 3, 2), date(2026, 3, 3)))
        empty = metrics.ticket_summary(s, metrics.Period.from_dates(date(2025, 1, 1), date(2025, 1, 31)))
    assert two_days.median_resolution_h == pytest.approx(3.0)  # 1, 2, 4, 10 → (2 + 4) / 2
    assert two_days.mean_resolution_h == pytest.approx(17 / 4)
    assert (empty.total, empty.mean_resolution_h, empty.median_resolution_h, empty.top_customer) == (0, None, None, None)


def test_breakdowns(data: dataset.Ids) -> None:
    with session_scope() as s:
        per_day = metrics.tickets_per_day(s, PERIOD)
        per_module = metrics.tickets_per_module(s, PERIOD)
        per_customer = metrics.tickets_per_customer(s, PERIOD)
        per_type = metrics.tickets_per_type(s, PERIOD)
        per_tech = metrics.tickets_per_technician(s, PERIOD)
    assert per_day == [(date(2026, 3, 2), 3), (date(2026, 3, 3), 2), (date(2026, 3, 5), 2)]
    assert per_module == [("gestor", 3, 1), ("pdv", 2, 2), ("tef", 1, 1), ("sem módulo", 1, 0)]
    assert per_customer == [("Alfa Comércio Ltda", 3), ("Beta Serviços Ltda", 2), ("Gama Indústria S.A.", 1)]
    assert per_type == [("erro", 4), ("duvida", 2), ("comercial", 1)]
    assert per_tech == [("Tiago Técnico", 4, 0), ("Bruno Técnico", 2, 1)]


def test_bot_figures(data: dataset.Ids) -> None:
    with session_scope() as s:
        bot = metrics.bot_summary(s, PERIOD)
        ratings = metrics.ratings(s, PERIOD)
        gaps = metrics.documentation_gaps(s, PERIOD)
    assert (bot.conversations, bot.resolved_by_bot, bot.handed_off, bot.offers_without_human) == (4, 1, 2, 2)
    assert bot.pct_resolved_by_bot == pytest.approx(25.0)  # the handed-off o2 never counts as resolved
    assert (bot.questions, bot.answered_from_docs) == (5, 2)
    assert bot.pct_answered_from_docs == pytest.approx(40.0)
    assert bot.rated == 3 and bot.rating_avg == pytest.approx(11 / 3)
    assert ratings == [(1, 0), (2, 1), (3, 0), (4, 1), (5, 1)]
    assert [(q.strip().lower(), n) for q, n, _ in gaps] == [("como emitir mdf-e?", 2), ("tem app para ipad?", 1)]


def test_queue_counts(data: dataset.Ids) -> None:
    with session_scope() as s:
        assert metrics.queue_counts(s) == {"novo": 1, "em_atendimento": 1, "concluido": 6}
        assert metrics.queue_counts(s, technician_id=data.bruno) == {"novo": 0, "em_atendimento": 1, "concluido": 2}
        assert metrics.queue_counts(s, type="erro", channel="whatsapp") == {"novo": 0, "em_atendimento": 0, "concluido": 2}


def test_reversed_period_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        metrics.Period.from_dates(date(2026, 3, 10), date(2026, 3, 1))
    assert "data final" in err.value.message_pt


def test_median_bucket_matches_the_statistics_of_migration_0002() -> None:
    import importlib

    migration = importlib.import_module("helpdesk.migrations.versions.0002_report_statistics")
    assert metrics.PG_RESOLUTION_MINUTE.replace("tickets.", "") == migration.EXPRESSION


@pytest.mark.postgres
def test_postgres_knows_the_median_bucket(postgres_url: str) -> None:
    from sqlalchemy import create_engine, text

    from helpdesk.config import normalize_database_url

    engine = create_engine(normalize_database_url(postgres_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_statistic_ext "
                                 "WHERE stxname = 'st_tickets_resolution_minute'")).scalar() == 1
    engine.dispose()
