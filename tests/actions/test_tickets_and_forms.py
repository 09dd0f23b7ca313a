"""Ticket form validation, opening tickets (chat, sales lead, voice call) and hand-off activation."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from actions.forms import ActionAskTicketModule, ValidateRatingForm, ValidateTicketForm, classify_type, parse_rating
from actions.recommendation import ActionOpenSalesLead, ActionRecommendProduct
from actions.tickets import ActionInboundCall, ActionOpenTicket

from .conftest import MARIA_PHONE, Demo, make_tracker, responses, run_action, slots_of


def tickets_of(conversation: str) -> list[Any]:
    from helpdesk.db import session_scope
    from helpdesk.models import Ticket

    with session_scope() as s:
        return list(s.scalars(select(Ticket).where(Ticket.conversation_id == conversation).order_by(Ticket.id)))


def loop_of(events: list[dict[str, Any]]) -> Any:
    loops = [e.get("name") for e in events if e.get("event") == "active_loop"]
    return loops[-1] if loops else "unset"


def validate(slot: str, value: Any, text: str, requested: str | None = None) -> tuple[list[str], Any]:
    tracker = make_tracker(text, "inform", slots={slot: value, "requested_slot": requested or slot},
                           active_loop="ticket_form")
    tracker.events.append({"event": "slot", "name": slot, "value": value})
    messages, events = run_action(ValidateTicketForm(), tracker)
    return responses(messages), slots_of(events).get(slot)


def test_description_validation(db: Demo) -> None:
    assert validate("ticket_description", "o pdv trava ao abrir", "o pdv trava ao abrir") == ([], "o pdv trava ao abrir")
    assert validate("ticket_description", "ok", "ok") == (["utter_invalid_description"], None)
    assert validate("ticket_description", "😀😀", "😀😀") == (["utter_invalid_description"], None)
    assert validate("ticket_description", "x" * 5000, "x" * 5000) == (["utter_message_too_long"], None)


@pytest.mark.parametrize("value,expected", [
    ("pdv", "pdv"), ("frente de caixa", "pdv"), ("na nota fiscal", "nfe"), ("NF-e", "nfe"), ("no crm", "omnicrm"),
    ("não sei", "nenhum"), ("Não sei", "nenhum"),
])
def test_module_validation_maps_synonyms(db: Demo, value: str, expected: str) -> None:
    assert validate("ticket_module", value, value) == ([], expected)


def test_unknown_module_is_asked_again(db: Demo) -> None:
    assert validate("ticket_module", "banana", "banana") == (["utter_invalid_module"], None)


def test_type_validation() -> None:
    assert classify_type("Erro") == "erro"
    assert classify_type("dúvida") == "duvida"
    assert classify_type("preciso de atualização") == "atualizacao"
    assert classify_type("instalação nova") == "instalacao"
    assert classify_type("banana") is None


def test_type_validation_action(db: Demo) -> None:
    assert validate("ticket_type", "banana", "banana") == (["utter_invalid_ticket_type"], None)
    assert validate("ticket_type", "atualização", "atualização") == ([], "atualizacao")


def test_ask_module_offers_the_customers_modules(db: Demo) -> None:
    tracker = make_tracker("o sistema caiu", "report_problem", slots={"customer_id": str(db.maria_id)})
    messages, _ = run_action(ActionAskTicketModule(), tracker)
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert payloads == ['/inform_module{"module": "pdv"}', '/inform_module{"module": "nfe"}',
                        '/inform_module{"module": "gestor"}', '/inform_module{"module": "nenhum"}']
    messages, _ = run_action(ActionAskTicketModule(), make_tracker("o sistema caiu", "report_problem"))
    assert responses(messages) == ["utter_ask_ticket_module_free"]


def test_open_ticket_links_conversation_channel_and_hands_off(db: Demo) -> None:
    slots = {"ticket_description": "PDV não abre", "ticket_module": "pdv", "ticket_type": "erro"}
    tracker = make_tracker("erro", "inform_ticket_type", sender=MARIA_PHONE, channel="whatsapp", slots=slots)
    messages, events = run_action(ActionOpenTicket(), tracker)
    [ticket] = tickets_of(MARIA_PHONE)
    assert (ticket.customer_id, ticket.channel, ticket.type, ticket.module, ticket.description) == (
        db.maria_id, "whatsapp", "erro", "pdv", "PDV não abre")
    assert messages[0]["response"] == "utter_ticket_opened" and messages[0]["ticket_number"] == str(ticket.id)
    assert loop_of(events) == "action_handoff"
    assert slots_of(events)["active_ticket"] == str(ticket.id)
    # A second request reuses the active ticket instead of opening another one.
    messages, _ = run_action(ActionOpenTicket(), tracker)
    assert responses(messages) == ["utter_ticket_already_open"] and len(tickets_of(MARIA_PHONE)) == 1


def test_prospect_ticket_without_module(db: Demo) -> None:
    slots = {"ticket_description": "Quero ajuda", "ticket_module": "nenhum", "ticket_type": "outro"}
    run_action(ActionOpenTicket(), make_tracker("outro", "inform_ticket_type", sender="web-1", channel="website",
                                                slots=slots))
    [ticket] = tickets_of("web-1")
    assert (ticket.customer_id, ticket.channel, ticket.module) == (None, "web", None)


def test_inbound_call_opens_a_phone_ticket_once(db: Demo) -> None:
    meta = {"whatsapp": {"wa_id": MARIA_PHONE, "type": "call"},
            "call": {"call_id": "c1", "event": "terminate", "missed": True, "duration": None}}
    history = [{"event": "user", "text": "o pdv travou", "input_channel": "whatsapp",
                "parse_data": {"intent": {"name": "report_problem"}}}]
    tracker = make_tracker("/inbound_call", "inbound_call", sender=MARIA_PHONE, channel="whatsapp", metadata=meta,
                           history=history)
    messages, events = run_action(ActionInboundCall(), tracker)
    [ticket] = tickets_of(MARIA_PHONE)
    assert (ticket.channel, ticket.type, ticket.customer_id) == ("phone", "erro", db.maria_id)
    assert ticket.description == "Ligação perdida pelo WhatsApp."
    assert messages[0]["response"] == "utter_missed_call_ticket_opened"
    assert loop_of(events) == "action_handoff"


def test_inbound_call_from_another_channel_is_ignored(db: Demo) -> None:
    meta = {"call": {"call_id": "c1", "event": "connect", "missed": False, "duration": 30}}
    messages, events = run_action(ActionInboundCall(), make_tracker("/inbound_call", "inbound_call", sender="w",
                                                                     channel="website", metadata=meta))
    assert responses(messages) == ["utter_rephrase"] and events == [] and tickets_of("w") == []


def test_recommendation_considers_what_the_customer_has(db: Demo) -> None:
    tracker = make_tracker("quero relatorios gerenciais", "ask_product_recommendation", sender=MARIA_PHONE,
                           channel="whatsapp")
    messages, events = run_action(ActionRecommendProduct(), tracker)
    assert "Você já usa o Atende ERP" in messages[0]["text"] and "BI" in messages[0]["text"]
    assert messages[1]["response"] == "utter_offer_sales"
    assert slots_of(events)["awaiting"] == "offer_sales"


def test_recommendation_for_a_prospect_and_sales_lead(db: Demo) -> None:
    tracker = make_tracker("quero um chatbot pro whatsapp da minha empresa", "ask_product_recommendation",
                           sender="prospect-1", channel="website")
    messages, events = run_action(ActionRecommendProduct(), tracker)
    assert "Atende Omni" in messages[0]["text"]
    tracker = make_tracker("sim", "affirm", sender="prospect-1", channel="website", slots=slots_of(events))
    messages, events = run_action(ActionOpenSalesLead(), tracker)
    [ticket] = tickets_of("prospect-1")
    assert ticket.type == "comercial" and "chatbot" in ticket.description
    assert messages[0]["response"] == "utter_sales_lead_opened" and loop_of(events) == "action_handoff"


@pytest.mark.parametrize("value,text,expected", [
    ("5", "/rate", 5), (None, "nota 4", 4), (None, "cinco", 5), (None, "7", None), (None, "0", None),
    (None, "quero outra coisa", "skip"),
])
def test_parse_rating(value: Any, text: str, expected: Any) -> None:
    assert parse_rating(value, text) == expected


def test_rating_form_validation(db: Demo) -> None:
    tracker = make_tracker("10", "rate", slots={"rating": "10", "requested_slot": "rating"}, active_loop="rating_form")
    tracker.events.append({"event": "slot", "name": "rating", "value": "10"})
    messages, events = run_action(ValidateRatingForm(), tracker)
    assert responses(messages) == ["utter_invalid_rating"] and slots_of(events)["rating"] is None
