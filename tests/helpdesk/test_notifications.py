"""Notifications end to end on SQLite and PostgreSQL (db_url): ticket events become outbox rows for
the technicians concerned, each sent once through a real SMTP server and a real webhook receiver on
loopback, also with two dispatchers running at once; channel faults back off and end as failed;
the console's claim is once per technician; history before the first run is never notified."""
from __future__ import annotations

import threading
from datetime import timedelta
from typing import Iterator

import pytest
from sqlalchemy import func, select

from helpdesk.db import session_scope
from helpdesk.demo import load_catalog
from helpdesk.models import Notification, NotificationCursor, TicketEvent, utcnow
from helpdesk.services import customers, notifications, notify_channels, technicians, tickets
from helpdesk.services.notify_channels import NotifyConfigError
from tests.helpdesk.test_notifications_channels import (  # noqa: F401 (fixtures)
    Receiver, SmtpSink, free_port, receiver, settings_for, smtp,
)

LATER = timedelta(minutes=5)


@pytest.fixture()
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    def apply(env: dict[str, str]) -> None:
        for key in list(__import__("os").environ):
            if key.startswith(("ATENDE_SMTP_", "ATENDE_NOTIFY_", "ATENDE_CONSOLE_URL")):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        notify_channels.reset_notify_settings()
    apply({})
    yield apply
    notify_channels.reset_notify_settings()


@pytest.fixture()
def team(db_url: str, configure) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        load_catalog(s)
        c = customers.create(s, responsible_name="Joana", legal_name="Padaria Pão Dourado Ltda",
                             trade_name="Pão Dourado", cnpj="11.222.333/0001-81", tax_regime="Simples Nacional")
        ids = {"customer": c.id}
        for key, name, role, level in [("ana", "Ana", "technician", 1), ("bruno", "Bruno", "technician", 2),
                                       ("carla", "Carla", "technician", 3), ("gil", "Gil", "manager", 3),
                                       ("ivo", "Ivo", "technician", 3)]:
            ids[key] = technicians.create(s, name=name, email=f"{key}@atende.example", password="segredo-123",
                                          role=role, level=level).id
        technicians.set_active(s, ids["ivo"], False, by=ids["gil"])
    with session_scope() as s:
        notifications.run(s)  # the first run sets the cursor: what came before is history
    return ids


def open_ticket(customer_id: int | None = None, **kw) -> int:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        return tickets.open_ticket(s, customer_id=customer_id, channel="whatsapp", type="erro", module="pdv",
                                   description=kw.pop("description", "PDV não abre"), conversation_id=None,
                                   **kw).id


def rows(**where) -> list[tuple]:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        stmt = select(Notification).order_by(Notification.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(Notification, key) == value)
        return [(n.kind, n.channel, n.recipient, n.state) for n in s.scalars(stmt)]


def dispatch(now=None) -> dict:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        return notifications.run(s, now=now)


def test_a_new_ticket_tells_the_technicians_who_can_take_it_once(team: dict, smtp: SmtpSink, configure) -> None:
    configure(settings_for(smtp))
    number = open_ticket(team["customer"])
    for _ in range(3):
        dispatch()
    # level 1 ticket, nobody assigned: every active technician (not the inactive one, not managers)
    expected = {f"technician:{team[k]}" for k in ("ana", "bruno", "carla")}
    assert {r[2] for r in rows(channel="email")} == expected
    assert {r[2] for r in rows(channel="console")} == expected
    assert {r[3] for r in rows(channel="email")} == {"sent"}
    assert sorted(r for _f, rs, _m in smtp.messages for r in rs) == \
        ["ana@atende.example", "bruno@atende.example", "carla@atende.example"]
    assert len(set(smtp.ids())) == 3
    subject = smtp.messages[0][2]["Subject"]
    assert subject == f"[Atende] Novo chamado #{number} transferido pelo assistente · Pão Dourado"
    assert f"https://console.example.com.br/chamado?id={number}" in smtp.messages[0][2].get_body(("plain",)).get_content()


def test_history_before_the_first_run_is_never_notified(db_url: str, configure) -> None:
    with session_scope() as s:
        load_catalog(s)
        technicians.create(s, name="Ana", email="ana@atende.example", password="segredo-123")
    old = open_ticket()
    dispatch()
    assert rows() == []
    with session_scope() as s:
        cursor = s.get(NotificationCursor, notifications.CURSOR)
        assert cursor is not None and cursor.last_event_id == max(e.id for e in tickets.get(s, old).events)
    new = open_ticket()
    dispatch()
    assert rows() == [("created", "console", rows()[0][2], "pending")]
    with session_scope() as s:
        assert s.scalar(select(Notification.ticket_id)) == new


def test_assigned_escalated_and_self_caused_events(team: dict, configure) -> None:
    number = open_ticket(team["customer"])
    with session_scope() as s:
        tickets.assume(s, number, team["ana"])
    dispatch()
    # Ana assumed the ticket before the dispatcher saw its creation: she alone is concerned, and
    # her own "assigned" event notifies nobody
    assert rows() == [("created", "console", f"technician:{team['ana']}", "pending")]
    with session_scope() as s:
        tickets.escalate(s, number, technician_id=team["ana"], level=2, to_technician_id=team["carla"], reason="BD")
    second = open_ticket(team["customer"])
    with session_scope() as s:
        tickets.assume(s, second, team["ana"])
        tickets.escalate(s, second, technician_id=team["ana"], level=3, to_technician_id=None, reason="N3")
    dispatch()
    with session_scope() as s:
        got = {(n.ticket_id, n.kind, n.recipient) for n in s.scalars(select(Notification))}
    assert (number, "escalated", f"technician:{team['carla']}") in got
    # escalated to level 3 with nobody named: active level-3 technicians (not inactive Ivo, not
    # manager Gil), never Ana who escalated it
    assert {r for t, k, r in got if t == second and k == "escalated"} == {f"technician:{team['carla']}"}
    assert not any(r == f"technician:{team['ana']}" for t, k, r in got if k == "escalated")
    with session_scope() as s:
        n = s.scalars(select(Notification).where(Notification.kind == "escalated",
                                                 Notification.ticket_id == number)).one()
        assert notifications.render(s, n, notify_channels.notify_settings()).title == \
            f"Chamado #{number} escalado para você"


def test_sla_breach_reaches_managers_and_closed_tickets_are_quiet(team: dict, configure) -> None:
    number = open_ticket(team["customer"], priority="urgente")
    closed = open_ticket(team["customer"])
    with session_scope() as s:
        tickets.assume(s, number, team["bruno"])
        tickets.assume(s, closed, team["bruno"])
        tickets.resolve(s, closed, technician_id=team["bruno"], solution="ok")
        for tid, kind in [(number, "sla_breach"), (closed, "sla_warning")]:
            s.add(TicketEvent(ticket_id=tid, actor="sla", kind=kind, data={"target": "first_response"}))
    dispatch()
    with session_scope() as s:
        breach = {n.recipient for n in s.scalars(select(Notification).where(Notification.kind == "sla_breach"))}
        assert breach == {f"technician:{team['bruno']}", f"technician:{team['gil']}"}
        assert s.scalar(select(func.count()).select_from(Notification)
                        .where(Notification.ticket_id == closed, Notification.kind == "sla_warning")) == 0
        n = s.scalars(select(Notification).where(Notification.kind == "sla_breach")).first()
        assert notifications.render(s, n, notify_channels.notify_settings()).title == \
            f"Chamado #{number}: prazo de primeira resposta estourado"


def test_preferences_opt_out_and_email_off_without_smtp(team: dict, smtp: SmtpSink, configure) -> None:
    with session_scope() as s:
        assert notifications.preferences(s, team["ana"]) == {"console": True, "email": False}
    configure(settings_for(smtp))
    with session_scope() as s:
        assert notifications.preferences(s, team["ana"]) == {"console": True, "email": True}
        notifications.set_preference(s, team["ana"], "email", False)
        notifications.set_preference(s, team["bruno"], "console", False)
        with pytest.raises(Exception, match="channel"):
            notifications.set_preference(s, team["ana"], "sms", True)
    open_ticket(team["customer"])
    dispatch()
    assert f"technician:{team['ana']}" not in {r[2] for r in rows(channel="email")}
    assert f"technician:{team['bruno']}" not in {r[2] for r in rows(channel="console")}
    assert f"technician:{team['bruno']}" in {r[2] for r in rows(channel="email")}


def test_two_dispatchers_at_once_send_each_notification_once(team: dict, smtp: SmtpSink,
                                                             receiver: Receiver, configure) -> None:
    configure(settings_for(smtp, receiver))
    numbers = [open_ticket(team["customer"], description=f"Problema {i}") for i in range(12)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):
                barrier.wait(timeout=30)
                dispatch()
        except BaseException as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(smtp.messages) == 3 * len(numbers) and len(set(smtp.ids())) == len(smtp.ids())
    assert sorted(b["ticket"]["id"] for b in receiver.bodies) == numbers
    assert receiver.bad_signatures == 0
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Notification)
                        .where(Notification.channel != "console", Notification.state != "sent")) == 0
        assert s.scalar(select(func.count()).select_from(Notification)) == 12 * (3 + 3 + 1)


def test_smtp_down_backs_off_records_and_gives_up(team: dict, configure) -> None:
    port = free_port()  # nothing listens there
    configure({"ATENDE_SMTP_HOST": "127.0.0.1", "ATENDE_SMTP_PORT": str(port), "ATENDE_SMTP_FROM": "a@b.example",
               "ATENDE_SMTP_STARTTLS": "false", "ATENDE_NOTIFY_MAX_ATTEMPTS": "3", "ATENDE_NOTIFY_BACKOFF_S": "30"})
    with session_scope() as s:
        for key in ("bruno", "carla"):
            notifications.set_preference(s, team[key], "email", False)
    open_ticket(team["customer"])
    now = utcnow()
    assert dispatch(now)["retry"] == 1
    with session_scope() as s:
        n = s.scalars(select(Notification).where(Notification.channel == "email")).one()
        assert (n.state, n.attempts) == ("pending", 1) and "SMTP" in n.last_error
        assert abs((n.next_attempt_at - now).total_seconds() - 30) < 1
    assert dispatch(now + timedelta(seconds=10))["retry"] == 0  # not due yet: no attempt
    assert dispatch(now + timedelta(seconds=31))["retry"] == 1
    with session_scope() as s:
        n = s.scalars(select(Notification).where(Notification.channel == "email")).one()
        assert n.attempts == 2 and abs((n.next_attempt_at - now).total_seconds() - 91) < 1  # 31 + 60
    assert dispatch(now + timedelta(seconds=92))["failed"] == 1
    later = dispatch(now + timedelta(hours=2))
    assert (later["sent"], later["retry"], later["failed"]) == (0, 0, 0)  # failed is final
    with session_scope() as s:
        failed, = notifications.failed(s)
        assert failed.channel == "email" and failed.attempts == 3 and "ConnectionRefused" in failed.last_error
        with pytest.raises(Exception):
            notifications.retry(s, failed.id, by=team["ana"])  # managers only
        assert notifications.retry(s, failed.id, by=team["gil"]) is True
    with session_scope() as s:
        assert s.get(Notification, failed.id).state == "pending"  # type: ignore[union-attr]


def test_smtp_refusal_then_recovery_delivers_once(team: dict, smtp: SmtpSink, configure) -> None:
    configure(settings_for(smtp))
    with session_scope() as s:
        for key in ("bruno", "carla"):
            notifications.set_preference(s, team[key], "email", False)
    smtp.refuse = 1
    open_ticket(team["customer"])
    now = utcnow()
    assert dispatch(now)["retry"] == 1 and smtp.messages == []
    assert dispatch(now + timedelta(seconds=31))["sent"] == 1
    dispatch(now + timedelta(hours=1))
    assert [r for _f, r, _m in smtp.messages] == [["ana@atende.example"]]


def test_webhook_500_and_timeout_retry_and_never_block(team: dict, receiver: Receiver, configure) -> None:
    configure(settings_for(receiver=receiver))
    receiver.status = 500
    open_ticket(team["customer"])
    now = utcnow()
    assert dispatch(now)["retry"] == 1
    receiver.status, receiver.delay_s = 200, 2.0
    assert dispatch(now + timedelta(seconds=31))["retry"] == 1
    with session_scope() as s:
        n = s.scalars(select(Notification).where(Notification.channel == "webhook")).one()
        assert n.attempts == 2 and "Timeout" in n.last_error
    receiver.delay_s = 0.0
    assert dispatch(now + timedelta(seconds=200))["sent"] == 1
    assert len(receiver.bodies) == 1


def test_a_bad_setting_stops_the_dispatcher_loudly(team: dict, configure) -> None:
    configure({"ATENDE_NOTIFY_WEBHOOK_URL": "gopher://x", "ATENDE_NOTIFY_WEBHOOK_SECRET": "s" * 40})
    open_ticket(team["customer"])
    with pytest.raises(NotifyConfigError, match="ATENDE_NOTIFY_WEBHOOK_URL"), session_scope() as s:
        notifications.run(s)
    assert rows() == []


def test_late_commit_is_found_and_cursor_moves_only_past_settled_events(team: dict, configure) -> None:
    number = open_ticket(team["customer"])
    with session_scope() as s:
        top = s.scalar(select(func.max(TicketEvent.id)))
        s.add(TicketEvent(id=top + 10, ticket_id=number, actor="sla", kind="sla_warning",
                          data={"target": "resolution"}))
    dispatch()
    with session_scope() as s:
        cursor = s.get(NotificationCursor, notifications.CURSOR).last_event_id  # type: ignore[union-attr]
        assert cursor < top  # the new events are young: the cursor waits
        # an event with a lower id commits late (its transaction began before the others)
        s.add(TicketEvent(id=top + 5, ticket_id=number, actor="sla", kind="sla_breach", data={"target": "resolution"}))
    dispatch()
    kinds = [r[0] for r in rows(recipient=f"technician:{team['ana']}")]
    assert sorted(kinds) == ["created", "sla_breach", "sla_warning"]
    before = len(rows())
    dispatch(utcnow() + LATER)
    dispatch(utcnow() + LATER)
    assert len(rows()) == before
    with session_scope() as s:
        assert s.get(NotificationCursor, notifications.CURSOR).last_event_id == top + 10  # type: ignore[union-attr]


def test_console_claim_is_once_per_technician_across_sessions(team: dict, configure) -> None:
    for i in range(6):
        open_ticket(team["customer"], description=f"Problema {i}")
    dispatch()
    barrier = threading.Barrier(3)
    seen: list[list[int]] = [[], [], []]

    def tab(i: int) -> None:
        barrier.wait(timeout=30)
        for _ in range(3):
            with session_scope() as s:
                seen[i] += [n.notification_id for n in notifications.claim_console(s, team["ana"])]

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everything = [x for tab_ids in seen for x in tab_ids]
    assert len(everything) == 6 and len(set(everything)) == 6
    with session_scope() as s:
        assert notifications.claim_console(s, team["ana"]) == []
        bruno = notifications.claim_console(s, team["bruno"])  # another technician has their own
        assert len(bruno) == 6 and bruno[0].title.startswith("Novo chamado #")
        assert bruno[0].url.endswith(f"/chamado?id={bruno[0].ticket_id}")


def test_the_worker_process_sends_the_mail(team: dict, smtp: SmtpSink, db_url: str) -> None:
    """`python -m helpdesk worker --once`, as make run starts it, reads the settings and sends."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    open_ticket(team["customer"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATENDE_SMTP_", "ATENDE_NOTIFY_"))}
    env.update(settings_for(smtp), DATABASE_URL=db_url, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run([sys.executable, "-m", "helpdesk", "worker", "--once"], env=env,
                          cwd=env["PYTHONPATH"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(r for _f, rs, _m in smtp.messages for r in rs) == \
        ["ana@atende.example", "bruno@atende.example", "carla@atende.example"]


def test_console_notifications_of_an_absent_technician_go_stale(team: dict, configure) -> None:
    open_ticket(team["customer"])
    dispatch()
    with session_scope() as s:
        assert notifications.claim_console(s, team["ana"], now=utcnow() + timedelta(hours=25)) == []
    assert {r[3] for r in rows(recipient=f"technician:{team['ana']}")} == {"sent"}  # seen, not shown
