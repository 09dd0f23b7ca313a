"""Remote-access audit: AnyDesk codes are shown masked, and every reveal is recorded.

An AnyDesk code is a key to the customer's machine. The console shows it masked (``mask``) until
a technician asks for it; ``reveal`` checks the technician (active, read from the database now),
writes a :class:`~helpdesk.models.MachineAccess` row and only then returns the code. Managers read
the history per customer (``history``) and export it (``history_csv``, the one safe CSV writer).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ..errors import InvalidInput, NotFound, PermissionDenied
from ..models import Machine, MachineAccess, Technician, Ticket, utcnow
from .customer_import import csv_text
from .technicians import ACCOUNT_INACTIVE, require_manager

MASK_CHAR = "•"
HISTORY_LIMIT = 500
REMOVED_MACHINE = "máquina removida"


def mask(code: str | None) -> str:
    """``123456789`` → ``••• ••• 789``: groups of three from the right, only the last one shown."""
    raw = "".join(str(code or "").split())
    if not raw:
        return ""
    if len(raw) <= 3:
        return MASK_CHAR * 3
    groups = [raw[max(0, i - 3):i] for i in range(len(raw), 0, -3)][::-1]
    return " ".join([MASK_CHAR * len(g) for g in groups[:-1]] + [groups[-1]])


def reveal(s: Session, *, technician_id: int, machine_id: int, ticket_id: int | None = None) -> str:
    """The machine's AnyDesk code, after recording who asked for it (in the caller's transaction).

    Refused (PermissionDenied) for an unknown or deactivated technician; NotFound for an unknown
    machine or one without a code; InvalidInput when ``ticket_id`` is not a ticket of the
    machine's customer (the record would name the wrong context)."""
    tech = s.get(Technician, technician_id)
    if tech is None or not tech.active:
        raise PermissionDenied(f"technician {technician_id} inactive", ACCOUNT_INACTIVE)
    machine = s.get(Machine, machine_id)
    if machine is None or not machine.anydesk_code:
        raise NotFound(f"machine {machine_id} without AnyDesk code", "Máquina sem código AnyDesk cadastrado.")
    if ticket_id is not None:
        ticket = s.get(Ticket, ticket_id)
        if ticket is None or ticket.customer_id != machine.customer_id:
            raise InvalidInput(f"ticket {ticket_id} is not of customer {machine.customer_id}",
                               "Este chamado não é do cliente desta máquina.")
    s.add(MachineAccess(at=utcnow(), technician_id=tech.id, customer_id=machine.customer_id,
                        machine_id=machine.id, ticket_id=ticket_id, action="reveal"))
    s.flush()
    return machine.anydesk_code


@dataclass(frozen=True)
class Entry:
    at: datetime
    technician_id: int
    technician: str
    machine_id: int | None
    machine: str
    ticket_id: int | None

    @property
    def ticket(self) -> str:
        return f"#{self.ticket_id}" if self.ticket_id is not None else ""


def history(s: Session, customer_id: int, *, viewer_id: int, technician_id: int | None = None,
            start: datetime | None = None, end: datetime | None = None,
            limit: int = HISTORY_LIMIT) -> list[Entry]:
    """The reveals of one customer's codes, newest first; ``viewer_id`` must be an active manager.
    Optionally one technician's, and only ``[start, end)``."""
    require_manager(s, viewer_id)
    a, m, t = MachineAccess, aliased(Machine), aliased(Technician)
    q = (select(a.at, a.technician_id, t.name, a.machine_id, m.name, a.ticket_id)
         .join(t, t.id == a.technician_id).outerjoin(m, m.id == a.machine_id)
         .where(a.customer_id == customer_id))
    if technician_id is not None:
        q = q.where(a.technician_id == technician_id)
    if start is not None:
        q = q.where(a.at >= start)
    if end is not None:
        q = q.where(a.at < end)
    rows = s.execute(q.order_by(a.at.desc(), a.id.desc()).limit(limit)).all()
    return [Entry(at=at, technician_id=tid, technician=tname, machine_id=mid, machine=mname or REMOVED_MACHINE,
                  ticket_id=ticket) for at, tid, tname, mid, mname, ticket in rows]


def history_csv(entries: list[Entry]) -> str:
    """The history as CSV (``;``) through the console's one export writer (formula cells neutralised:
    machine and technician names are free text)."""
    return csv_text(["quando", "tecnico", "maquina", "chamado"],
                    ([e.at.strftime("%Y-%m-%d %H:%M:%S"), e.technician, e.machine, e.ticket] for e in entries))
