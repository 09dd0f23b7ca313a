"""SLA policies and per-ticket clocks (issue 16); escalation lives in ``sla_escalation``.

- Policies: first-response and resolution targets in business minutes per priority, optionally per
  customer contract tier (``customers.tier``); a tier row wins over the default (tier NULL) row.
  A priority without a policy has no SLA.
- Calendar: one weekly calendar stored in the database (``sla_calendar``, edited with the policies
  on the console's SLA page); holidays and Carnaval as in ``sla_calendar``. Until a manager saves
  one, ``sla_calendar.default_calendar()`` applies (Mon–Fri 08:00–18:00, America/Sao_Paulo).
- Clocks: from ``opened_at``. First response ends at ``first_response_at`` (the first technician
  reply, a ``message_out`` event with a technician, set by tickets.add_message; a ticket closed
  without any reply counts the closing); resolution ends at ``resolved_at`` (concluído; a reopen
  restarts the wait until the next closing). The product has no "waiting for customer" status
  (novo / em atendimento / concluído), so no clock ever pauses.
- ``ticket_sla`` keeps, per ticket, the targets and the 80 % (warning) and 100 % (due) instants,
  written by the SLA job (``sla_escalation.tick``) and by ``backfill``. They are recomputed when a
  person changes the priority or the customer's tier, or a manager changes policies or calendar,
  but a target already breached keeps its due instant, and the job's own escalation does not
  move them (the promise made stays the measure).

About 330 lines, over the usual 300: policies, clocks and the queue's status share the Config and
Targets types and read best together; the job (sla_escalation), the calendar (sla_calendar) and the
reports (sla_metrics) are modules of their own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..errors import InvalidInput, NotFound
from ..models import PRIORITIES, Customer, SlaCalendar, SlaPolicy, Ticket, TicketSla, utcnow
from .sla_calendar import (
    DEFAULT_TIMEZONE, Calendar, business_deadline, business_minutes_between, default_calendar, parse_calendar,
)

TARGETS = ("first_response", "resolution")
TARGET_LABELS = {"first_response": "primeira resposta", "resolution": "resolução"}
WARN_FRACTION = 0.8
MAX_TARGET_MINUTES = 60 * 24 * 90  # 90 days of business minutes
_TIER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,19}$")


@dataclass(frozen=True)
class Targets:
    first_response: int
    resolution: int


@dataclass(frozen=True)
class Config:
    calendar: Calendar
    version: int
    policies: dict[tuple[str | None, str], Targets]

    def targets(self, tier: str | None, priority: str) -> Targets | None:
        return self.policies.get((tier, priority)) or self.policies.get((None, priority))


# Defaults (the demo's, and a starting point on the SLA page): business minutes.
DEFAULT_POLICIES = [
    {"priority": "urgente", "first_response_minutes": 30, "resolution_minutes": 240},
    {"priority": "alta", "first_response_minutes": 60, "resolution_minutes": 480},
    {"priority": "normal", "first_response_minutes": 120, "resolution_minutes": 960},
    {"priority": "baixa", "first_response_minutes": 240, "resolution_minutes": 2400},
    {"tier": "ouro", "priority": "urgente", "first_response_minutes": 15, "resolution_minutes": 120},
    {"tier": "ouro", "priority": "alta", "first_response_minutes": 30, "resolution_minutes": 240},
    {"tier": "ouro", "priority": "normal", "first_response_minutes": 60, "resolution_minutes": 480},
    {"tier": "ouro", "priority": "baixa", "first_response_minutes": 120, "resolution_minutes": 1440},
]


# ---- configuration ------------------------------------------------------------------------------

def _calendar_row(s: Session, *, lock: bool = False) -> SlaCalendar | None:
    stmt = select(SlaCalendar).where(SlaCalendar.id == 1)
    return s.scalar(stmt.with_for_update() if lock else stmt)


def load_config(s: Session) -> Config:
    """Calendar and policies, two small queries."""
    row = _calendar_row(s)
    calendar = default_calendar() if row is None else parse_calendar(row.week, tz=row.timezone, carnival=row.carnival)
    policies = {(p.tier, p.priority): Targets(p.first_response_minutes, p.resolution_minutes)
                for p in s.scalars(select(SlaPolicy))}
    return Config(calendar, row.version if row else 0, policies)


def normalize_tier(value: Any) -> str | None:
    """A contract tier: lower-case letters, digits, ``-`` and ``_``, up to 20; blank is none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().lower()
    if not _TIER.match(text):
        raise InvalidInput(f"bad tier {value!r}",
                           "Contrato inválido: use até 20 letras minúsculas, números, \"-\" ou \"_\" (ex.: ouro).")
    return text


def _minutes(value: Any, what: str, where: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"bad {what} {value!r}", f"Meta de {what} inválida em {where}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"bad {what} {value!r}", f"Meta de {what} inválida em {where}: informe um número.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidInput(f"bad {what} {value!r}", f"Meta de {what} inválida em {where}.")
    if number <= 0:
        raise InvalidInput(f"{what} target {value!r} not positive",
                           f"A meta de {what} em {where} precisa ser maior que zero.")
    if number != int(number):
        raise InvalidInput(f"{what} target {value!r} not whole minutes",
                           f"A meta de {what} em {where} precisa ser um número inteiro de minutos.")
    if number > MAX_TARGET_MINUTES:
        raise InvalidInput(f"{what} target {value!r} too long", f"A meta de {what} em {where} passa de 90 dias.")
    return int(number)


def validate_policies(rows: Iterable[dict[str, Any]]) -> list[tuple[str | None, str, int, int]]:
    """(tier, priority, first response, resolution) from untrusted rows; InvalidInput on the first
    bad one (pt-BR message naming it)."""
    out: list[tuple[str | None, str, int, int]] = []
    seen: set[tuple[str | None, str]] = set()
    for row in rows:
        if not isinstance(row, dict):
            raise InvalidInput("policy row must be a mapping", "Política de SLA inválida.")
        tier = normalize_tier(row.get("tier"))
        priority = row.get("priority")
        if priority not in PRIORITIES:
            raise InvalidInput(f"bad priority {priority!r}", f"Prioridade inválida: {priority}.")
        where = f"prioridade {priority}" + (f", contrato {tier}" if tier else "")
        first = _minutes(row.get("first_response_minutes"), "primeira resposta", where)
        resolution = _minutes(row.get("resolution_minutes"), "resolução", where)
        if resolution < first:
            raise InvalidInput("resolution before first response",
                               f"Em {where}, a meta de resolução não pode ser menor que a de primeira resposta.")
        if (tier, priority) in seen:
            raise InvalidInput("duplicate policy", f"Há duas políticas para {where}.")
        seen.add((tier, priority))
        out.append((tier, priority, first, resolution))
    return out


def save(s: Session, *, policies: Iterable[dict[str, Any]], week: Any, timezone: Any = None,
         carnival: Any = True, actor: str) -> Config:
    """Replace policies and calendar at once (the SLA page's "Salvar"). Everything is validated
    before anything is written: bad input raises InvalidInput and changes nothing. Concurrent saves
    are serialised on the calendar row's lock."""
    calendar = parse_calendar(week, tz=timezone or DEFAULT_TIMEZONE, carnival=carnival)
    rows = validate_policies(policies)
    now = utcnow()
    actor = (actor or "")[:200]
    row = _calendar_row(s, lock=True)
    if row is None:
        row = SlaCalendar(id=1, version=0)
        s.add(row)
    row.timezone, row.week, row.carnival = calendar.tz, calendar.to_json(), calendar.carnival
    row.version = (row.version or 0) + 1
    row.backfill_cursor = 0  # the job looks at past tickets again (those without targets get them)
    row.updated_at, row.updated_by = now, actor
    s.execute(delete(SlaPolicy))
    for tier, priority, first, resolution in rows:
        s.add(SlaPolicy(tier=tier, priority=priority, first_response_minutes=first, resolution_minutes=resolution,
                        updated_at=now, updated_by=actor))
    s.flush()
    return load_config(s)


def policy_rows(s: Session) -> list[dict[str, Any]]:
    """The policies as rows for the console (default tier first, then by tier and priority)."""
    order = {p: i for i, p in enumerate(PRIORITIES)}
    rows = [{"tier": p.tier or "", "priority": p.priority, "first_response_minutes": p.first_response_minutes,
             "resolution_minutes": p.resolution_minutes} for p in s.scalars(select(SlaPolicy))]
    return sorted(rows, key=lambda r: (r["tier"] != "", r["tier"], order.get(r["priority"], 9)))


def set_customer_tier(s: Session, customer_id: int, tier: Any) -> Customer:
    customer = s.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found", "Cliente não encontrado.")
    customer.tier = normalize_tier(tier)
    s.flush()
    return customer


# ---- clocks -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TargetStatus:
    target: str  # first_response | resolution
    minutes: int
    due_at: datetime
    done_at: datetime | None  # first response / resolution, if it happened
    elapsed_minutes: float  # business minutes from opening to done_at or now
    breached: bool
    met: bool  # done within the target

    @property
    def pct_elapsed(self) -> float:
        return 100.0 * self.elapsed_minutes / self.minutes

    @property
    def remaining_minutes(self) -> float:
        return max(0.0, self.minutes - self.elapsed_minutes)

    @property
    def pending(self) -> bool:
        return self.done_at is None


@dataclass(frozen=True)
class TicketSlaStatus:
    ticket_id: int
    first_response: TargetStatus | None
    resolution: TargetStatus | None

    @property
    def breached(self) -> bool:
        return any(t is not None and t.breached for t in (self.first_response, self.resolution))


def deadlines(opened_at: datetime, targets: Targets, calendar: Calendar) -> dict[str, datetime]:
    """Warning (80 %) and due instants of both targets."""
    out = {}
    for name in TARGETS:
        minutes = getattr(targets, name)
        out[f"{name}_warn_at"] = business_deadline(opened_at, minutes * WARN_FRACTION, calendar)
        out[f"{name}_due_at"] = business_deadline(opened_at, minutes, calendar)
    return out


def _target(name: str, minutes: int | None, due: datetime | None, opened: datetime, done: datetime | None,
            now: datetime, calendar: Calendar) -> TargetStatus | None:
    if minutes is None or due is None:
        return None
    end = done if done is not None else now
    elapsed = business_minutes_between(opened, end, calendar)
    breached = (done > due) if done is not None else now >= due
    return TargetStatus(name, minutes, due, done, elapsed, breached, done is not None and done <= due)


def status_for(s: Session, ticket_ids: Iterable[int], *, now: datetime | None = None,
               config: Config | None = None) -> dict[int, TicketSlaStatus]:
    """Per-ticket SLA status for the queue: three queries whatever the number of tickets (config,
    and one join of tickets, customers and ticket_sla). A ticket the job has not seen yet, or whose
    row is out of date, is computed on the fly (nothing written). Tickets without a policy are
    left out."""
    ids = sorted({int(i) for i in ticket_ids})
    if not ids:
        return {}
    now = now or utcnow()
    cfg = config or load_config(s)
    rows = s.execute(
        select(Ticket.id, Ticket.opened_at, Ticket.priority, Ticket.first_response_at, Ticket.resolved_at,
               Customer.tier, TicketSla)
        .outerjoin(Customer, Customer.id == Ticket.customer_id)
        .outerjoin(TicketSla, TicketSla.ticket_id == Ticket.id)
        .where(Ticket.id.in_(ids))).all()
    out: dict[int, TicketSlaStatus] = {}
    for tid, opened, priority, first_at, resolved_at, tier, row in rows:
        due = _current_due(row, opened, tier, priority, cfg)
        if due is None:
            continue
        out[tid] = TicketSlaStatus(
            tid,
            _target("first_response", due["first_response_minutes"], due["first_response_due_at"], opened,
                    first_at, now, cfg.calendar),
            _target("resolution", due["resolution_minutes"], due["resolution_due_at"], opened,
                    resolved_at, now, cfg.calendar))
    return out


def _current_due(row: TicketSla | None, opened: datetime, tier: str | None, priority: str,
                 cfg: Config) -> dict[str, Any] | None:
    """The ticket's targets and instants: its ticket_sla row when current, else computed now."""
    if row is not None and not is_stale(row, tier, priority, cfg):
        values = {k: getattr(row, k) for k in ("first_response_minutes", "first_response_due_at",
                                               "resolution_minutes", "resolution_due_at")}
    else:
        values = compute_row(opened, tier, priority, cfg, previous=row)
    return None if values["first_response_minutes"] is None else values


def is_stale(row: TicketSla, tier: str | None, priority: str, cfg: Config) -> bool:
    return row.priority != priority or row.tier != tier or row.config_version != cfg.version


def compute_row(opened: datetime, tier: str | None, priority: str, cfg: Config,
                previous: TicketSla | None = None) -> dict[str, Any]:
    """Values of a ticket_sla row; a target already breached keeps its instants from ``previous``."""
    targets = cfg.targets(tier, priority)
    values: dict[str, Any] = {"tier": tier, "priority": priority, "config_version": cfg.version}
    if targets is None:  # no SLA for this priority: a row of NULLs, so the job does not ask again
        for name in TARGETS:
            values.update({f"{name}_minutes": None, f"{name}_warn_at": None, f"{name}_due_at": None})
        return values
    values.update({"first_response_minutes": targets.first_response, "resolution_minutes": targets.resolution})
    values.update(deadlines(opened, targets, cfg.calendar))
    if previous is not None:
        for name in TARGETS:
            if getattr(previous, f"{name}_breached_at") is not None:
                for key in (f"{name}_minutes", f"{name}_warn_at", f"{name}_due_at"):
                    values[key] = getattr(previous, key)
    return values


def queue_label(status: TicketSlaStatus | None) -> str:
    """What the queue's SLA column reads: "violado", the time left of the nearest pending target,
    or "cumprido"; "" without a policy."""
    if status is None:
        return ""
    targets = [t for t in (status.first_response, status.resolution) if t is not None]
    pending = [t for t in targets if t.pending]
    if any(t.breached for t in pending):
        return "violado"
    if pending:
        nearest = min(pending, key=lambda t: t.remaining_minutes)
        return f"resta {format_minutes(nearest.remaining_minutes)} ({TARGET_LABELS[nearest.target]})"
    return "violado" if any(t.breached for t in targets) else "cumprido"


def format_minutes(minutes: float) -> str:
    total = int(minutes)
    hours, mins = divmod(total, 60)
    if hours and mins:
        return f"{hours}h{mins:02d}"
    return f"{hours}h" if hours else f"{mins} min"


def tick(s: Session, now: datetime | None = None) -> dict[str, int]:
    """The worker job (JOB_TABLE "sla"): see sla_escalation.tick."""
    from .sla_escalation import tick as run

    return run(s, now=now)
