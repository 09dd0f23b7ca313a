"""An unknown customer behind a username, over the real webhook, Rasa and action server (issue 15
item 2): the bot asks who they are and sends Meta's request_contact_info; a contact card they pick
(origin other) proves nothing; the phone shared through the request links the BSUID, and the next
username-only message is greeted by name."""
from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.stack import Stack

from .test_journeys import db
from .test_whatsapp_journeys import post

pytestmark = pytest.mark.integration


def contacts_message(bsuid: str, phone: str, origin: str) -> dict[str, Any]:
    """Meta's contacts message of a username-only user (fixtures/whatsapp_username names the page)."""
    return {"contacts": [{"profile": {"name": "Cliente", "username": "@cliente"}, "user_id": bsuid}],
            "messages": [{"from_user_id": bsuid, "id": f"wamid.{uuid.uuid4().hex}", "origin": origin,
                          "timestamp": str(int(time.time())), "type": "contacts",
                          "contacts": [{"name": {"formatted_name": "Cliente"},
                                        "phones": [{"phone": f"+{phone}", "wa_id": phone, "type": "CELL"}]}]}]}


def text_message(bsuid: str, body: str) -> dict[str, Any]:
    return {"contacts": [{"profile": {"name": "Cliente"}, "user_id": bsuid}],
            "messages": [{"from_user_id": bsuid, "id": f"wamid.{uuid.uuid4().hex}",
                          "timestamp": str(int(time.time())), "type": "text", "text": {"body": body}}]}


def bsuid_links(stack: Stack, bsuid: str) -> list[int]:
    from helpdesk.models import Contact

    with db(stack) as s:
        return [c.customer_id for c in s.scalars(select(Contact).where(Contact.kind == "bsuid", Contact.value == bsuid))]


def test_an_unknown_username_shares_the_phone_through_meta_and_is_recognised(stack: Stack) -> None:
    from helpdesk.models import Contact, Customer, Ticket

    with db(stack) as s:  # a registered number that is not in a hand-off
        busy = set(s.scalars(select(Ticket.conversation_id).where(Ticket.status != "concluido")))
        contact = next(c for c in s.scalars(select(Contact).where(Contact.kind == "phone").order_by(Contact.id.desc()))
                       if f"whatsapp:{c.value}" not in busy and s.get(Customer, c.customer_id).responsible_name)
        customer, phone = s.get(Customer, contact.customer_id), contact.value
        first_name = customer.responsible_name.split()[0]
    bsuid = f"BR.{uuid.uuid4().hex[:16]}"

    post(stack, text_message(bsuid, "oi"))
    texts = stack.graph.wait_texts(bsuid, 2, 90)
    assert "Ainda não sei quem é você" in texts[0] and "CNPJ" in texts[0], texts
    [request] = [r.body for r in stack.graph.sent() if r.body.get("recipient") == bsuid
                 and (r.body.get("interactive") or {}).get("type") == "request_contact_info"]
    assert request["interactive"]["action"] == {"name": "request_contact_info"} and "to" not in request

    # a card the user picked from their address book (origin other), with the customer's number
    post(stack, contacts_message(bsuid, phone, "other"))
    texts = stack.graph.wait_texts(bsuid, 4, 90)
    assert "não confirma o seu número" in texts[2], texts
    assert bsuid_links(stack, bsuid) == []

    # the answer to Meta's request: the user's own number, signed by Meta -> linked
    post(stack, contacts_message(bsuid, phone, "contact_request"))
    texts = stack.graph.wait_texts(bsuid, 5, 90)
    assert texts[4].startswith(f"Obrigado, {first_name}!"), texts
    assert bsuid_links(stack, bsuid) == [customer.id]

    # later, only the BSUID: the same customer, greeted by name
    post(stack, text_message(bsuid, "oi"))
    texts = stack.graph.wait_texts(bsuid, 6, 90)
    assert texts[5].startswith(f"Olá, {first_name}!"), texts
