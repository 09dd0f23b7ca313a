"""SLA policies (validation, tiers), per-ticket clocks (status_for, batch), and the SLA job: a
warning at 80 % and a breach written once per ticket and target, escalation on breach, two workers
at once. Runs on SQLite and PostgreSQL (db_url)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from helpdesk.db import get_engine, session_scope
from helpdesk.errors import InvalidInput
from helpdesk.models import Customer, SlaCalendar, Ticket, TicketEvent, TicketSla
from helpdesk.services import sla, sla_escalation
from helpdesk.services import technicians as technician_service
from helpdesk.services import tickets as ticket_service

WEEK = {d: [["08:00", "18:00"]] for d in ("seg", "ter", "qua", "qui", "sex")}
POLICIES = [
    {"priority": "baixa", "first_response_minutes": 240, "resolution_minutes": 1200},
    {"priority": "normal", "first_response_minutes": 60, "resolution_minutes": 240},
    {"priority": "alta", "first_response_minutes": 30, "resolution_minutes": 120},
    {"priority": "urgente", "first_response_minutes": 15, "resolution_minutes": 60},
    {"tier": "ouro", "priority": "normal", "first_response_minutes": 20, "resolution_minutes": 90},
]
MONDAY_8 = datetime(2027, 3, 1, 11, 0)  # Monday 08:00 in São Paulo, as naive UTC


def _setup(s: Any, *, tier: str | None = None) -> tuple[int, int]:
    sla.save(s, policies=POLICIES, week=WEEK, actor="Gerente")
    tech = technician_service.create(s, name="Rafael Souza", email="rafael@sla.test", password="senha-forte-123",
                                     role="technician", level=1)
    customer = Customer(responsible_name="Joana", legal_name="Padaria Ltda", cnpj="11222333000181",
                        tax_regime="simples_nacional", tier=tier)
    s.add(customer)
    s.flush()
    return tech.id, customer.id


def _open(s: Any, customer_id: int | None, *, priority: str = "normal", opened: datetime = MONDAY_8) -> int:
    t = ticket_service.open_ticket(s, customer_id=customer_id, channel="whatsapp", type="erro", module=None,
                                   description="Erro ao emitir nota", conversation_id=None, priority=priority)
    t.opened_at = opened
    s.flush()
    return t.id


def _events(s: Any, ticket_id: int, kind: str) -> list[TicketEvent]:
    return list(s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind)
                          .order_by(TicketEvent.id)))


# ---- policies ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    ({"first_response_minutes": 0}, "maior que zero"),
    ({"first_response_minutes": -30}, "maior que zero"),
    ({"resolution_minutes": 0}, "maior que zero"),
    ({"resolution_minutes": -1}, "maior que zero"),
    ({"first_response_minutes": "abc"}, "informe um número"),
    ({"first_response_minutes": None}, "informe um número"),
    ({"first_response_minutes": True}, "inválida"),
    ({"first_response_minutes": float("nan")}, "inválida"),
    ({"first_response_minutes": 12.5}, "inteiro"),
    ({"resolution_minutes": 10**9}, "90 dias"),
    ({"resolution_minutes": 30}, "não pode ser menor"),
    ({"priority": "altíssima"}, "Prioridade inválida"),
    ({"tier": "Ouro; DROP TABLE customers"}, "Contrato inválido"),
])
def test_bad_policies_are_refused_and_nothing_is_saved(db_url: str, change: dict, expected: str) -> None:
    with session_scope() as s:
        sla.save(s, policies=POLICIES, week=WEEK, actor="Gerente")
    bad = [dict(POLICIES[1], **change)] + POLICIES[2:]
    with session_scope() as s:
        with pytest.raises(InvalidInput) as err:
            sla.save(s, policies=bad, week=WEEK, actor="Gerente")
        assert expected in err.value.message_pt
    with session_scope() as s:
        assert len(sla.policy_rows(s)) == len(POLICIES)
        assert s.get(SlaCalendar, 1).version == 1
        assert sla.load_config(s).targets(None, "normal") == sla.Targets(60, 240)


def test_a_calendar_without_working_hours_or_a_duplicate_policy_is_refused(db_url: str) -> None:
    with session_scope() as s:
        sla.save(s, policies=POLICIES, week=WEEK, actor="Gerente")
    with session_scope() as s:
        with pytest.raises(InvalidInput) as err:
            sla.save(s, policies=POLICIES, week={d: [] for d in WEEK}, actor="Gerente")
        assert "pelo menos um horário" in err.value.message_pt
        with pytest.raises(InvalidInput) as err:
            sla.save(s, policies=POLICIES + [POLICIES[0]], week=WEEK, actor="Gerente")
        assert "duas políticas" in err.value.message_pt
    with session_scope() as s:
        assert s.get(SlaCalendar, 1).week["seg"] == [["08:00", "18:00"]]
        assert len(sla.policy_rows(s)) == len(POLICIES)


def test_a_customer_tier_selects_its_own_policy_and_falls_back_to_the_default(db_url: str) -> None:
    with session_scope() as s:
        _, gold = _setup(s, tier="ouro")
        cfg = sla.load_config(s)
        assert cfg.targets("ouro", "normal") == sla.Targets(20, 90)
        assert cfg.targets("ouro", "alta") == sla.Targets(30, 120)  # no gold row for alta
        assert cfg.targets("prata", "normal") == sla.Targets(60, 240)
        tid = _open(s, gold)
        st = sla.status_for(s, [tid], now=MONDAY_8 + timedelta(minutes=10))[tid]
        assert st.first_response.minutes == 20 and st.resolution.minutes == 90
        with pytest.raises(InvalidInput):
            sla.set_customer_tier(s, gold, "Ouro Premium!")
        sla.set_customer_tier(s, gold, "  ")
        st = sla.status_for(s, [tid], now=MONDAY_8 + timedelta(minutes=10))[tid]
        assert st.first_response.minutes == 60


# ---- clocks -------------------------------------------------------------------------------------

def test_status_for_reports_due_times_elapsed_and_breaches_in_a_few_queries(db_url: str) -> None:
    with session_scope() as s:
        tech, cust = _setup(s)
        ids = [_open(s, cust) for _ in range(30)]
        answered = ids[0]
        ticket_service.assume(s, answered, tech)
        ticket_service.add_message(s, answered, author="Rafael", text="Olá!", direction="out", technician_id=tech)
        s.get(Ticket, answered).first_response_at = MONDAY_8 + timedelta(minutes=40)
        no_policy = _open(s, cust, priority="normal")
        s.flush()
    with session_scope() as s:
        statements: list[str] = []
        listener = lambda *a: statements.append(a[2])  # noqa: E731
        event.listen(get_engine(), "before_cursor_execute", listener)
        try:
            status = sla.status_for(s, ids + [no_policy], now=MONDAY_8 + timedelta(minutes=45))
        finally:
            event.remove(get_engine(), "before_cursor_execute", listener)
        assert len(statements) <= 3, statements
    first = status[ids[1]].first_response
    assert first.due_at == MONDAY_8 + timedelta(minutes=60)
    assert first.pct_elapsed == pytest.approx(75.0) and not first.breached and first.pending
    assert sla.queue_label(status[ids[1]]) == "resta 15 min (primeira resposta)"
    done = status[answered].first_response
    assert done.met and not done.pending and done.elapsed_minutes == pytest.approx(40)
    assert sla.queue_label(status[answered]) == "resta 3h15 (resolução)"
    with session_scope() as s:
        late = sla.status_for(s, [ids[1]], now=MONDAY_8 + timedelta(minutes=61))[ids[1]]
        assert late.first_response.breached and sla.queue_label(late) == "violado"
        # after closing time the clock stops: Monday 18:00 → Tuesday 08:00 adds nothing
        evening = sla.status_for(s, [ids[1]], now=datetime(2027, 3, 2, 10, 59))[ids[1]]
        assert evening.resolution.elapsed_minutes == pytest.approx(600)


# ---- the job --------------------------------------------------------------------------------------

def test_warning_at_80_percent_then_breach_with_escalation_each_written_once(db_url: str) -> None:
    with session_scope() as s:
        _, cust = _setup(s)
        tid = _open(s, cust, priority="normal")
    with session_scope() as s:
        assert sla.tick(s, now=MONDAY_8 + timedelta(minutes=47))["warnings"] == 0
        row = s.get(TicketSla, tid)
        assert row.first_response_warn_at == MONDAY_8 + timedelta(minutes=48)
        assert row.first_response_due_at == MONDAY_8 + timedelta(minutes=60)
        assert row.resolution_due_at == MONDAY_8 + timedelta(minutes=240)
    for minute in (48, 50, 55):
        with session_scope() as s:
            sla.tick(s, now=MONDAY_8 + timedelta(minutes=minute))
    with session_scope() as s:
        warnings = _events(s, tid, "sla_warning")
        assert len(warnings) == 1 and warnings[0].data["target"] == "first_response"
        assert "80% do prazo" in warnings[0].text and "01/03/2027 09:00" in warnings[0].text
        assert not _events(s, tid, "sla_breach")
    for minute in (60, 61, 90):
        with session_scope() as s:
            sla.tick(s, now=MONDAY_8 + timedelta(minutes=minute))
    with session_scope() as s:
        breaches = _events(s, tid, "sla_breach")
        assert len(breaches) == 1
        b = breaches[0]
        assert b.data["target"] == "first_response" and b.actor == "SLA"
        assert (b.data["from_priority"], b.data["to_priority"]) == ("normal", "alta")
        assert "violado" in b.text and "de normal para alta" in b.text
        ticket = s.get(Ticket, tid)
        assert ticket.priority == "alta" and ticket.level == 1
        # the escalation does not move the promise: resolution still due at 240 business minutes
        assert s.get(TicketSla, tid).resolution_due_at == MONDAY_8 + timedelta(minutes=240)
    with session_scope() as s:  # resolution: warning at 192 min, breach at 240
        sla.tick(s, now=MONDAY_8 + timedelta(minutes=200))
        sla.tick(s, now=MONDAY_8 + timedelta(minutes=241))
        sla.tick(s, now=MONDAY_8 + timedelta(minutes=300))
    with session_scope() as s:
        kinds = [(e.kind, e.data["target"]) for e in s.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == tid, TicketEvent.kind.like("sla_%")).order_by(TicketEvent.id))]
        assert kinds == [("sla_warning", "first_response"), ("sla_breach", "first_response"),
                         ("sla_warning", "resolution"), ("sla_breach", "resolution")]
        assert s.get(Ticket, tid).priority == "urgente"


def test_escalation_raises_the_level_at_urgente_and_stops_at_the_top(db_url: str) -> None:
    with session_scope() as s:
        _, cust = _setup(s)
        urgent = _open(s, cust, priority="urgente")
        top = _open(s, cust, priority="urgente")
        s.get(Ticket, top).level = 3
    with session_scope() as s:
        assert sla.tick(s, now=MONDAY_8 + timedelta(minutes=16))["breaches"] == 2
    with session_scope() as s:
        assert (s.get(Ticket, urgent).priority, s.get(Ticket, urgent).level) == ("urgente", 2)
        assert "Nível elevado de 1 para 2" in _events(s, urgent, "sla_breach")[0].text
        assert (s.get(Ticket, top).priority, s.get(Ticket, top).level) == ("urgente", 3)
        assert "já estão no máximo" in _events(s, top, "sla_breach")[0].text
        # found already breached: the breach only, its warning marked but not written
        assert not _events(s, urgent, "sla_warning")


def test_a_reply_stops_the_first_response_clock_and_closing_stops_resolution(db_url: str) -> None:
    with session_scope() as s:
        tech, cust = _setup(s)
        tid = _open(s, cust)
        ticket_service.assume(s, tid, tech)
        ticket_service.add_message(s, tid, author="Rafael", text="Olá!", direction="out", technician_id=tech)
        ticket_service.resolve(s, tid, technician_id=tech, solution="Ajustado.")
    with session_scope() as s:
        counts = sla.tick(s, now=MONDAY_8 + timedelta(days=3))
        assert counts["breaches"] == 0 and counts["warnings"] == 0
        assert not _events(s, tid, "sla_breach")


def test_a_priority_change_by_a_person_moves_the_targets_a_breached_one_stays(db_url: str) -> None:
    with session_scope() as s:
        tech, cust = _setup(s)
        tid = _open(s, cust, priority="baixa")
        sla.tick(s, now=MONDAY_8 + timedelta(minutes=5))
        assert s.get(TicketSla, tid).first_response_due_at == MONDAY_8 + timedelta(minutes=240)
    with session_scope() as s:
        ticket_service.change_fields(s, tid, technician_id=tech, priority="alta")
    with session_scope() as s:
        sla.tick(s, now=MONDAY_8 + timedelta(minutes=6))
        row = s.get(TicketSla, tid)
        assert row.priority == "alta" and row.first_response_due_at == MONDAY_8 + timedelta(minutes=30)
        sla.tick(s, now=MONDAY_8 + timedelta(minutes=31))  # breach → urgente
    with session_scope() as s:
        ticket_service.change_fields(s, tid, technician_id=tech, priority="baixa")
    with session_scope() as s:
        sla.tick(s, now=MONDAY_8 + timedelta(minutes=32))
        row = s.get(TicketSla, tid)
        assert row.first_response_due_at == MONDAY_8 + timedelta(minutes=30)  # breached: kept
        assert row.resolution_due_at == datetime(2027, 3, 2, 21, 0)  # 1200 business min: Tuesday 18:00
        ticket = s.get(Ticket, tid)  # the copy the reports read
        assert (ticket.first_response_due_at, ticket.resolution_due_at) == (row.first_response_due_at,
                                                                             row.resolution_due_at)
        assert len(_events(s, tid, "sla_breach")) == 1


def test_two_workers_at_once_write_each_event_once(db_url: str) -> None:
    with session_scope() as s:
        _, cust = _setup(s)
        ids = [_open(s, cust) for _ in range(5)]
    now = MONDAY_8 + timedelta(minutes=61)
    results: dict[str, Any] = {}

    def second_worker() -> None:
        with session_scope() as other:
            results["b"] = sla.tick(other, now=now)

    with session_scope() as first:
        results["a"] = sla.tick(first, now=now)
        thread = threading.Thread(target=second_worker)
        thread.start()
        thread.join(0.7)
        assert thread.is_alive(), "the second worker should wait for the first one's rows"
    thread.join(20)
    assert not thread.is_alive()
    assert results["a"]["breaches"] == 5 and results["b"]["breaches"] == 0 and results["b"]["warnings"] == 0
    with session_scope() as s:
        n = s.scalar(select(func.count()).select_from(TicketEvent).where(TicketEvent.kind == "sla_breach"))
        assert n == 5
        assert {s.get(Ticket, i).priority for i in ids} == {"alta"}


def test_backfill_gives_closed_tickets_their_rows_and_nothing_runs_without_policies(db_url: str) -> None:
    with session_scope() as s:
        tech = technician_service.create(s, name="Ana", email="ana@sla.test", password="senha-forte-123",
                                         role="technician", level=1)
        tid = _open(s, None)
        ticket_service.assume(s, tid, tech.id)
        ticket_service.resolve(s, tid, technician_id=tech.id, solution="Feito.")
        assert sla.tick(s) == {"synced": 0, "backfilled": 0, "warnings": 0, "breaches": 0}
        assert sla_escalation.backfill(s) == 0
    with session_scope() as s:
        sla.save(s, policies=POLICIES, week=WEEK, actor="Gerente")
        assert sla_escalation.backfill(s, window=1) == 1
        assert s.get(TicketSla, tid).resolution_minutes == 240
        assert sla_escalation.backfill(s) == 0


def test_the_job_walks_past_tickets_a_bounded_window_per_run(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope() as s:
        ids = [_open(s, None) for _ in range(12)]
        s.execute(update(Ticket).values(status="concluido", resolved_at=MONDAY_8 + timedelta(minutes=30)))
        sla.save(s, policies=[p for p in POLICIES if p["priority"] != "normal"], week=WEEK, actor="Gerente")
    monkeypatch.setattr(sla_escalation, "HISTORY_WINDOW", 5)
    seen = []
    for _ in range(4):
        with session_scope() as s:
            seen.append(sla.tick(s, now=MONDAY_8)["backfilled"])
    assert seen == [5, 5, 2, 0]
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(TicketSla)) == 12
        assert s.get(TicketSla, ids[0]).first_response_minutes is None  # no policy for normal then
        sla.save(s, policies=POLICIES, week=WEEK, actor="Gerente")  # a save restarts the pass
    with session_scope() as s:
        assert sla.tick(s, now=MONDAY_8)["backfilled"] == 5
        assert s.get(TicketSla, ids[0]).resolution_minutes == 240
        assert s.get(Ticket, ids[0]).resolution_due_at == MONDAY_8 + timedelta(minutes=240)


def test_the_worker_runs_the_sla_job(db_url: str) -> None:
    from helpdesk import worker

    with session_scope() as s:
        _, cust = _setup(s)
        tid = _open(s, cust, opened=datetime(2026, 1, 5, 11, 0))  # long overdue
    jobs = [j for j in worker.registered_jobs(worker.WorkerSettings()) if j.name == "sla.tick"]
    assert len(jobs) == 1 and jobs[0].interval_s == 60.0
    w = worker.Worker(jobs)
    assert w.tick() == 1 and jobs[0].failures == 0, jobs[0].last_error
    assert jobs[0].last_result["breaches"] == 2  # first response and resolution
    with session_scope() as s:
        assert [e.data["target"] for e in _events(s, tid, "sla_breach")] == ["first_response", "resolution"]
        assert s.get(Ticket, tid).priority == "urgente"  # normal → alta → urgente
