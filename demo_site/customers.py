"""Demo customers the page can "log in" as: read from helpdesk when it is set up, else a constant."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoCustomer:
    id: str
    name: str
    email: str
    company: str


# Placeholder list, used when the helpdesk database is not reachable (the lead aligns it with the
# demo data in helpdesk/demo_data).
FALLBACK: List[DemoCustomer] = [
    DemoCustomer("1", "Maria Souza", "maria@padariaestrela.com.br", "Padaria Estrela Ltda"),
    DemoCustomer("2", "João Pereira", "joao@mercadobomprecco.com.br", "Mercado Bom Preço ME"),
]


def load_customers(limit: int = 6) -> List[DemoCustomer]:
    try:
        from sqlalchemy import select

        from helpdesk.db import session_scope
        from helpdesk.models import Customer

        found: List[DemoCustomer] = []
        with session_scope() as s:
            for customer in s.scalars(select(Customer).order_by(Customer.id).limit(limit)):
                emails = [c.value for c in customer.contacts if c.kind == "email"]
                found.append(
                    DemoCustomer(
                        str(customer.id),
                        customer.responsible_name,
                        emails[0] if emails else "",
                        customer.trade_name or customer.legal_name,
                    )
                )
        if found:
            return found
    except Exception as exc:  # any missing table/driver/env: the demo still works
        logger.info("demo customers from helpdesk unavailable (%s); using placeholders", exc)
    return list(FALLBACK)
