"""The customer correction log (LGPD Art. 18 III, issue #17 part 5; table ``customer_corrections``, 0010).

Every edit of a customer's personal data through ``services/customers.py`` writes one row per field:
who (a technician id, or a system actor such as ``whatsapp:number-change``), when, which customer,
which field and what happened (changed, added, removed). The old and new values are never
stored, not even hashed (a phone or a CNPJ is a short number: its hash is found by trying them all),
so the log is no second copy of the data that an erasure would have to find (docs/privacy.md).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput, UnknownCustomer
from ..models import Customer, CustomerCorrection, Technician

# Changes made by the system, not by a person at the console.
SYSTEM_ACTORS = ("whatsapp:number-change", "whatsapp:id-link", "whatsapp:username", "import")
ACTIONS = ("changed", "added", "removed")
UNKNOWN = "unknown"  # a caller that did not say who (kept visible in the log rather than refused)

Actor = int | str | None


def record(s: Session, customer_id: int, field: str, action: str, by: Actor) -> CustomerCorrection:
    """Add one log row in the caller's transaction. ``by``: a technician id, one of SYSTEM_ACTORS, or None."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown correction action {action!r}")
    technician_id = None
    if isinstance(by, bool) or not (by is None or isinstance(by, (int, str))):
        raise InvalidInput(f"bad correction actor {by!r}")
    if isinstance(by, int):
        if s.get(Technician, by) is None:
            raise InvalidInput(f"technician {by} does not exist", "Usuário do console desconhecido.")
        technician_id, actor = by, "technician"
    elif by is None:
        actor = UNKNOWN
    elif by in SYSTEM_ACTORS:
        actor = by
    else:
        raise InvalidInput(f"unknown correction actor {by!r}")
    row = CustomerCorrection(customer_id=customer_id, technician_id=technician_id, actor=actor,
                             field=field[:40], action=action)
    s.add(row)
    return row


def corrections(s: Session, customer_id: int) -> list[CustomerCorrection]:
    """The customer's correction log, newest first. Raises UnknownCustomer."""
    if s.get(Customer, customer_id) is None:
        raise UnknownCustomer(f"customer {customer_id} does not exist")
    c = CustomerCorrection
    return list(s.scalars(select(c).where(c.customer_id == customer_id).order_by(c.at.desc(), c.id.desc())))
