"""The 24-hour window over the real stack (issue #15 item 3, done when): Rasa server with the
WhatsApp channel, action server, signed Meta webhooks and the fake Graph API. The session's second
stack (tests/conftest.py `variant_stack`), started with WHATSAPP_TEMPLATES (and the privacy notice
on: the first message of the customer's first contact). The customer opens a ticket on WhatsApp;
the inbox row times are aged 25 h in the database; the technician's reply (the console's service,
through Rasa's API) reaches Graph as the ``atualizacao_chamado`` template with the ticket number,
the technician and the text, and the free text follows only when the customer writes again. The
rating request after a late close goes as the ``avaliacao_atendimento`` template.
"""
from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterator, List

import pytest
from sqlalchemy import text

from helpdesk.db import dispose_engines, session_scope
from helpdesk.services import handoff, technicians, tickets
from helpdesk.services.rasa_client import RasaClient
from tests.support.stack import RASA_JWT_SECRET, VARIANT_TEMPLATES, Stack

from .test_whatsapp_journeys import (customer_with_phone, message, report_problem_until_ticket, texts_to,
                                     wait_texts)

pytestmark = pytest.mark.integration

TEMPLATES = VARIANT_TEMPLATES  # atualizacao_chamado (ticket_update), avaliacao_atendimento (satisfaction)


@pytest.fixture(scope="module")
def window_stack(variant_stack: Stack) -> Iterator[Stack]:
    assert json.loads(variant_stack.env["WHATSAPP_TEMPLATES"]) == TEMPLATES
    yield variant_stack
    dispose_engines()


def templates_to(stack: Stack, to: str) -> List[Dict[str, Any]]:
    return [r.body["template"] for r in stack.graph.sent() if r.body.get("to") == to and r.body.get("type") == "template"]


def wait_for(cond: Any, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not cond():
        time.sleep(0.2)


def age_inbox(stack: Stack, wa_id: str, hours: float) -> None:
    """The customer's last message was ``hours`` ago (and Meta gave no later expiration)."""
    with session_scope(stack.database_url) as s:
        s.execute(text("UPDATE whatsapp_inbox SET received_at = received_at - :d WHERE sender = :s"),
                  {"d": hours * 3600, "s": wa_id})


def open_ticket_on_whatsapp(stack: Stack, phone: str) -> Any:
    message(stack, phone, {"type": "text", "text": {"body": "oi"}})
    wait_texts(stack, phone, 1)
    ticket = report_problem_until_ticket(stack, phone, timeout=90)
    wait_for(lambda: any(f"#{ticket.id}" in t for t in texts_to(stack, phone)))
    return ticket


def test_late_reply_goes_as_template_then_the_text_follows_and_a_late_close_asks_the_rating_by_template(
        window_stack: Stack) -> None:
    stack = window_stack
    _customer, phone = customer_with_phone(stack)
    ticket = open_ticket_on_whatsapp(stack, phone)
    client = RasaClient(base_url=stack.rasa_url, jwt_secret=RASA_JWT_SECRET)
    with session_scope(stack.database_url) as s:
        tech = technicians.create(s, name="Rita Suporte", email="rita.janela@teste.dev", password="segredo-123")
        tickets.assume(s, ticket.id, tech.id)
        tech_id = tech.id
    wait_for(lambda: False, 1.5)  # the last bot replies are sent
    before = texts_to(stack, phone)
    age_inbox(stack, phone, 25)

    reply = "Encontrei a causa:\nreinstale o módulo fiscal e reinicie o PDV."
    with session_scope(stack.database_url) as s:
        outcome = handoff.reply(s, ticket.id, technician_id=tech_id, text=reply, client=client)
    assert outcome.ok, outcome.message_pt
    wait_for(lambda: templates_to(stack, phone))
    [tpl] = templates_to(stack, phone)
    assert tpl["name"] == "atualizacao_chamado" and tpl["language"] == {"code": "pt_BR"}
    params = [p["text"] for p in tpl["components"][0]["parameters"]]
    assert params == [f"#{ticket.id}", "Rita Suporte",
                      "Rita Suporte: Encontrei a causa: reinstale o módulo fiscal e reinicie o PDV."]
    time.sleep(2)
    assert texts_to(stack, phone) == before  # no free text outside the window
    with session_scope(stack.database_url) as s:
        held = s.execute(text("SELECT body FROM whatsapp_outbox WHERE recipient = :r AND send_state = 'held'"),
                         {"r": phone}).scalars().all()
    assert [json.loads(b)["text"]["body"] for b in held] == [f"Rita Suporte: {reply}"]

    # the customer answers: the window reopens and the held text follows (the bot, in hand-off, is silent)
    message(stack, phone, {"type": "text", "text": {"body": "ok, vou tentar"}})
    after = wait_texts(stack, phone, len(before) + 1)
    assert after[len(before):] == [f"Rita Suporte: {reply}"]

    # a day later the ticket is closed: the rating request goes as the satisfaction template
    age_inbox(stack, phone, 25)
    with session_scope(stack.database_url) as s:
        closed = handoff.resolve(s, ticket.id, technician_id=tech_id, solution="Módulo fiscal reinstalado.",
                                 client=client)
    assert closed.ok, closed.message_pt
    wait_for(lambda: len(templates_to(stack, phone)) == 2)
    rating = templates_to(stack, phone)[1]
    assert rating["name"] == "avaliacao_atendimento"
    assert [p["text"] for p in rating["components"][0]["parameters"]] == [f"#{ticket.id}"]
    time.sleep(2)
    assert len(templates_to(stack, phone)) == 2  # one template: the rating question waits behind it
    assert texts_to(stack, phone) == after
    message(stack, phone, {"type": "text", "text": {"body": "obrigado"}})
    wait_for(lambda: any("nota" in t for t in texts_to(stack, phone)))
    late = texts_to(stack, phone)[len(after):]
    assert late[0] == f"O chamado #{ticket.id} foi concluído." and any("De 1 a 5" in t for t in late)
