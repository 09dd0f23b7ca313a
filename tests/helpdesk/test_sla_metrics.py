"""% of SLAs met on a hand-built data set: totals, per day, technician, module and customer; tickets
still within their targets are left out; tickets outside the period or without an SLA too."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from helpdesk.db import session_scope
from helpdesk.models import Customer, Ticket
from helpdesk.services import metrics, sla, sla_escalation, sla_metrics
from helpdesk.services import technicians as technician_service

WEEK = {d: [["08:00", "18:00"]] for d in ("seg", "ter", "qua", "qui", "sex")}
POLICIES = [{"priority": "normal", "first_response_minutes": 60, "resolution_minutes": 240}]
T0 = datetime(2027, 3, 1, 11, 0)  # Monday 08:00 São Paulo
NOW = T0 + timedelta(minutes=120)
PERIOD = metrics.Period.from_dates(date(2027, 3, 1), date(2027, 3, 1))


def _ticket(s, *, tech=None, cust=None, module=None, opened=T0, first=None, resolved=None, priority="normal"):  # type: ignore[no-untyped-def]
    t = Ticket(customer_id=cust, technician_id=tech, channel="web", type="erro", module=module, priority=priority,
               status="concluido" if resolved else ("em_atendimento" if tech else "novo"), opened_at=opened,
               updated_at=opened, first_response_at=first, resolved_at=resolved, description="x", subject="x")
    s.add(t)
    return t


@pytest.fixture()
def data(db_url: str) -> None:
    with session_scope() as s:
        sla.save(s, policies=POLICIES, week=WEEK, actor="Gerente")
        a = technician_service.create(s, name="Ana", email="ana@m.test", password="senha-forte-123",
                                      role="technician", level=1).id
        b = technician_service.create(s, name="Bruno", email="bruno@m.test", password="senha-forte-123",
                                      role="technician", level=1).id
        c1 = Customer(responsible_name="R", legal_name="Alfa Ltda", cnpj="11222333000181", tax_regime="mei")
        c2 = Customer(responsible_name="R", legal_name="Beta Ltda", cnpj="11444777000161", tax_regime="mei")
        s.add_all([c1, c2])
        s.flush()
        m = timedelta(minutes=1)
        _ticket(s, tech=a, cust=c1.id, module="pdv", first=T0 + 30 * m, resolved=T0 + 100 * m)  # both met
        _ticket(s, tech=a, cust=c1.id, module="pdv", first=T0 + 90 * m, resolved=T0 + 110 * m)  # fr breached
        _ticket(s, tech=b, cust=c2.id, module="nfe")  # no reply at +120: fr breached; resolution pending
        _ticket(s, tech=b, cust=c2.id, module="nfe", opened=T0 - timedelta(days=3))  # outside the period
        _ticket(s, opened=NOW - 10 * m)  # within target: left out
        _ticket(s, cust=c2.id, priority="urgente")  # no policy for urgente: no SLA
        s.flush()
        sla_escalation.backfill(s)


def test_totals_count_met_and_breached_and_leave_pending_out(data: None) -> None:
    with session_scope() as s:
        total = sla_metrics.sla_totals(s, PERIOD, now=NOW)
    assert (total.first_response_met, total.first_response_breached) == (1, 2)
    assert (total.resolution_met, total.resolution_breached) == (2, 0)
    assert total.pct_first_response == pytest.approx(100 / 3)
    assert total.pct_resolution == 100.0
    with session_scope() as s:  # later, the unanswered ticket's resolution is breached too
        later = sla_metrics.sla_totals(s, PERIOD, now=T0 + timedelta(minutes=241))
    assert (later.resolution_met, later.resolution_breached) == (2, 1)  # the +110 one is due at +350


def test_breakdowns_per_technician_module_customer_and_day(data: None) -> None:
    with session_scope() as s:
        tech = {r.label: r for r in sla_metrics.sla_per_technician(s, PERIOD, now=NOW)}
        mod = {r.label: r for r in sla_metrics.sla_per_module(s, PERIOD, now=NOW)}
        cust = sla_metrics.sla_per_customer(s, PERIOD, now=NOW)
        days = sla_metrics.sla_per_day(s, PERIOD, now=NOW)
    assert (tech["Ana"].pct_first_response, tech["Ana"].pct_resolution) == (50.0, 100.0)
    assert (tech["Bruno"].first_response_met, tech["Bruno"].first_response_breached) == (0, 1)
    assert tech["Bruno"].pct_resolution is None
    assert tech[sla_metrics.NO_TECHNICIAN].measured == 0
    assert mod["pdv"].pct_first_response == 50.0 and mod["nfe"].pct_first_response == 0.0
    assert [r.label for r in cust] == ["Alfa Ltda", "Beta Ltda"]
    assert cust[0].resolution_met == 2
    assert [(d.label, d.first_response_met, d.first_response_breached) for d in days] == [(date(2027, 3, 1), 1, 2)]
    table = sla_metrics.as_table(cust)
    assert table[0]["1ª resposta no prazo"] == "50,0%" and table[1]["resolução no prazo"] == "—"


def test_an_empty_period_has_no_percentages(data: None) -> None:
    with session_scope() as s:
        empty = sla_metrics.sla_totals(s, metrics.Period.from_dates(date(2026, 1, 1), date(2026, 1, 2)), now=NOW)
        assert empty.pct_first_response is None and empty.measured == 0
        assert sla_metrics.sla_per_technician(s, metrics.Period.from_dates(date(2026, 1, 1), date(2026, 1, 2))) == []


def test_the_demo_ships_policies_a_calendar_and_sla_figures(db_url: str) -> None:
    from helpdesk import demo

    with session_scope() as s:
        demo.load(s)
    with session_scope() as s:
        cfg = sla.load_config(s)
        assert cfg.targets("ouro", "normal") == sla.Targets(60, 480) and cfg.version == 1
        last = s.query(Ticket).order_by(Ticket.opened_at.desc()).first().opened_at.date()
        total = sla_metrics.sla_totals(s, metrics.Period.from_dates(last - timedelta(days=200), last))
        assert total.measured > 300
        assert 0 < total.pct_first_response < 100 and 0 < total.pct_resolution < 100
        open_ids = [t.id for t in s.query(Ticket).filter(Ticket.status != "concluido")]
        status = sla.status_for(s, open_ids)
        assert open_ids and set(status) == set(open_ids)


def test_the_total_of_a_breakdown_equals_the_totals_query(data: None) -> None:
    with session_scope() as s:
        direct = sla_metrics.sla_totals(s, PERIOD, now=NOW)
        for rows in (sla_metrics.sla_per_day(s, PERIOD, now=NOW), sla_metrics.sla_per_module(s, PERIOD, now=NOW),
                     sla_metrics.sla_per_technician(s, PERIOD, now=NOW)):
            assert sla_metrics.total_of(rows) == direct
    assert sla_metrics.total_of([]) == sla_metrics.SlaRow("total", 0, 0, 0, 0)
