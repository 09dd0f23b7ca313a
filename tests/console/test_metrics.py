"""Report figures against values computed by hand on the fixed data set (see dataset.py)."""
from __future__ import annotations

from datetime import date, datetime

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


# ---- durable bot resolution -----------------------------------------------------------------------

APRIL = metrics.Period.from_dates(date(2026, 4, 1), date(2026, 4, 30))


def _durable_dataset() -> None:
    """Hand-built (April 2026, window 7 days from each conversation's last turn):
      v1 verified, customer 1, a ticket of customer 1 four days later          → not durable
      v2 verified, customer 2, a ticket of customer 2 eight days (and 1 h) later → durable
      v3 verified, anonymous, the same conversation id handed off two days later → not durable
      v4 verified, anonymous; another id handed off; a ticket on its id after 9 days → durable
      v5 verified, customer 3, another conversation of customer 3 handed off 6 days later → not durable
      v6 verified, customer 4, whose ticket was opened the day before            → durable
      c1 contained (no hand-off) but not verified; h3, h5, hx are the hand-offs themselves
    → 10 conversations, 7 contained, 6 verified, 3 durable, gap 3."""
    from helpdesk.models import ConversationOutcome, Ticket
    from helpdesk.services import customers

    with session_scope() as s:
        cust = [customers.create(s, responsible_name=f"R{n}", legal_name=f"Cliente {n} Ltda", cnpj=cnpj,
                                 tax_regime="simples_nacional").id
                for n, cnpj in enumerate((dataset.CNPJ_A, dataset.CNPJ_B, dataset.CNPJ_C, "04252011000110"), 1)]

        def conv(cid: str, day: int, *, customer: int | None = None, verified: bool = False,
                 handed: bool = False) -> None:
            at = datetime(2026, 4, day, 12)
            s.add(ConversationOutcome(conversation_id=cid, channel="web", customer_id=customer, started_at=at,
                                      updated_at=at, resolved_by_bot=verified, handed_off=handed))

        def ticket(at: datetime, *, customer: int | None = None, conversation: str | None = None) -> None:
            s.add(Ticket(customer_id=customer, channel="web", type="erro", conversation_id=conversation,
                         opened_at=at, updated_at=at))

        conv("v1", 2, customer=cust[0], verified=True)
        ticket(datetime(2026, 4, 6, 12), customer=cust[0])
        conv("v2", 2, customer=cust[1], verified=True)
        ticket(datetime(2026, 4, 10, 13), customer=cust[1])
        conv("anon-3", 3, verified=True)
        conv("anon-3", 5, handed=True)  # h3: the same id comes back to a person
        conv("anon-4", 3, verified=True)
        conv("anon-x", 5, handed=True)  # hx: someone else
        ticket(datetime(2026, 4, 12, 13), conversation="anon-4")
        conv("v5", 4, customer=cust[2], verified=True)
        conv("v5-later", 10, customer=cust[2], handed=True)  # h5
        conv("v6", 4, customer=cust[3], verified=True)
        ticket(datetime(2026, 4, 3, 12), customer=cust[3])
        conv("c1", 8)


def test_durable_resolution_drops_a_return_within_the_window(db_url: str) -> None:
    _durable_dataset()
    with session_scope() as s:
        r = metrics.bot_resolution(s, APRIL)
        wider = metrics.bot_resolution(s, APRIL, window_days=9)
        pending = metrics.bot_resolution(s, APRIL, now=datetime(2026, 4, 8))
        bot = metrics.bot_summary(s, APRIL)
    assert (r.conversations, r.contained, r.verified, r.durable, r.gap) == (10, 7, 6, 3, 3)
    assert r.verified == bot.resolved_by_bot  # "verificada" is the figure reported so far
    assert (r.pending, r.window_days) == (0, 7)
    assert r.pct(r.durable) == pytest.approx(30.0) and r.pct(r.contained) == pytest.approx(70.0)
    # nine days: v2's ticket after 8 days now counts as a return; v4's after 9 days and 1 h does not
    assert (wider.verified, wider.durable) == (6, 2)
    # on 04-08 every durable one is still inside its window
    assert (pending.durable, pending.pending) == (3, 3)


def test_durable_resolution_on_the_fixed_data_set(data: dataset.Ids) -> None:
    with session_scope() as s:
        r = metrics.bot_resolution(s, PERIOD)
        empty = metrics.bot_resolution(s, metrics.Period.from_dates(date(2025, 1, 1), date(2025, 1, 31)))
    assert (r.conversations, r.contained, r.verified, r.durable) == (4, 2, 1, 1)  # o1 never came back
    assert (empty.conversations, empty.durable, empty.pct(empty.durable)) == (0, 0, None)


@pytest.mark.parametrize("days", [0, -1, 91])
def test_durable_window_out_of_range_is_refused(days: int) -> None:
    with pytest.raises(InvalidInput) as err:
        metrics.bot_resolution(None, APRIL, window_days=days)  # type: ignore[arg-type]
    assert "Janela inválida" in err.value.message_pt
