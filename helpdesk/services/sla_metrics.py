"""% of SLAs met, for the Relatórios page: first response and resolution, in total and per day,
technician, module and customer. Aggregated in SQL (one GROUP BY over the tickets of the period,
which carry their due instants, copied from ticket_sla by the SLA job), like ``metrics``: nothing
loads ticket rows into Python.

Definitions (shown next to the figures):
- Tickets *opened* in the period that have an SLA (due instants set).
- Met: the first response (resolution) happened at or before its due instant.
- Breached: it happened after, or has not happened and the due instant has passed.
- Neither yet (still within the target) is left out of the percentage; % met = met / (met + breached).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from ..models import Customer, Technician, Ticket, utcnow
from .metrics import NO_MODULE, Period, _as_date, _day, _in_period

NO_TECHNICIAN = "sem técnico"


@dataclass(frozen=True)
class SlaRow:
    label: Any
    first_response_met: int
    first_response_breached: int
    resolution_met: int
    resolution_breached: int

    @staticmethod
    def _pct(met: int, breached: int) -> float | None:
        return None if met + breached == 0 else 100.0 * met / (met + breached)

    @property
    def pct_first_response(self) -> float | None:
        return self._pct(self.first_response_met, self.first_response_breached)

    @property
    def pct_resolution(self) -> float | None:
        return self._pct(self.resolution_met, self.resolution_breached)

    @property
    def measured(self) -> int:
        return max(self.first_response_met + self.first_response_breached,
                   self.resolution_met + self.resolution_breached)


def _aggregates(now: datetime) -> list[ColumnElement[Any]]:
    """met and breached counts of both targets: ``count(*) FILTER (WHERE ...)`` (PostgreSQL, and
    SQLite since 3.30); a comparison with a NULL instant is never true, so tickets without an SLA
    or not yet answered fall out of "met" by themselves."""
    out = []
    for done, due in ((Ticket.first_response_at, Ticket.first_response_due_at),
                      (Ticket.resolved_at, Ticket.resolution_due_at)):
        out.append(func.count().filter(done <= due))
        out.append(func.count().filter(or_(done > due, and_(done.is_(None), due <= now))))
    return out


def _row(label: Any, values: Any) -> SlaRow:
    return SlaRow(label, *(int(v or 0) for v in values))


def _base(s: Session, period: Period, key: ColumnElement[Any] | None, now: datetime | None):  # type: ignore[no-untyped-def]
    cols = ([key] if key is not None else []) + _aggregates(now or utcnow())
    return select(*cols).select_from(Ticket).where(_in_period(Ticket.opened_at, period))


def sla_totals(s: Session, period: Period, *, now: datetime | None = None) -> SlaRow:
    return _row("total", s.execute(_base(s, period, None, now)).one())


def sla_per_day(s: Session, period: Period, *, now: datetime | None = None) -> list[SlaRow]:
    day = _day(s, Ticket.opened_at).label("day")
    rows = s.execute(_base(s, period, day, now).group_by(day).order_by(day)).all()
    return [_row(_as_date(r[0]), r[1:]) for r in rows]


def sla_per_module(s: Session, period: Period, *, now: datetime | None = None) -> list[SlaRow]:
    rows = s.execute(_base(s, period, Ticket.module, now).group_by(Ticket.module)).all()
    return _by_volume([_row(m or NO_MODULE, r) for m, *r in rows])


def sla_per_technician(s: Session, period: Period, *, now: datetime | None = None) -> list[SlaRow]:
    counts = _base(s, period, Ticket.technician_id.label("tid"), now).group_by(Ticket.technician_id).subquery()
    names = dict(s.execute(select(Technician.id, Technician.name)).all())
    return _by_volume([_row(names.get(tid, NO_TECHNICIAN) if tid is not None else NO_TECHNICIAN, r)
                       for tid, *r in s.execute(select(counts)).all()])


def sla_per_customer(s: Session, period: Period, *, limit: int = 10, now: datetime | None = None) -> list[SlaRow]:
    """The customers with the most measured tickets (tickets without a customer left out)."""
    stmt = (_base(s, period, Ticket.customer_id.label("cid"), now)
            .where(Ticket.customer_id.is_not(None)).group_by(Ticket.customer_id))
    rows = _by_volume([_row(cid, r) for cid, *r in s.execute(stmt).all()])[:limit]
    names = dict(s.execute(select(Customer.id, Customer.legal_name)
                           .where(Customer.id.in_([r.label for r in rows]))).all()) if rows else {}
    return [SlaRow(names.get(r.label, str(r.label)), *_counts(r)) for r in rows]


def _counts(r: SlaRow) -> tuple[int, int, int, int]:
    return r.first_response_met, r.first_response_breached, r.resolution_met, r.resolution_breached


def _by_volume(rows: list[SlaRow]) -> list[SlaRow]:
    return sorted(rows, key=lambda r: (-r.measured, str(r.label)))


def as_table(rows: list[SlaRow], label: str = "") -> list[dict[str, Any]]:
    """Rows for a console table (pt-BR headers; ``label`` heads the first column)."""
    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v:.1f}%".replace(".", ",")

    return [{label: r.label.strftime("%d/%m/%Y") if isinstance(r.label, date) else r.label,
             "1ª resposta no prazo": pct(r.pct_first_response),
             "1ª resp. cumpridas": r.first_response_met, "1ª resp. violadas": r.first_response_breached,
             "resolução no prazo": pct(r.pct_resolution),
             "resol. cumpridas": r.resolution_met, "resol. violadas": r.resolution_breached} for r in rows]


def total_of(rows: list[SlaRow], label: str = "total") -> SlaRow:
    """The total of a breakdown that covers every ticket once (per day, per module, per technician):
    the page derives its headline from one of them instead of scanning the period again."""
    return SlaRow(label, *(sum(c) for c in zip(*(_counts(r) for r in rows)))) if rows else SlaRow(label, 0, 0, 0, 0)
