"""A customer behind a username opens a ticket over the real webhook, Rasa and action server: the
ticket is theirs and records that the BSUID identified it (tickets.identified_by, issue 15 item 1)."""
from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.stack import Stack

from .test_journeys import db, ticket_for
from .test_whatsapp_journeys import post

pytestmark = pytest.mark.integration


def handle_of(bsuid: str) -> str:
    """The username this test's customer shows (unique per run, in Meta's form)."""
    return "cliente_" + bsuid.split(".")[-1].lower()


def username_message(stack: Stack, bsuid: str, body: str) -> None:
    """A delivery with no phone anywhere (Meta: a customer who adopted a username), with the handle."""
    post(stack, {"contacts": [{"profile": {"name": "Cliente", "username": f"@{handle_of(bsuid)}"}, "user_id": bsuid}],
                 "messages": [{"from_user_id": bsuid, "id": f"wamid.{uuid.uuid4().hex}",
                               "timestamp": str(int(time.time())), "type": "text", "text": {"body": body}}]})


def test_a_username_customers_ticket_is_theirs_and_identified_by_the_bsuid(stack: Stack) -> None:
    from helpdesk.models import Contact, Customer, Ticket
    from helpdesk.services import customers

    with db(stack) as s:  # a registered number that is not in a hand-off
        busy = set(s.scalars(select(Ticket.conversation_id).where(Ticket.status != "concluido")))
        contact = next(c for c in s.scalars(select(Contact).where(Contact.kind == "phone").order_by(Contact.id))
                       if f"whatsapp:{c.value}" not in busy)
        customer, phone = s.get(Customer, contact.customer_id), contact.value
    bsuid = f"BR.{uuid.uuid4().hex[:12]}"
    already = len(stack.graph.texts_to(phone))
    # seen once with the phone: the BSUID is linked to the customer
    post(stack, {"contacts": [{"profile": {"name": "Cliente"}, "wa_id": phone, "user_id": bsuid}],
                 "messages": [{"from": phone, "from_user_id": bsuid, "id": f"wamid.{uuid.uuid4().hex}",
                               "timestamp": str(int(time.time())), "type": "text", "text": {"body": "oi"}}]})
    stack.graph.wait_texts(phone, already + 1, 60)
    # then only the BSUID: a problem report through the bot's questions until the ticket exists
    username_message(stack, bsuid, "o sistema caiu, erro 0x80004005 ao abrir")
    deadline, ticket, answered = time.time() + 150, None, 0
    while time.time() < deadline and ticket is None:
        texts: list[Any] = stack.graph.texts_to(bsuid)
        if len(texts) > answered:
            answered = len(texts)
            last = texts[-1]
            if "Isso resolveu?" in last:
                username_message(stack, bsuid, "nao resolveu")
            elif "módulo" in last:
                username_message(stack, bsuid, "não sei")
            elif "chamado" in last.lower() and "?" in last:
                username_message(stack, bsuid, "sim")
        time.sleep(1)
        ticket = ticket_for(stack, f"whatsapp:{bsuid}")
    assert ticket is not None, stack.graph.texts_to(bsuid)
    assert (ticket.customer_id, ticket.identified_by, ticket.channel) == (customer.id, "bsuid", "whatsapp")
    with db(stack) as s:  # the signed handle is kept, display-only, on the customer the BSUID identified
        assert customers.whatsapp_username(s, customer.id) == handle_of(bsuid)
