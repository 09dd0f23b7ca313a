"""Journeys 3 and 4 over the real WhatsApp webhook (signed Meta payloads, fake Graph API): the customer
is identified by phone, problems and calls become tickets, media gets a polite answer."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
import requests
from sqlalchemy import select

from tests.support.stack import WHATSAPP_SECRET, Stack, rasa_auth_headers

from .test_journeys import db, ticket_for

pytestmark = pytest.mark.integration


def post(stack: Stack, value: dict[str, Any], field: str = "messages") -> None:
    doc = {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": field, "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "551140040000", "phone_number_id": stack.env["WHATSAPP_PHONE_NUMBER_ID"]},
        **value}}]}]}
    body = json.dumps(doc).encode()
    sig = "sha256=" + hmac.new(WHATSAPP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    resp = requests.post(f"{stack.rasa_url}/webhooks/whatsapp/webhook", data=body, timeout=60,
                         headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig})
    assert resp.status_code == 200, resp.text


def message(stack: Stack, wa_id: str, payload: dict[str, Any]) -> None:
    post(stack, {"contacts": [{"profile": {"name": "Cliente"}, "wa_id": wa_id}],
                 "messages": [{"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())),
                               **payload}]})


def texts_to(stack: Stack, to: str) -> list[str]:
    return stack.graph.texts_to(to)


def wait_texts(stack: Stack, to: str, n: int, timeout: float = 60.0) -> list[str]:
    return stack.graph.wait_texts(to, n, timeout)


def customer_with_phone(stack: Stack) -> tuple[Any, str]:
    from helpdesk.models import Contact, Customer

    with db(stack) as s:
        contact = s.scalar(select(Contact).where(Contact.kind == "phone").order_by(Contact.id).limit(1))
        return s.get(Customer, contact.customer_id), contact.value


def report_problem_until_ticket(stack: Stack, phone: str, timeout: float) -> Any:
    """The customer reports an error and goes through the bot's questions ("Isso resolveu?": no, then
    yes to a ticket; the module: "não sei") until the ticket exists; returns it. Only a ticket newer
    than the conversation's existing ones counts (the demo's closed tickets are in it too)."""
    earlier = ticket_for(stack, f"whatsapp:{phone}")
    message(stack, phone, {"type": "text", "text": {"body": "o sistema caiu, erro 0x80004005 ao abrir"}})
    deadline = time.time() + timeout
    ticket = None
    while time.time() < deadline and ticket is None:
        texts = texts_to(stack, phone)
        if any("Isso resolveu?" in t for t in texts):
            message(stack, phone, {"type": "text", "text": {"body": "nao resolveu"}})
            wait_texts(stack, phone, len(texts) + 1)
            message(stack, phone, {"type": "text", "text": {"body": "sim"}})
        if any("módulo" in t for t in texts_to(stack, phone)[-1:]):
            message(stack, phone, {"type": "text", "text": {"body": "não sei"}})
        time.sleep(1)
        ticket = ticket_for(stack, f"whatsapp:{phone}")
        if ticket is not None and earlier is not None and ticket.id <= earlier.id:
            ticket = None
    assert ticket is not None, f"no ticket for whatsapp:{phone} after {timeout:.0f} s"
    return ticket


def test_customer_identified_by_phone_and_problem_becomes_a_ticket(stack: Stack) -> None:
    customer, phone = customer_with_phone(stack)
    message(stack, phone, {"type": "text", "text": {"body": "oi"}})
    first = customer.responsible_name.split()[0]
    assert wait_texts(stack, phone, 1)[0] == f"Olá, {first}! Como posso ajudar hoje?"
    ticket = report_problem_until_ticket(stack, phone, timeout=60)
    assert (ticket.customer_id, ticket.channel, ticket.type) == (customer.id, "whatsapp", "erro")
    assert any(f"#{ticket.id}" in t for t in wait_texts(stack, phone, 3))


def test_missed_call_opens_a_phone_ticket_and_tells_the_number(stack: Stack) -> None:
    phone = "5531988887777"
    post(stack, {"contacts": [{"profile": {"name": "C"}, "wa_id": phone}], "calls": [{
        "id": "wacid.X1", "from": phone, "to": "551140040000", "event": "terminate", "timestamp": "1",
        "direction": "USER_INITIATED", "status": "FAILED"}]}, field="calls")
    texts = wait_texts(stack, phone, 1)
    ticket = ticket_for(stack, f"whatsapp:{phone}")
    assert ticket is not None and ticket.channel == "phone"
    assert f"Abrimos o chamado #{ticket.id}" in " ".join(texts)


def test_audio_gets_a_polite_answer(stack: Stack) -> None:
    phone = "5531977776666"
    message(stack, phone, {"type": "audio", "audio": {"id": "media-1", "mime_type": "audio/ogg"}})
    texts = wait_texts(stack, phone, 1)
    assert texts and "só consigo ler mensagens de texto" in texts[-1]
    assert ticket_for(stack, f"whatsapp:{phone}") is None


def say(stack: Stack, phone: str, text: str, replies: int = 1) -> list[str]:
    """Send a text and return the new messages the bot sent to that number."""
    before = len(texts_to(stack, phone))
    message(stack, phone, {"type": "text", "text": {"body": text}})
    return wait_texts(stack, phone, before + replies)[before:]


def test_registered_number_sees_its_tickets_a_typed_cnpj_does_not(stack: Stack) -> None:
    from helpdesk.models import Ticket

    from helpdesk.models import Contact, Customer

    with db(stack) as s:  # a registered number that is not in a hand-off (another test's ticket)
        busy = set(s.scalars(select(Ticket.conversation_id).where(Ticket.status != "concluido")))
        contact = next(c for c in s.scalars(select(Contact).where(Contact.kind == "phone").order_by(Contact.id.desc()))
                       if f"whatsapp:{c.value}" not in busy and s.scalar(select(Ticket.id).where(Ticket.customer_id == c.customer_id)))
        customer, phone = s.get(Customer, contact.customer_id), contact.value
        own = s.scalar(select(Ticket).where(Ticket.customer_id == customer.id).order_by(Ticket.id.desc()).limit(1))
    texts = say(stack, phone, f"qual o status do chamado {own.id}?")
    assert texts[0].startswith(f"Chamado #{own.id} ")
    # Another number typing the same (public) CNPJ: a claim, nothing shown.
    stranger = "5531966665555"
    texts = say(stack, stranger, customer.cnpj)
    assert "Anotei o CNPJ" in texts[0] and customer.responsible_name.split()[0] not in texts[0]
    texts = say(stack, stranger, f"qual o status do chamado {own.id}?")
    assert "WhatsApp cadastrado" in texts[0] and f"#{own.id}" not in " ".join(texts)


def test_answer_lists_numbered_sources(stack: Stack) -> None:
    phone = "5531955554444"
    message(stack, phone, {"type": "text", "text": {"body": "como faço para emitir uma nota fiscal eletronica?"}})
    deadline = time.time() + 90
    while time.time() < deadline and not any("Isso resolveu?" in t for t in texts_to(stack, phone)):
        time.sleep(0.5)
    answer = "\n\n".join(texts_to(stack, phone))  # long answers go out as several WhatsApp messages
    assert "Fontes:\n" in answer, answer
    listing = answer.split("Fontes:\n", 1)[1].split("\n\n")[0].splitlines()
    assert listing and all(line.startswith(f"[{n}] ") and " — " in line for n, line in enumerate(listing, 1))


def test_prospect_lead_on_whatsapp_asks_only_the_name(stack: Stack) -> None:
    phone = "5531944443333"
    texts = say(stack, phone, "quero automatizar o atendimento da minha loja no whatsapp, o que vcs tem?", replies=2)
    assert any("time comercial" in t for t in texts)
    assert any("qual é o seu nome" in t for t in say(stack, phone, "sim"))
    texts = say(stack, phone, "Pedro Alves")
    ticket = ticket_for(stack, f"whatsapp:{phone}")
    assert ticket is not None and f"#{ticket.id}" in " ".join(texts)
    assert (ticket.type, ticket.contact_name, ticket.contact_phone) == ("comercial", "Pedro Alves", phone)


def test_a_customer_who_switches_to_a_username_is_still_recognised(stack: Stack) -> None:
    """Meta sends the phone and the business-scoped user id together; later only the user id (the
    customer adopted a username). The BSUID linked by the first delivery recognises them."""
    from helpdesk.models import Contact, Customer, Ticket

    with db(stack) as s:  # a registered number that is not in a hand-off
        busy = set(s.scalars(select(Ticket.conversation_id).where(Ticket.status != "concluido")))
        contact = next(c for c in s.scalars(select(Contact).where(Contact.kind == "phone").order_by(Contact.id))
                       if f"whatsapp:{c.value}" not in busy
                       and s.scalar(select(Ticket.id).where(Ticket.customer_id == c.customer_id)))
        customer, phone = s.get(Customer, contact.customer_id), contact.value
        own = s.scalar(select(Ticket).where(Ticket.customer_id == customer.id).order_by(Ticket.id.desc()).limit(1))
    first = customer.responsible_name.split()[0]
    bsuid = f"BR.{uuid.uuid4().hex[:12]}"
    already = len(texts_to(stack, phone))  # other tests may have talked to this number
    post(stack, {"contacts": [{"profile": {"name": "Cliente"}, "wa_id": phone, "user_id": bsuid}],
                 "messages": [{"from": phone, "from_user_id": bsuid, "id": f"wamid.{uuid.uuid4().hex}",
                               "timestamp": str(int(time.time())), "type": "text", "text": {"body": "oi"}}]})
    assert wait_texts(stack, phone, already + 1)[already] == f"Olá, {first}! Como posso ajudar hoje?"
    with db(stack) as s:
        assert s.scalar(select(Contact.customer_id).where(Contact.kind == "bsuid", Contact.value == bsuid)) == customer.id
    # username only: no phone anywhere in the delivery
    post(stack, {"contacts": [{"profile": {"name": "Cliente"}, "user_id": bsuid}],
                 "messages": [{"from_user_id": bsuid, "id": f"wamid.{uuid.uuid4().hex}",
                               "timestamp": str(int(time.time())), "type": "text",
                               "text": {"body": f"qual o status do chamado {own.id}?"}}]})
    replies = stack.graph.wait_texts(bsuid, 1, 60)
    assert replies[0].startswith(f"Chamado #{own.id} "), replies
    # no phone in this conversation: the reply is addressed to the BSUID as `recipient`
    sends = [r for r in stack.graph.sent() if r.body.get("recipient") == bsuid]
    assert sends and all("to" not in r.body and not r.violations for r in sends)


def test_a_number_change_keeps_the_conversation_and_the_customer(stack: Stack) -> None:
    """Meta's signed `user_changed_number`: the new number continues the conversation of the old
    one, the customer is still greeted by name, and the phone on record moves to the new number."""
    from helpdesk.models import Contact, Customer, Ticket

    with db(stack) as s:  # a registered number that is not in a hand-off and has no other test's state
        busy = set(s.scalars(select(Ticket.conversation_id).where(Ticket.status != "concluido")))
        contact = next(c for c in s.scalars(select(Contact).where(Contact.kind == "phone").order_by(Contact.id.desc()))
                       if f"whatsapp:{c.value}" not in busy)
        customer, old = s.get(Customer, contact.customer_id), contact.value
    first = customer.responsible_name.split()[0]
    new = "55119" + str(uuid.uuid4().int)[:8]
    already = len(texts_to(stack, old))  # other tests may have talked to this number
    message(stack, old, {"type": "text", "text": {"body": "oi"}})
    assert wait_texts(stack, old, already + 1)[already] == f"Olá, {first}! Como posso ajudar hoje?"
    post(stack, {"contacts": [{"profile": {"name": "Cliente"}, "wa_id": old}],
                 "messages": [{"from": old, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())),
                               "type": "system", "system": {"body": f"User changed from {old} to {new}",
                                                            "wa_id": new, "type": "user_changed_number"}}]})
    deadline = time.time() + 30
    with db(stack) as s:
        from sqlalchemy import text as sql

        while time.time() < deadline and not s.execute(
                sql("select 1 from whatsapp_aliases where wa_id = :n"), {"n": new}).first():
            time.sleep(0.3)
    message(stack, new, {"type": "text", "text": {"body": "oi"}})
    assert wait_texts(stack, new, 1)[-1] == f"Olá, {first}! Como posso ajudar hoje?"
    tracker = requests.get(f"{stack.rasa_url}/conversations/whatsapp:{old}/tracker",
                           headers=rasa_auth_headers(), timeout=60).json()
    assert [e["text"] for e in tracker["events"] if e["event"] == "user"][-2:] == ["oi", "oi"]
    with db(stack) as s:
        phones = set(s.scalars(select(Contact.value).where(Contact.customer_id == customer.id,
                                                           Contact.kind == "phone")))
    assert new in phones and old not in phones  # the old number (recyclable) no longer identifies them
