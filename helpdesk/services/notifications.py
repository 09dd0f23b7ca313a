"""Notifications (issue 16): technicians are told of new tickets, hand-offs and SLA alerts, once.

Source of truth: ticket events of the kinds in ``KINDS`` (``created``: a new ticket, which for the
bot is the hand-off to a person; ``escalated``: a hand-off to another level or technician;
``sla_warning`` / ``sla_breach``: written by the SLA job, with ``data.target``).

The dispatcher (worker job ``notifications.dispatch``, ``run``) does two things per run:
1. Fan-out: new events become outbox rows, one per (event, channel, recipient) under a UNIQUE key,
   inserted with ON CONFLICT DO NOTHING; two dispatchers at once create each row once.
   A cursor (``notification_cursors``) holds the newest event id fully processed. Rule for history:
   the first run ever records the newest event id at that moment, so nothing that happened before
   the feature was deployed is notified; events older than ``STALE_AFTER`` are not notified either.
   The cursor only moves past events older than ``LATE_COMMIT_S``: an event whose transaction
   commits after a newer one was seen is still found; events already holding rows are skipped.
2. Sending (e-mail, webhook): each due row is claimed with a conditional UPDATE (state, token,
   lease) and the claim is committed before anything leaves, so no lock is held while a server is
   slow and no other dispatcher sends it. Success: ``sent``; failure: back to ``pending`` after
   ``backoff_base_s × 2^(attempts-1)`` (capped at one hour), ``failed`` after ``max_attempts``,
   the error kept in ``last_error``. A dispatcher that dies mid-send leaves a lease that expires
   (the only case where a message can leave twice; receivers get ``X-Atende-Delivery``).
Console rows are never sent by the dispatcher: the open console claims them (``claim_console``).

Who is concerned: the ticket's technician; with nobody assigned, active technicians whose level
is at least the ticket's (managers when no technician qualifies); for a breach, every active
manager as well; never the technician whose action wrote the event. Channels per technician:
console on by default, e-mail on by default when SMTP is configured (``set_preference``); one
team webhook per event when ATENDE_NOTIFY_WEBHOOK_URL is set.
"""
from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..models import (
    Notification, NotificationCursor, Technician, Ticket, TicketEvent, utcnow,
)
from . import notify_channels as ch
from .notify_admin import (  # noqa: F401 (the service's API)
    FailedRow, failed, failed_count, preferences, preferences_many, retry, set_preference,
)
from .notify_channels import DeliveryError, Notice, NotifySettings

KINDS = ("created", "escalated", "sla_warning", "sla_breach")
PUSH_CHANNELS = ("email", "webhook")
CURSOR = "dispatch"
LATE_COMMIT_S = 120
STALE_AFTER = timedelta(hours=24)
BATCH = 500
SEND_BATCH = 100
SEND_BUDGET_S = 30.0
LEASE = timedelta(minutes=2)
MAX_BACKOFF_S = 3600.0


def _insert(s: Session):  # type: ignore[no-untyped-def]
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


# ---- who is concerned ----------------------------------------------------------------------------

def recipients(roster: list[Technician], ev: TicketEvent, ticket: Ticket) -> list[Technician]:
    """Who is concerned by ``ev``, among ``roster`` (the active console users, read once per run)."""
    by_id = {t.id: t for t in roster}
    managers = [t for t in roster if t.role == "manager"]

    def by_level(level: int) -> list[Technician]:
        return [t for t in roster if t.role == "technician" and t.level >= level] or managers

    data = ev.data or {}
    if ev.kind == "escalated":
        target = data.get("to_technician_id")
        people = ([by_id[int(target)]] if int(target) in by_id else []) if target \
            else by_level(int(data.get("to_level") or ticket.level))
    else:
        holder = by_id.get(ticket.technician_id) if ticket.technician_id else None
        people = [holder] if holder is not None else by_level(ticket.level)
    if ev.kind == "sla_breach":
        people = people + managers
    concerned = {t.id: t for t in people if t.id != ev.technician_id}
    return sorted(concerned.values(), key=lambda t: t.id)


# ---- fan-out -------------------------------------------------------------------------------------

def _cursor(s: Session) -> int:
    row = s.get(NotificationCursor, CURSOR)
    if row is not None:
        return row.last_event_id
    newest = s.scalar(select(TicketEvent.id).order_by(TicketEvent.id.desc()).limit(1)) or 0
    s.execute(_insert(s)(NotificationCursor).values(name=CURSOR, last_event_id=newest, updated_at=utcnow())
              .on_conflict_do_nothing(index_elements=["name"]))
    s.commit()
    return s.get(NotificationCursor, CURSOR, populate_existing=True).last_event_id  # type: ignore[union-attr]


def fan_out(s: Session, *, now: datetime | None = None, settings: NotifySettings | None = None) -> dict[str, int]:
    settings = settings or ch.notify_settings()
    now = now or utcnow()
    cursor = _cursor(s)
    events = list(s.scalars(select(TicketEvent).where(TicketEvent.id > cursor, TicketEvent.kind.in_(KINDS))
                            .order_by(TicketEvent.id).limit(BATCH)))
    done = set(s.scalars(select(Notification.event_id).where(Notification.event_id.in_([e.id for e in events]))))
    by_ticket = {t.id: t for t in s.scalars(select(Ticket).where(Ticket.id.in_({e.ticket_id for e in events})))}
    roster = list(s.scalars(select(Technician).where(Technician.active.is_(True)))) if events else []
    prefs = preferences_many(s, [t.id for t in roster], settings)
    settled = now - timedelta(seconds=LATE_COMMIT_S)
    new_cursor, still_settling = cursor, False
    rows: list[dict] = []
    for ev in events:
        if ev.at <= settled and not still_settling:
            new_cursor = ev.id
        else:
            still_settling = True
        ticket = by_ticket.get(ev.ticket_id)
        if ev.id in done or ev.at < now - STALE_AFTER or ticket is None \
                or (ticket.status == "concluido" and ev.kind != "sla_breach"):
            continue
        base = {"event_id": ev.id, "ticket_id": ev.ticket_id, "kind": ev.kind, "state": "pending", "attempts": 0,
                "next_attempt_at": now, "last_error": "", "created_at": now}
        for tech in recipients(roster, ev, ticket):
            rows += [{**base, "channel": channel, "recipient": f"technician:{tech.id}", "technician_id": tech.id}
                     for channel, on in prefs[tech.id].items() if on]
        if settings.webhook_enabled:
            rows.append({**base, "channel": "webhook", "recipient": "team", "technician_id": None})
    created = 0
    if rows:  # one statement: the write lock (SQLite) lasts milliseconds
        result = s.execute(_insert(s)(Notification.__table__).on_conflict_do_nothing(
            index_elements=["event_id", "channel", "recipient"]), rows)
        created = result.rowcount if result.rowcount >= 0 else len(rows)  # type: ignore[attr-defined]
    if new_cursor > cursor:
        s.execute(update(NotificationCursor)
                  .where(NotificationCursor.name == CURSOR, NotificationCursor.last_event_id < new_cursor)
                  .values(last_event_id=new_cursor, updated_at=now))
    s.commit()
    return {"events": len(events), "created": created}


# ---- rendering -----------------------------------------------------------------------------------

def customer_name(ticket: Ticket) -> str:
    c = ticket.customer
    name = (c.trade_name or c.legal_name) if c is not None else (ticket.contact_name or "cliente não identificado")
    return ch.one_line(name)


def render(s: Session, n: Notification, settings: NotifySettings) -> Notice:
    ev = s.get(TicketEvent, n.event_id)
    ticket = s.get(Ticket, n.ticket_id)
    if ev is None or ticket is None:
        raise NotFound(f"notification {n.id}: event or ticket gone")
    data = ev.data or {}
    title = ch.title_for(ev.kind, ticket.id, data, ev.actor, for_recipient=n.technician_id is not None
                         and data.get("to_technician_id") == n.technician_id)
    body = ch.one_line(ev.text or ticket.subject or "", 300)  # untrusted (a customer's words): one line
    return Notice(notification_id=n.id, event_id=ev.id, kind=ev.kind, ticket_id=ticket.id, title=title,
                  body=body, customer=customer_name(ticket), subject=ch.one_line(ticket.subject or "", 200),
                  priority=ticket.priority, level=ticket.level, url=ch.ticket_url(settings, ticket.id),
                  target=str(data["target"]) if data.get("target") else None)


# ---- sending -------------------------------------------------------------------------------------

def backoff_s(attempts: int, settings: NotifySettings) -> float:
    return min(MAX_BACKOFF_S, settings.backoff_base_s * 2 ** max(attempts - 1, 0))


def _claim(s: Session, row_id: int, now: datetime) -> str | None:
    token = secrets.token_hex(16)
    result = s.execute(
        update(Notification)
        .where(Notification.id == row_id, or_(
            and_(Notification.state == "pending", Notification.next_attempt_at <= now),
            and_(Notification.state == "sending", Notification.lease_until < now)))
        .values(state="sending", claim_token=token, lease_until=now + LEASE, attempts=Notification.attempts + 1)
        .execution_options(synchronize_session=False))
    s.commit()
    return token if result.rowcount == 1 else None


def _deliver(s: Session, n: Notification, settings: NotifySettings, now: datetime) -> None:
    notice = render(s, n, settings)
    if n.channel == "email":
        if not settings.email_enabled:
            raise DeliveryError("SMTP não configurado (ATENDE_SMTP_HOST)")
        tech = s.get(Technician, n.technician_id)
        if tech is None:
            raise DeliveryError("técnico não encontrado")
        address = tech.email
        s.commit()  # end the read transaction before talking to the server
        ch.send_email(settings, notice, address)
    elif n.channel == "webhook":
        if not settings.webhook_enabled:
            raise DeliveryError("webhook não configurado (ATENDE_NOTIFY_WEBHOOK_URL)")
        s.commit()
        ch.send_webhook(settings, notice, now.isoformat() + "Z")
    else:
        raise DeliveryError(f"canal desconhecido: {n.channel}")


def send_due(s: Session, *, now: datetime | None = None, settings: NotifySettings | None = None,
             budget_s: float = SEND_BUDGET_S) -> dict[str, int]:
    settings = settings or ch.notify_settings()
    now = now or utcnow()
    started = time.monotonic()
    due = list(s.scalars(select(Notification.id).where(
        Notification.channel.in_(PUSH_CHANNELS),
        or_(and_(Notification.state == "pending", Notification.next_attempt_at <= now),
            and_(Notification.state == "sending", Notification.lease_until < now)))
        .order_by(Notification.id).limit(SEND_BATCH)))
    s.commit()
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for row_id in due:
        if time.monotonic() - started > budget_s:
            break
        token = _claim(s, row_id, now)
        if token is None:
            continue  # another dispatcher has it
        n = s.get(Notification, row_id, populate_existing=True)
        assert n is not None
        try:
            _deliver(s, n, settings, now)
            values: dict = {"state": "sent", "sent_at": utcnow(), "last_error": "", "lease_until": None}
            counts["sent"] += 1
        except (DeliveryError, NotFound) as err:
            s.rollback()
            n = s.get(Notification, row_id, populate_existing=True)
            assert n is not None
            final = n.attempts >= settings.max_attempts or isinstance(err, NotFound)
            values = {"state": "failed" if final else "pending", "last_error": str(err)[:1000],
                      "lease_until": None, "claim_token": None,
                      "next_attempt_at": now + timedelta(seconds=backoff_s(n.attempts, settings))}
            counts["failed" if final else "retry"] += 1
        s.execute(update(Notification).where(Notification.id == row_id, Notification.claim_token == token)
                  .values(**values).execution_options(synchronize_session=False))
        s.commit()
    return counts


def run(s: Session, *, now: datetime | None = None) -> dict[str, int]:
    """Worker job: fan out new events, then send what is due. Commits as it goes (claims must be
    visible to other dispatchers before anything is sent)."""
    settings = ch.notify_settings()
    counts = fan_out(s, now=now, settings=settings)
    counts.update(send_due(s, now=now, settings=settings))
    return counts


# ---- console channel -----------------------------------------------------------------------------

def claim_console(s: Session, technician_id: int, *, now: datetime | None = None,
                  settings: NotifySettings | None = None, limit: int = 50) -> list[Notice]:
    """This technician's unseen console notifications, newest first, marked seen in one conditional
    UPDATE: of two tabs (or two consoles) polling at once, exactly one gets each notification.
    A poll with nothing new only reads (no write lock on SQLite). Notifications older than
    ``STALE_AFTER`` (a technician away for days) are marked seen without being shown; at most
    ``limit`` are returned."""
    settings = settings or ch.notify_settings()
    now = now or utcnow()
    mine = and_(Notification.technician_id == technician_id, Notification.channel == "console",
                Notification.state == "pending")
    if s.scalar(select(Notification.id).where(mine).limit(1)) is None:
        s.commit()
        return []
    token = secrets.token_hex(16)
    s.execute(update(Notification).where(mine).values(state="sent", sent_at=now, claim_token=token)
              .execution_options(synchronize_session=False))
    s.commit()
    rows = s.scalars(select(Notification).where(Notification.claim_token == token,
                                                Notification.created_at >= now - STALE_AFTER)
                     .order_by(Notification.id.desc()).limit(limit))
    notices = []
    for n in rows:
        try:
            notices.append(render(s, n, settings))
        except NotFound:
            continue
    return notices
