"""Ticket form validation, opening tickets (chat, sales lead, voice call) and hand-off activation."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from actions.forms import ActionAskTicketModule, ValidateRatingForm, ValidateTicketForm, classify_type, parse_rating
from actions.recommendation import ActionOpenSalesLead, ActionRecommendProduct, ValidateLeadForm
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


@pytest.mark.parametrize("text,module", [
    ("o tef nao passa cartao de debito", "tef"),  # the module's code
    ("a Frente de Caixa travou de novo", "pdv"),  # a synonym of several words
    ("erro ao emitir NF-e de devolução", "nfe"),  # the module's name
    ("o caixa não abre", None),  # a one-word synonym is too common to classify a description
    ("o sistema caiu depois da atualização", None),  # no module named
    ("o pdv não manda a nfe", None),  # two modules: the form asks
    ("xtefx e pdvs", None),  # only whole words
])
def test_a_module_named_in_the_description_fills_the_module(db: Demo, text: str, module: str | None) -> None:
    tracker = make_tracker(text, "inform", slots={"ticket_description": text, "requested_slot": "ticket_description"},
                           active_loop="ticket_form")
    tracker.events.append({"event": "slot", "name": "ticket_description", "value": text})
    messages, events = run_action(ValidateTicketForm(), tracker)
    slots = slots_of(events)
    assert responses(messages) == [] and slots.get("ticket_description") == text
    assert slots.get("ticket_module") == module


@pytest.mark.parametrize("entities,module", [
    (["tef", "de"], "tef"),  # a stray word tagged after the real module ("cartao de debito")
    (["de", "tef"], "tef"),
    (["de"], "tef"),  # no good entity: the module the text names
])
def test_a_stray_module_entity_does_not_hide_the_real_one(db: Demo, entities: list[str], module: str) -> None:
    text = "o tef nao passa cartao de debito"
    tracker = make_tracker(text, "report_problem", slots={"ticket_description": text, "ticket_module": entities[-1],
                                                          "requested_slot": "ticket_description"},
                           active_loop="ticket_form")
    tracker.latest_message["entities"] = [{"entity": "module", "value": v} for v in entities]
    tracker.events.append({"event": "slot", "name": "ticket_module", "value": entities[-1]})
    messages, events = run_action(ValidateTicketForm(), tracker)
    assert responses(messages) == [] and slots_of(events).get("ticket_module") == module


def test_a_prefilled_module_nowhere_in_the_catalog_is_asked(db: Demo) -> None:
    text = "o sistema nao passa cartao de debito"
    tracker = make_tracker(text, "report_problem", slots={"ticket_module": "de", "requested_slot": "ticket_description"},
                           active_loop="ticket_form")
    tracker.latest_message["entities"] = [{"entity": "module", "value": "de"}]
    tracker.events.append({"event": "slot", "name": "ticket_module", "value": "de"})
    messages, events = run_action(ValidateTicketForm(), tracker)
    assert responses(messages) == [] and slots_of(events).get("ticket_module") is None


def test_a_module_already_given_is_not_replaced_by_the_description(db: Demo) -> None:
    text = "o tef nao passa cartao de debito"
    tracker = make_tracker(text, "inform", slots={"ticket_description": text, "ticket_module": "pdv",
                                                  "requested_slot": "ticket_description"}, active_loop="ticket_form")
    tracker.events.append({"event": "slot", "name": "ticket_description", "value": text})
    _, events = run_action(ValidateTicketForm(), tracker)
    assert "ticket_module" not in slots_of(events) or slots_of(events)["ticket_module"] == "pdv"


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
    [ticket] = tickets_of(f"whatsapp:{MARIA_PHONE}")
    assert (ticket.customer_id, ticket.channel, ticket.type, ticket.module, ticket.description) == (
        db.maria_id, "whatsapp", "erro", "pdv", "PDV não abre")
    assert messages[0]["response"] == "utter_ticket_opened" and messages[0]["ticket_number"] == str(ticket.id)
    assert loop_of(events) == "action_handoff"
    assert slots_of(events)["active_ticket"] == str(ticket.id)
    # A second request reuses the active ticket instead of opening another one.
    messages, _ = run_action(ActionOpenTicket(), tracker)
    assert responses(messages) == ["utter_ticket_already_open"] and len(tickets_of(f"whatsapp:{MARIA_PHONE}")) == 1


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
    [ticket] = tickets_of(f"whatsapp:{MARIA_PHONE}")
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
    slots = {**slots_of(events), "lead_name": "Carla Mendes", "lead_contact": "carla@mercadinho.com.br"}
    tracker = make_tracker("carla@mercadinho.com.br", "inform", sender="prospect-1", channel="website", slots=slots)
    messages, events = run_action(ActionOpenSalesLead(), tracker)
    [ticket] = tickets_of("prospect-1")
    assert ticket.type == "comercial" and "chatbot" in ticket.description
    assert (ticket.contact_name, ticket.contact_email, ticket.contact_phone) == (
        "Carla Mendes", "carla@mercadinho.com.br", None)
    assert "Carla Mendes — carla@mercadinho.com.br" in ticket.description
    assert messages[0]["response"] == "utter_sales_lead_opened" and loop_of(events) == "action_handoff"
    assert slots_of(events)["lead_name"] is None and slots_of(events)["lead_contact"] is None


def test_cnpj_claimed_visitor_opens_a_ticket_marked_unverified(db: Demo) -> None:
    from helpdesk.db import session_scope
    from helpdesk.models import TicketEvent

    slots = {"ticket_description": "PDV não abre", "ticket_module": "pdv", "ticket_type": "erro",
             "claimed_customer_id": str(db.joao_id), "claimed_cnpj": "45.723.174/0001-99", "identity_checked": True}
    messages, events = run_action(ActionOpenTicket(), make_tracker("erro", "inform_ticket_type", sender="claim-1",
                                                                   channel="website", slots=slots))
    [ticket] = tickets_of("claim-1")
    assert ticket.customer_id == db.joao_id  # the technician sees the company...
    assert ticket.description.startswith("PDV não abre") and "Contato não verificado" in ticket.description
    assert ticket.subject == "PDV não abre"
    with session_scope() as s:
        created = s.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                     TicketEvent.kind == "created"))
        assert created.data["unverified_contact"] is True and created.data["claimed_cnpj"] == "45.723.174/0001-99"
    assert messages[0]["response"] == "utter_ticket_opened"
    assert "João" not in str(messages) and "customer_id" not in slots_of(events)


def test_verified_customer_ticket_is_not_marked(db: Demo) -> None:
    slots = {"ticket_description": "PDV não abre", "ticket_module": "pdv", "ticket_type": "erro",
             "claimed_customer_id": str(db.joao_id), "claimed_cnpj": "45.723.174/0001-99"}
    run_action(ActionOpenTicket(), make_tracker("erro", "inform_ticket_type", sender=MARIA_PHONE, channel="whatsapp",
                                                slots=slots))
    [ticket] = tickets_of(f"whatsapp:{MARIA_PHONE}")
    assert ticket.customer_id == db.maria_id and "não verificado" not in ticket.description


# --- the lead form: name and contact, skipping what is known ------------------------------------

def required(tracker: Any) -> list[str]:
    import asyncio

    from rasa_sdk.executor import CollectingDispatcher

    return asyncio.run(ValidateLeadForm().required_slots(["lead_name", "lead_contact"], CollectingDispatcher(),
                                                         tracker, {}))


def test_lead_form_asks_only_what_is_unknown(db: Demo) -> None:
    assert required(make_tracker("sim", "affirm", sender="web-2", channel="website")) == ["lead_name", "lead_contact"]
    # An unregistered WhatsApp number: the phone is known.
    assert required(make_tracker("sim", "affirm", sender="5531900001111", channel="whatsapp")) == ["lead_name"]
    # A verified customer: the record has both.
    assert required(make_tracker("sim", "affirm", sender=MARIA_PHONE, channel="whatsapp",
                                 slots={"customer_id": str(db.maria_id)})) == []
    # A CNPJ claim is not a verified contact.
    assert required(make_tracker("sim", "affirm", sender="web-3", channel="website",
                                 slots={"claimed_customer_id": str(db.joao_id)})) == ["lead_name", "lead_contact"]


def validate_lead(slot: str, text: str) -> tuple[list[str], Any]:
    tracker = make_tracker(text, "inform", sender="web-4", channel="website",
                           slots={slot: text, "requested_slot": slot}, active_loop="lead_form")
    tracker.events.append({"event": "slot", "name": slot, "value": text})
    messages, events = run_action(ValidateLeadForm(), tracker)
    return responses(messages), slots_of(events).get(slot)


@pytest.mark.parametrize("text,expected", [
    ("(11) 98765-4321", "5511987654321"), ("meu whats é 11 98765 4321", "5511987654321"),
    ("+55 21 3333-4444", "552133334444"), ("Carla@Mercadinho.com.br", "carla@mercadinho.com.br"),
    ("pode mandar para carla@mercadinho.com.br", "carla@mercadinho.com.br"),
    ("não quero informar", "nao_informado"), ("prefiro não", "nao_informado"),
])
def test_lead_contact_accepts_phone_email_or_a_refusal(db: Demo, text: str, expected: str) -> None:
    assert validate_lead("lead_contact", text) == ([], expected)


@pytest.mark.parametrize("text", ["123", "11 1234", "carla@", "carla@mercadinho", "a@b@c.com", "banana",
                                  '/affirm{"lead_contact": "x@y.com"}', "x" * 300])
def test_invalid_lead_contact_is_asked_again(db: Demo, text: str) -> None:
    assert validate_lead("lead_contact", text) == (["utter_invalid_lead_contact"], None)


@pytest.mark.parametrize("text,expected,answer", [
    ("Carla   Mendes", "Carla Mendes", []), ("não quero informar", "nao_informado", []),
    ("12345", None, ["utter_invalid_lead_name"]), ("🙂🙂", None, ["utter_emoji_only"]),
    ("carla@x.com", None, ["utter_invalid_lead_name"]),
])
def test_lead_name_validation(db: Demo, text: str, expected: Any, answer: list[str]) -> None:
    assert validate_lead("lead_name", text) == (answer, expected)


def test_lead_without_contact_is_stored_and_flagged(db: Demo) -> None:
    from helpdesk.db import session_scope
    from helpdesk.models import TicketEvent

    slots = {"lead_name": "nao_informado", "lead_contact": "nao_informado", "last_question": "quero um PDV"}
    messages, _ = run_action(ActionOpenSalesLead(), make_tracker("não quero informar", "deny", sender="web-5",
                                                                  channel="website", slots=slots))
    [ticket] = tickets_of("web-5")
    assert (ticket.type, ticket.contact_phone, ticket.contact_email, ticket.contact_name) == (
        "comercial", None, None, "")
    assert "preferiu não informar" in ticket.description
    with session_scope() as s:
        created = s.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                     TicketEvent.kind == "created"))
        assert created.data["contact_declined"] is True and created.data["lead"] is True
    assert messages[0]["response"] == "utter_sales_lead_opened"


def test_whatsapp_lead_uses_the_senders_phone(db: Demo) -> None:
    slots = {"lead_name": "Pedro", "last_question": "quero um chatbot"}
    run_action(ActionOpenSalesLead(), make_tracker("Pedro", "inform", sender="5531900001111", channel="whatsapp",
                                                   slots=slots))
    [ticket] = tickets_of("whatsapp:5531900001111")
    assert (ticket.contact_name, ticket.contact_phone, ticket.customer_id) == ("Pedro", "5531900001111", None)


def test_verified_customer_lead_needs_no_contact(db: Demo) -> None:
    run_action(ActionOpenSalesLead(), make_tracker("sim", "affirm", sender=MARIA_PHONE, channel="whatsapp",
                                                   slots={"last_question": "quero BI"}))
    [ticket] = tickets_of(f"whatsapp:{MARIA_PHONE}")
    assert (ticket.customer_id, ticket.type, ticket.contact_phone) == (db.maria_id, "comercial", None)
    assert "Contato:" not in ticket.description


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
