"""The cost of a WhatsApp conversation over the real stack (issue #15, done when: "cost per
conversation shows in the report"), on the shared ``stack``: a customer writes, the bot's reply
goes out through the fake Graph API, Meta's signed status webhooks for that reply carry the
``pricing`` object (one of them garbled), the connector stores it, a manager prices the category,
and the managers' report gives the conversation its cost."""
from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from helpdesk.models import utcnow
from helpdesk.services import reports, technicians, wa_cost
from helpdesk.services.metrics import Period
from tests.support.stack import Stack

from .test_journeys import db
from .test_whatsapp_journeys import message, post, wait_texts

pytestmark = pytest.mark.integration

PHONE = "5548991230457"  # nobody's number in the demo data: a prospect


def _wait(fn: Any, timeout: float = 60.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def _first_reply_wamid(stack: Stack) -> Any:
    with db(stack) as s:
        return s.execute(text("SELECT wamid FROM whatsapp_outbox WHERE recipient = :r AND send_state = 'accepted' "
                              "ORDER BY id LIMIT 1"), {"r": PHONE}).scalar()


def _priced(stack: Stack, wamid: str) -> Any:
    with db(stack) as s:
        return s.execute(text("SELECT category, pricing_type, reason FROM whatsapp_pricing WHERE wamid = :w"),
                         {"w": wamid}).first()


def _status(stack: Stack, wamid: str, status: str, pricing: Any) -> None:
    post(stack, {"statuses": [{"id": wamid, "status": status, "timestamp": str(int(time.time())),
                               "recipient_id": PHONE, "pricing": pricing}]})


def test_the_cost_of_a_whatsapp_conversation_shows_in_the_report(stack: Stack) -> None:
    message(stack, PHONE, {"type": "text", "text": {"body": "oi, quanto custa o sistema?"}})
    wait_texts(stack, PHONE, 1)
    wamid = _wait(lambda: _first_reply_wamid(stack))
    _status(stack, wamid, "sent", {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"})
    _status(stack, wamid, "delivered", {"billable": "talvez", "category": ["x"], "type": "regular"})
    row = _wait(lambda: (lambda r: r if r is not None and r.reason else None)(_priced(stack, wamid)))
    assert (row.category, row.pricing_type) == ("utility", "regular")  # the garbled status changed nothing
    with db(stack) as s:
        delivered = s.execute(text("SELECT status FROM whatsapp_outbox WHERE wamid = :w"), {"w": wamid}).scalar()
    assert delivered == "delivered"  # both statuses applied
    with db(stack) as s:
        manager = technicians.create(s, name="Gestora Custos", email="custos@teste.dev", password="senha-forte-123",
                                     role="manager")
        wa_cost.set_price(s, category="utility", price="0,0425", valid_from=date(2026, 1, 1),
                          technician_id=manager.id)
    today = utcnow().date()
    period = Period.from_dates(today - timedelta(days=1), today + timedelta(days=1))
    with db(stack) as s:
        report = reports.build(s, period)
    conv = next(x for x in report.wa_cost.per_conversation if x.label == f"whatsapp:{PHONE}")
    assert (conv.messages, conv.charged, conv.cost_brl, conv.customer) == (1, 1, Decimal("0.0425"), "sem cadastro")
    assert f"whatsapp_custo_por_conversa;whatsapp:{PHONE};0.04" in reports.to_csv(report)
