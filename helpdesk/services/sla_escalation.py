"""The SLA job (``sla.tick``, worker JOB_TABLE "sla"): keeps ``ticket_sla`` current, raises each
warning (80 % of a target's business time) and breach once, and escalates on breach.

Once: a warning or breach is claimed with a conditional UPDATE (``... SET resolution_breached_at =
now WHERE ticket_id = :id AND resolution_breached_at IS NULL``); only the session whose UPDATE
changed the row writes the ticket event and escalates, in the same transaction. A second worker
blocks on the row until the first commits, then finds it claimed and does nothing.

Escalation rule on breach: the priority goes one step up (baixa → normal → alta → urgente); a ticket
already urgente goes one level up instead (1 → 2 → 3); at urgente and level 3 only the event is
written. The SLA targets stay those promised before the escalation.

Events (read by the notifications): kind ``sla_warning`` / ``sla_breach``, actor "SLA",
``data = {"target": "first_response" | "resolution", "due_at": ISO UTC, "minutes": target, ...}``;
a breach adds ``from_priority``, ``to_priority``, ``from_level``, ``to_level``. A target found
already breached on its first look gets the breach only (its warning is marked, not written).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..models import Customer, SlaCalendar, Ticket, TicketEvent, TicketSla, utcnow
from . import sla

ACTIVE = ("novo", "em_atendimento")
NEXT_PRIORITY = {"baixa": "normal", "normal": "alta", "alta": "urgente"}
MAX_LEVEL = 3
SYNC_BATCH = 2000
HISTORY_WINDOW = 5000  # ticket ids looked at per run by the history pass
_DONE = {"first_response": Ticket.first_response_at, "resolution": Ticket.resolved_at}


def _upsert(s: Session, ticket_id: int, values: dict[str, Any], now: datetime) -> None:
    """Insert or refresh a ticket_sla row; a target already breached keeps its instants (checked in
    the statement itself, so a concurrent breach is never overwritten)."""
    ins = (postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert)(TicketSla)
    stmt = ins.values(ticket_id=ticket_id, computed_at=now, **values)
    fresh: dict[str, Any] = {"tier": stmt.excluded.tier, "priority": stmt.excluded.priority,
                             "config_version": stmt.excluded.config_version, "computed_at": now}
    for name in sla.TARGETS:
        breached = getattr(TicketSla, f"{name}_breached_at")
        for key in (f"{name}_minutes", f"{name}_warn_at", f"{name}_due_at"):
            fresh[key] = case((breached.is_(None), getattr(stmt.excluded, key)), else_=getattr(TicketSla, key))
    s.execute(stmt.on_conflict_do_update(index_elements=[TicketSla.ticket_id], set_=fresh))
    # the reports read the due instants from the ticket itself (not a version change: no row_version)
    due = {col: select(getattr(TicketSla, col)).where(TicketSla.ticket_id == ticket_id).scalar_subquery()
           for col in ("first_response_due_at", "resolution_due_at")}
    s.execute(update(Ticket).where(Ticket.id == ticket_id).values(**due).execution_options(synchronize_session=False))


def _tickets_to_compute(s: Session, cfg: sla.Config, *, active: bool, limit: int,
                        ids: tuple[int, int] | None = None) -> list[Any]:
    base = (select(Ticket.id, Ticket.opened_at, Ticket.priority, Customer.tier, TicketSla)
            .outerjoin(Customer, Customer.id == Ticket.customer_id)
            .outerjoin(TicketSla, TicketSla.ticket_id == Ticket.id))
    if active:
        stale = or_(TicketSla.ticket_id.is_(None), TicketSla.priority != Ticket.priority,
                    TicketSla.config_version != cfg.version, TicketSla.tier.is_distinct_from(Customer.tier))
        base = base.where(Ticket.status.in_(ACTIVE), stale)
    else:  # history: tickets without a row, or computed when their priority had no policy
        base = base.where(or_(TicketSla.ticket_id.is_(None),
                              and_(TicketSla.first_response_minutes.is_(None), TicketSla.config_version != cfg.version)))
    if ids is not None:
        base = base.where(Ticket.id > ids[0], Ticket.id <= ids[1])
    return list(s.execute(base.order_by(Ticket.id).limit(limit)).all())


def sync(s: Session, cfg: sla.Config, now: datetime, *, active: bool = True, limit: int = SYNC_BATCH,
         ids: tuple[int, int] | None = None) -> int:
    """Compute the rows of open tickets that have none or an out-of-date one (``active``), or of
    any ticket without one (history, within the id range ``ids``). Returns how many were written."""
    rows = _tickets_to_compute(s, cfg, active=active, limit=limit, ids=ids)
    for tid, opened, priority, tier, previous in rows:
        _upsert(s, tid, sla.compute_row(opened, tier, priority, cfg, previous=previous), now)
    return len(rows)


def history_step(s: Session, cfg: sla.Config, now: datetime, window: int | None = None) -> int | None:
    """Look at the next ``window`` ticket ids after the calendar's ``backfill_cursor`` (bounded work
    per run, however many tickets exist) and give those without a row theirs. None when the pass
    has reached the newest ticket (new tickets get rows from the open-ticket sync meanwhile)."""
    window = window or HISTORY_WINDOW
    cursor = s.scalar(select(SlaCalendar.backfill_cursor).where(SlaCalendar.id == 1)) or 0
    top = s.scalar(select(func.max(Ticket.id))) or 0
    if cursor >= top:
        return None
    upto = min(top, cursor + window)
    n = sync(s, cfg, now, active=False, limit=window, ids=(cursor, upto))
    s.execute(update(SlaCalendar).where(SlaCalendar.id == 1, SlaCalendar.backfill_cursor < upto)
              .values(backfill_cursor=upto).execution_options(synchronize_session=False))
    return n


def backfill(s: Session, *, window: int = 5000) -> int:
    """The whole history pass at once (the demo, ``python -m helpdesk.services.sla_escalation
    backfill``): rows for every ticket that has none."""
    cfg, now, total = sla.load_config(s), utcnow(), 0
    if not cfg.policies:
        return 0
    while (n := history_step(s, cfg, now, window)) is not None:
        total += n
        s.flush()
    return total


def _local(cfg: sla.Config, at: datetime) -> str:
    return at.replace(tzinfo=timezone.utc).astimezone(cfg.calendar.zone).strftime("%d/%m/%Y %H:%M")


def _candidates(s: Session, cfg: sla.Config, name: str, now: datetime, kind: str) -> list[Any]:
    warn_at, due_at = getattr(TicketSla, f"{name}_warn_at"), getattr(TicketSla, f"{name}_due_at")
    warned, breached = getattr(TicketSla, f"{name}_warned_at"), getattr(TicketSla, f"{name}_breached_at")
    conds = [Ticket.status.in_(ACTIVE), _DONE[name].is_(None), breached.is_(None),
             TicketSla.priority == Ticket.priority, TicketSla.config_version == cfg.version]
    if kind == "breach":
        conds.append(due_at <= now)
    else:
        conds.extend([warned.is_(None), warn_at <= now, due_at > now])
    stmt = (select(TicketSla.ticket_id, getattr(TicketSla, f"{name}_minutes"), due_at)
            .join(Ticket, Ticket.id == TicketSla.ticket_id).where(and_(*conds)).order_by(TicketSla.ticket_id))
    return list(s.execute(stmt).all())


def _claim(s: Session, ticket_id: int, name: str, kind: str, now: datetime) -> bool:
    warned, breached = getattr(TicketSla, f"{name}_warned_at"), getattr(TicketSla, f"{name}_breached_at")
    if kind == "breach":
        stmt = (update(TicketSla).where(TicketSla.ticket_id == ticket_id, breached.is_(None))
                .values({breached: now, warned: case((warned.is_(None), now), else_=warned)}))
    else:
        stmt = (update(TicketSla).where(TicketSla.ticket_id == ticket_id, warned.is_(None), breached.is_(None))
                .values({warned: now}))
    return s.execute(stmt.execution_options(synchronize_session=False)).rowcount == 1


def _event(s: Session, ticket_id: int, kind: str, text: str, data: dict[str, Any], now: datetime) -> None:
    s.add(TicketEvent(ticket_id=ticket_id, actor="SLA", kind=kind, text=text, data=data, at=now))


def _escalate(s: Session, cfg: sla.Config, ticket_id: int, name: str, minutes: int, due: datetime,
              now: datetime) -> None:
    priority, level = s.execute(select(Ticket.priority, Ticket.level).where(Ticket.id == ticket_id)).one()
    to_priority, to_level = NEXT_PRIORITY.get(priority, priority), level
    if to_priority == priority and level < MAX_LEVEL:
        to_level = level + 1
    label = sla.TARGET_LABELS[name]
    if to_priority != priority:
        action = f"Prioridade elevada de {priority} para {to_priority}."
    elif to_level != level:
        action = f"Nível elevado de {level} para {to_level}."
    else:
        action = "Prioridade e nível já estão no máximo."
    s.execute(update(Ticket).where(Ticket.id == ticket_id)
              .values(priority=to_priority, level=to_level, updated_at=now, row_version=Ticket.row_version + 1)
              .execution_options(synchronize_session=False))
    # the ticket's new priority is the job's doing: keep the targets promised before it
    s.execute(update(TicketSla).where(TicketSla.ticket_id == ticket_id).values(priority=to_priority)
              .execution_options(synchronize_session=False))
    _event(s, ticket_id, "sla_breach", f"SLA de {label} violado: o prazo venceu em {_local(cfg, due)}. {action}",
           {"target": name, "due_at": due.isoformat(), "minutes": minutes, "from_priority": priority,
            "to_priority": to_priority, "from_level": level, "to_level": to_level}, now)


def tick(s: Session, now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    cfg = sla.load_config(s)
    if not cfg.policies:  # nothing promised yet: leave history alone until a manager saves policies
        return {"synced": 0, "backfilled": 0, "warnings": 0, "breaches": 0}
    counts = {"synced": sync(s, cfg, now), "backfilled": history_step(s, cfg, now) or 0,
              "warnings": 0, "breaches": 0}
    s.flush()
    for name in sla.TARGETS:
        for tid, minutes, due in _candidates(s, cfg, name, now, "breach"):
            if _claim(s, tid, name, "breach", now):
                _escalate(s, cfg, tid, name, minutes, due, now)
                counts["breaches"] += 1
        for tid, minutes, due in _candidates(s, cfg, name, now, "warning"):
            if _claim(s, tid, name, "warning", now):
                _event(s, tid, "sla_warning",
                       f"SLA de {sla.TARGET_LABELS[name]}: 80% do prazo consumido; vence em {_local(cfg, due)}.",
                       {"target": name, "due_at": due.isoformat(), "minutes": minutes}, now)
                counts["warnings"] += 1
    s.flush()
    return counts


def main(argv: list[str] | None = None) -> int:
    """``python -m helpdesk.services.sla_escalation backfill``: ticket_sla rows for all past tickets."""
    import argparse

    from ..db import session_scope

    parser = argparse.ArgumentParser(prog="python -m helpdesk.services.sla_escalation")
    parser.add_argument("command", choices=["backfill"])
    parser.parse_args(argv)
    with session_scope() as s:
        print(f"ticket_sla: {backfill(s)} rows written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
