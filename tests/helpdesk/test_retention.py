"""Retention purge (issue #17 part 4) over data aged in the database, on SQLite and PostgreSQL.

The data set (every date relative to now): an old, closed WhatsApp conversation of a customer; a
conversation of the same customer as old but with an open ticket; a conversation as old whose
hand-off loop is still active in the tracker; one whose hand-off ended; a recent one; an old lead, a
recent lead, an old lead who became a customer; old and recent questions, WhatsApp rows, AnyDesk
reveals and corrections. The purge removes exactly the expired items, keeps the exempt and recent
ones, keeps every ticket row and every report figure, and writes one audit row.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from helpdesk import retention
from helpdesk.db import get_engine, session_scope
from helpdesk.errors import InvalidInput
from helpdesk.models import (
    ConversationOutcome,
    CustomerCorrection,
    KnowledgeQuery,
    MachineAccess,
    Module,
    Product,
    RetentionRun,
    Ticket,
    TicketEvent,
    utcnow,
)
from helpdesk.services import metrics, technicians
from tests.helpdesk.test_privacy import (  # noqa: F401 (foreign_tables: fixture)
    ALIASES,
    EVENTS,
    INBOX,
    LEASES,
    OUTBOX,
    _customer,
    _dump,
    _traces,
    foreign_tables,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = utcnow()
ANA_PHONE = "5511912345678"
HANDOFF_PHONE = "5521912345678"
LEAD_OLD_PHONE = "5531912345678"
LEAD_NEW_PHONE = "5541912345678"
LEAD_OPEN_PHONE = "5551912345678"
# Gone after the purge (texts of expired items).
EXPIRED = ["conversa velha da ana", "inbox velho da ana", "resposta velha a ana", "pergunta velha sem resposta",
           "handoff encerrado antigo", "Lia Lead Antiga", LEAD_OLD_PHONE, "lia@lead.com.br", "lead antiga quer comprar"]
# Still there after the purge (exempt or recent).
KEPT = ["conversa com chamado aberto", "em atendimento humano", "conversa recente da ana", "pergunta recente",
        "pergunta no chamado aberto", "inbox do atendimento humano", "Nina Lead Nova", "lead nova quer comprar",
        "pendente ainda na fila", "Ana Souza Prado", "Olga Lead Aberta", "lead aberta antiga", LEAD_OPEN_PHONE]


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def epoch(days: float) -> float:
    return ago(days).replace(tzinfo=timezone.utc).timestamp()


@dataclass
class Data:
    ana: int
    tickets: dict[str, int]


def _events(s: Any, sender: str, days: float, *items: tuple[str, dict[str, Any]]) -> None:
    for i, (kind, data) in enumerate(items):
        s.execute(EVENTS.insert().values(sender_id=sender, type_name=kind, timestamp=epoch(days) + i,
                                         data=json.dumps({"event": kind, **data}, ensure_ascii=False)))


def _wa(s: Any, who: str, days: float, text: str, reply: str, *, state: str = "done", send_state: str = "accepted",
        n: list[int] = [0]) -> None:  # noqa: B006 - a counter for unique item ids
    n[0] += 1
    s.execute(INBOX.insert().values(item_id=f"wamid.r{n[0]}", kind="message", sender=who, state=state, text=text,
                                    attempts=0, data=json.dumps({"contacts": [{"wa_id": who}]}),
                                    received_at=epoch(days)))
    s.execute(OUTBOX.insert().values(source_key=f"wamid.r{n[0]}", idx=0, recipient=who, kind="text",
                                     send_state=send_state, body=json.dumps({"text": {"body": reply}}),
                                     needs_template=False, attempts=1, created_at=epoch(days),
                                     updated_at=epoch(days)))


def _ticket(s: Any, conv: str, days: float, customer_id: int | None, status: str, description: str,
            **kw: Any) -> int:
    t = Ticket(customer_id=customer_id, channel=kw.pop("channel", "whatsapp"), type=kw.pop("type", "erro"),
               module="fiscal", conversation_id=conv, status=status, description=description,
               opened_at=ago(days), updated_at=ago(days), **kw)
    if status == "concluido":
        t.resolved_at = ago(days - 0.1)
    t.events = [TicketEvent(actor="cliente", kind="created", text=description, at=ago(days))]
    s.add(t)
    s.flush()
    return t.id


def _load() -> Data:
    with session_scope() as s:
        product = Product(code="erp", name="ERP")
        module = Module(product=product, code="fiscal", name="Fiscal")
        s.add_all([product, module])
        ana = _customer(s, "Ana Souza Prado", "Ana Souza Prado ME", "04252011000110", ANA_PHONE,
                        "ana@prado.com.br", "mei", "CAIXA-ANA", "123456789", module)
        tech = technicians.create(s, name="Rafa", email="rafa@teste.dev", password="senha-forte-123")
        tk = {
            "old": _ticket(s, f"whatsapp:{ANA_PHONE}", 400, ana.id, "concluido", "impressora da ana"),
            "open": _ticket(s, "web:ana-open", 300, ana.id, "em_atendimento", "chamado aberto da ana", channel="web"),
            "handoff": _ticket(s, f"whatsapp:{HANDOFF_PHONE}", 300, None, "concluido", "chamado do handoff"),
            "lead_old": _ticket(s, f"whatsapp:{LEAD_OLD_PHONE}", 400, None, "concluido", "lead antiga quer comprar",
                                type="comercial", contact_name="Lia Lead Antiga", contact_phone=LEAD_OLD_PHONE,
                                contact_email="lia@lead.com.br"),
            "lead_new": _ticket(s, "web:lead-nova", 30, None, "concluido", "lead nova quer comprar", channel="web",
                                type="comercial", contact_name="Nina Lead Nova", contact_phone=LEAD_NEW_PHONE),
            # an old lead whose ticket is still open: never touched, nor its conversation
            "lead_open": _ticket(s, f"whatsapp:{LEAD_OPEN_PHONE}", 400, None, "novo", "lead aberta antiga",
                                 type="comercial", contact_name="Olga Lead Aberta", contact_phone=LEAD_OPEN_PHONE),
            # an old lead whose phone is now a customer's contact: not a lead any more, kept
            "lead_customer": _ticket(s, "web:lead-virou-cliente", 400, None, "concluido", "virou cliente",
                                     channel="web", type="comercial", contact_name="Ana", contact_phone=ANA_PHONE),
        }
        _events(s, f"whatsapp:{ANA_PHONE}", 400, ("user", {"text": "conversa velha da ana"}))
        _events(s, "web:ana-open", 300, ("user", {"text": "conversa com chamado aberto"}))
        _events(s, f"whatsapp:{HANDOFF_PHONE}", 300, ("user", {"text": "em atendimento humano"}),
                ("active_loop", {"name": "ticket_form"}), ("active_loop", {"name": None}),
                ("active_loop", {"name": retention.HANDOFF_LOOP}))
        _events(s, "web:handoff-fim", 300, ("user", {"text": "handoff encerrado antigo"}),
                ("active_loop", {"name": retention.HANDOFF_LOOP}), ("active_loop", {"name": None}))
        _events(s, "web:ana-recente", 10, ("user", {"text": "conversa recente da ana"}))
        _events(s, f"whatsapp:{LEAD_OLD_PHONE}", 400, ("user", {"text": "sou a Lia Lead Antiga"}))
        _events(s, "web:lead-nova", 30, ("user", {"text": "sou a Nina Lead Nova"}))
        _events(s, f"whatsapp:{LEAD_OPEN_PHONE}", 400, ("user", {"text": "lead aberta antiga"}))
        _wa(s, ANA_PHONE, 400, "inbox velho da ana", "resposta velha a ana")
        _wa(s, HANDOFF_PHONE, 300, "inbox do atendimento humano", "resposta do atendimento humano")
        _wa(s, LEAD_OLD_PHONE, 400, "inbox da Lia Lead Antiga", "resposta a Lia Lead Antiga")
        _wa(s, "5511955554444", 400, "pendente ainda na fila", "envio pendente na fila", state="pending",
            send_state="pending")
        s.execute(LEASES.insert().values(sender=ANA_PHONE, owner="h:1:a", expires_at=epoch(400), claimed_at=epoch(400)))
        s.execute(ALIASES.insert().values(wa_id="5511900001111", conversation=ANA_PHONE, changed_at=epoch(400)))
        s.execute(ALIASES.insert().values(wa_id="5521900001111", conversation=HANDOFF_PHONE, changed_at=epoch(300)))
        s.add_all([
            KnowledgeQuery(conversation_id=f"whatsapp:{ANA_PHONE}", question="pergunta velha sem resposta",
                           answered=False, at=ago(400)),
            KnowledgeQuery(conversation_id="web:ana-open", question="pergunta no chamado aberto", answered=False,
                           at=ago(300)),
            KnowledgeQuery(conversation_id="web:ana-recente", question="pergunta recente", answered=True, at=ago(10)),
            ConversationOutcome(conversation_id=f"whatsapp:{ANA_PHONE}", channel="whatsapp", customer_id=ana.id,
                                started_at=ago(400), resolved_by_bot=True, rating=5),
            ConversationOutcome(conversation_id=f"whatsapp:{LEAD_OLD_PHONE}", channel="whatsapp",
                                started_at=ago(400), handed_off=True, rating=3),
            MachineAccess(technician_id=tech.id, customer_id=ana.id, at=ago(400)),
            MachineAccess(technician_id=tech.id, customer_id=ana.id, at=ago(10)),
            CustomerCorrection(customer_id=ana.id, technician_id=tech.id, actor="technician", field="city",
                               action="changed", at=ago(400)),
            CustomerCorrection(customer_id=ana.id, technician_id=tech.id, actor="technician", field="notes",
                               action="changed", at=ago(10)),
        ])
        return Data(ana.id, tk)


def _reports() -> dict[str, Any]:
    period = metrics.Period.from_dates((NOW - timedelta(days=500)).date(), NOW.date())
    with session_scope() as s:
        return {
            "totals": metrics.ticket_totals(s, period), "per_day": metrics.tickets_per_day(s, period),
            "per_type": metrics.tickets_per_type(s, period), "per_module": metrics.tickets_per_module(s, period),
            "per_technician": metrics.tickets_per_technician(s, period), "bot": metrics.bot_summary(s, period),
            "ratings": metrics.ratings(s, period), "resolution": metrics.bot_resolution(s, period, now=NOW),
            "per_customer": sorted(n for _, n in metrics.tickets_per_customer(s, period)),
        }


def _senders() -> set[str]:
    with get_engine().connect() as conn:
        return set(conn.execute(sa.text("SELECT DISTINCT sender_id FROM events")).scalars())


def _purge(**kw: Any) -> dict[str, int]:
    with session_scope() as s:
        return retention.purge(s, settings=retention.RetentionSettings(), now=NOW, actor="teste", **kw)


def test_purge_removes_what_expired_and_keeps_open_handoff_recent_and_reports(db_url: str,
                                                                             foreign_tables: None) -> None:
    data = _load()
    reports = _reports()
    n_tickets = len(_dump()["tickets"])
    before = _dump()
    dry = _purge(dry_run=True)
    assert _dump() == before  # nothing changed, not even the audit table
    counts = _purge()
    assert counts == dry  # the dry run said exactly what the purge did

    assert _traces(EXPIRED) == []
    assert {n for _t, n in _traces(KEPT)} == set(KEPT)
    assert _senders() == {"web:ana-open", f"whatsapp:{HANDOFF_PHONE}", "web:ana-recente", "web:lead-nova",
                          f"whatsapp:{LEAD_OPEN_PHONE}"}
    assert counts["conversations"] == 2 and counts["exempt_conversations"] == 3  # + the lead's, erased as a lead
    assert counts["leads"] == 1 and counts["lead_tickets"] == 1
    assert counts["knowledge_queries"] == 1 and counts["exempt_questions"] == 1
    assert counts["whatsapp_inbox"] == 2 and counts["whatsapp_outbox"] == 2  # Ana's and the lead's
    assert counts["exempt_whatsapp_rows"] == 2  # the hand-off's inbox and outbox rows
    assert counts["machine_accesses"] == 1 and counts["customer_corrections"] == 1
    assert counts["whatsapp_leases"] == 1 and counts["whatsapp_aliases"] == 1

    assert _reports() == reports
    assert len(_dump()["tickets"]) == n_tickets  # every ticket row kept
    with session_scope() as s:
        lead = s.get(Ticket, data.tickets["lead_old"])
        assert (lead.contact_phone, lead.contact_email, lead.contact_name) == (None, None, "")
        assert lead.conversation_id.startswith("apagado:") and lead.type == "comercial"
        assert s.get(Ticket, data.tickets["lead_new"]).contact_name == "Nina Lead Nova"
        assert s.get(Ticket, data.tickets["lead_open"]).contact_phone == LEAD_OPEN_PHONE
        assert s.get(Ticket, data.tickets["lead_customer"]).contact_phone == ANA_PHONE
        assert s.get(Ticket, data.tickets["old"]).description == "impressora da ana"  # customer history kept
        pending = s.execute(sa.text("SELECT text, state FROM whatsapp_inbox WHERE state = 'pending'")).one()
        assert pending == ("pendente ainda na fila", "pending")
        assert s.execute(sa.text("SELECT COUNT(*) FROM whatsapp_outbox WHERE send_state = 'pending' "
                                 "AND body LIKE '%pendente%'")).scalar() == 1
        old_q = s.scalars(sa.select(KnowledgeQuery).where(KnowledgeQuery.at < ago(350))).one()
        assert old_q.question == "" and old_q.conversation_id.startswith("apagado:")
        run = s.scalars(sa.select(RetentionRun)).one()
        assert run.counts == counts and run.actor == "teste"
        assert run.periods == {"transcripts_days": 180, "whatsapp_days": 90, "questions_days": 180,
                               "leads_days": 365, "console_days": 365}
    # a second run finds nothing left to purge
    again = _purge()
    assert {k: v for k, v in again.items() if not k.startswith("exempt_")} == dict.fromkeys(
        [k for k in again if not k.startswith("exempt_")], 0)


def test_closing_the_ticket_lets_the_next_purge_take_the_conversation(db_url: str, foreign_tables: None) -> None:
    data = _load()
    _purge()
    with session_scope() as s:
        t = s.get(Ticket, data.tickets["open"])
        t.status, t.resolved_at, t.updated_at = "concluido", ago(299), ago(299)
    counts = _purge()
    assert counts["conversations"] == 1 and counts["knowledge_queries"] == 1
    assert "web:ana-open" not in _senders()
    assert _traces(["conversa com chamado aberto", "pergunta no chamado aberto"]) == []


def test_two_purges_at_once_do_the_work_once(db_url: str, foreign_tables: None) -> None:
    _load()
    maker = sa.orm.sessionmaker(get_engine())
    first = maker()
    counts = retention.purge(first, settings=retention.RetentionSettings(), now=NOW, actor="a")
    result: dict[str, Any] = {}

    def second() -> None:
        try:
            result["counts"] = _purge()
        except Exception as err:  # noqa: BLE001 - reported below
            result["error"] = err

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(1.5)
    assert thread.is_alive()  # waiting for the first purge's transaction
    first.commit()
    first.close()
    thread.join(30)
    assert "error" not in result, result
    assert counts["conversations"] == 2 and result["counts"]["conversations"] == 0
    assert result["counts"]["events"] == 0 and result["counts"]["leads"] == 0
    with session_scope() as s:
        assert len(list(s.scalars(sa.select(RetentionRun)))) == 2


@pytest.mark.parametrize("raw", ["0", "-3", "abc", "1.5", "99999", " 7 dias"])
def test_bad_periods_are_refused_with_the_variable_named(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        retention.RetentionSettings.from_env({"ATENDE_RETENTION_TRANSCRIPTS_DAYS": raw})
    assert "ATENDE_RETENTION_TRANSCRIPTS_DAYS" in err.value.message_pt


def test_periods_read_from_the_environment() -> None:
    got = retention.RetentionSettings.from_env({"ATENDE_RETENTION_TRANSCRIPTS_DAYS": "30",
                                                "ATENDE_RETENTION_WHATSAPP_DAYS": " 7 ",
                                                "ATENDE_RETENTION_LEADS_DAYS": ""})
    assert (got.transcripts_days, got.whatsapp_days, got.leads_days) == (30, 7, 365)


def test_worker_job_purges(db_url: str, foreign_tables: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpdesk import worker

    _load()
    monkeypatch.setenv("ATENDE_RETENTION_TRANSCRIPTS_DAYS", "5")  # even the recent conversation goes
    retention.reset_settings()
    try:
        assert ("privacy.purge", "helpdesk.retention:run", "purge_interval_s") in worker.JOB_TABLE
        jobs = [j for j in worker.registered_jobs(worker.WorkerSettings()) if j.name == "privacy.purge"]
        assert [j.interval_s for j in jobs] == [24 * 3600.0]
        w = worker.Worker(jobs)
        assert w.tick() == 1 and jobs[0].failures == 0, jobs[0].last_error
        assert jobs[0].last_result["conversations"] == 4
        assert _senders() == {"web:ana-open", f"whatsapp:{HANDOFF_PHONE}", f"whatsapp:{LEAD_OPEN_PHONE}"}
        with session_scope() as s:
            assert s.scalars(sa.select(RetentionRun.actor)).one() == "worker"
    finally:
        retention.reset_settings()


def _cli(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, DATABASE_URL=db_url, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", **env)
    return subprocess.run([sys.executable, "-m", "helpdesk", "privacy", "purge", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=120)


def test_cli_dry_run_then_purge_and_bad_settings(db_url: str, foreign_tables: None) -> None:
    _load()
    get_engine().dispose()
    before = _dump()
    r = _cli(db_url, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "Simulação" in r.stdout and "conversas com mensagens apagadas (tracker do Rasa): 2" in r.stdout
    assert _dump() == before
    r = _cli(db_url, ATENDE_RETENTION_LEADS_DAYS="0")
    assert r.returncode == 2 and "ATENDE_RETENTION_LEADS_DAYS" in r.stderr, r.stderr
    r = _cli(db_url, ATENDE_RETENTION_WHATSAPP_DAYS="noventa")
    assert r.returncode == 2 and "ATENDE_RETENTION_WHATSAPP_DAYS" in r.stderr, r.stderr
    assert _dump() == before
    r = _cli(db_url, "--actor", "encarregado")
    assert r.returncode == 0, r.stderr
    assert "Retenção aplicada" in r.stdout and "leads que não viraram clientes (apagados): 1" in r.stdout
    assert _traces(EXPIRED) == []
    with session_scope() as s:
        assert s.scalars(sa.select(RetentionRun.actor)).one() == "encarregado"


def test_purge_without_tracker_or_whatsapp_tables(db_url: str) -> None:
    with session_scope() as s:
        s.add(KnowledgeQuery(conversation_id="web:x", question="pergunta antiga", answered=False, at=ago(400)))
    counts = _purge()
    assert counts["knowledge_queries"] == 1 and counts["events"] == 0
    assert _traces(["pergunta antiga"]) == []



def test_the_worker_names_a_bad_period_at_start(sqlite_url: str) -> None:
    env = dict(os.environ, DATABASE_URL=sqlite_url, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1",
               ATENDE_RETENTION_QUESTIONS_DAYS="-1")
    r = subprocess.run([sys.executable, "-m", "helpdesk", "worker", "--once"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "job privacy.purge failed" in r.stderr and "ATENDE_RETENTION_QUESTIONS_DAYS" in r.stderr, r.stderr
    with get_engine(sqlite_url).connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM retention_runs")).scalar() == 0
