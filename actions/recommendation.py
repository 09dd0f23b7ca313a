"""Product recommendation for prospects and customers, and the sales lead."""
from __future__ import annotations

import logging
import re
from typing import Any, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.phones import normalize_phone
from helpdesk.services import catalog, customers
from helpdesk.services.customers import normalize_email

from .common import entity_values, fold, record_outcome, ticket_channel
from .guard import bad_input_response
from .identification import turn_identity
from .tickets import handoff_events, open_and_hand_off
from .turn import begin_turn, turn_of

logger = logging.getLogger(__name__)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", fold(text)) if len(w) > 2}


def recommend(question: str, owned_products: list[str], owned_modules: list[str],
              named_products: list[str], named_modules: list[str]) -> list[str]:
    """Lines of a recommendation from the catalog (data in helpdesk), best first."""

    words = _words(question)
    lines: list[str] = []
    with session_scope() as s:
        scored: list[tuple[float, Any]] = []
        for product in catalog.products(s):
            text = " ".join([product.name, product.description, product.audience]
                            + [f"{m.name} {m.description} {' '.join(m.synonyms or [])}" for m in product.modules])
            score = len(words & _words(text))
            if product.code in named_products or any(m.code in named_modules for m in product.modules):
                score += 10
            scored.append((score, product))
        scored.sort(key=lambda item: -item[0])
        for score, product in scored:
            missing = [m for m in product.modules if m.code not in owned_modules]
            if product.code in owned_products:
                if not missing:
                    continue
                wanted = [m for m in missing if m.code in named_modules] or missing
                extras = ", ".join(f"{m.name} ({m.description.rstrip('.')})" for m in wanted)
                lines.append(f"Você já usa o {product.name}. Para complementar: {extras}.")
            else:
                modules = ", ".join(m.name for m in product.modules)
                lines.append(f"*{product.name}*: {product.description} Indicado para {product.audience}. "
                             f"Módulos: {modules}.")
            if len(lines) == 2 or (lines and score == 0):
                break
    return lines


class ActionRecommendProduct(Action):
    def name(self) -> Text:
        return "action_recommend_product"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:

        turn = begin_turn(dispatcher, tracker)
        if turn is None:
            return []
        question, events, cust = turn.text, turn.events, turn.customer_id
        owned_products: list[str] = []
        owned_modules: list[str] = []
        if cust is not None:  # only a verified customer's licenses count (and show)
            with session_scope() as s:
                customer = customers.get(s, cust)
                owned_products = customers.product_codes(customer)
                owned_modules = customers.module_codes(customer)
        lines = recommend(question, owned_products, owned_modules,
                          entity_values(tracker, "product"), entity_values(tracker, "module"))
        if not lines:
            lines = ["Você já tem todos os nossos produtos e módulos contratados. 😊"]
        dispatcher.utter_message(text="Pelo que você contou, minha sugestão:\n" + "\n".join(lines))
        dispatcher.utter_message(response="utter_offer_sales")
        record_outcome(tracker, cust, product_offered=True)
        return events + [SlotSet("awaiting", "offer_sales"), SlotSet("last_question", question)]


DECLINED = "nao_informado"  # lead_name / lead_contact when the prospect prefers not to say
DECLINE_WORDS = ("nao quero", "prefiro nao", "nao vou", "nao informar", "sem contato", "nao tenho",
                 "nao precisa", "pular")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def declines(text: str) -> bool:
    key = fold(text).strip(" .!?")
    return key in ("nao", "n", "nao obrigado", "nao obrigada") or any(w in key for w in DECLINE_WORDS)


def parse_contact(text: str) -> tuple[str, str] | None:
    """("phone", canonical digits) or ("email", address) from what the prospect typed; None if neither."""

    value = text.strip()
    emails = re.findall(r"[^\s,;<>()]+@[^\s,;<>()]+", value)
    if len(emails) == 1:
        try:
            if EMAIL_RE.match(emails[0].rstrip(".")):
                return "email", normalize_email(emails[0].rstrip("."))
        except DomainError:
            return None
        return None
    candidate = re.sub(r"(?i)^(meu\s+)?(telefone|tel|celular|cel|whats(app)?|zap|fone|numero|número)\s*(é|e|:)?\s*",
                       "", value).strip()
    try:
        return "phone", normalize_phone(candidate)
    except DomainError:
        return None


def whatsapp_phone(tracker: Tracker) -> str | None:
    """The sender's phone on WhatsApp (already known: never asked again)."""

    identity = turn_identity(tracker)
    if identity is None or identity.channel != "whatsapp" or identity.kind != "phone":
        return None  # only the attested sender's phone, never the conversation id or a typed one
    try:
        return normalize_phone(identity.value)
    except DomainError:
        return None


class ValidateLeadForm(FormValidationAction):
    """The sales lead's name and contact, skipping what is already known.

    A verified customer needs neither (the record has them); on WhatsApp the phone is the sender's.
    "não quero informar" is accepted for either (the lead is then flagged `contact_declined`).
    """

    def name(self) -> Text:
        return "validate_lead_form"

    async def required_slots(self, domain_slots: list[Text], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[Text]:
        if turn_of(tracker).customer_id is not None:
            return []
        if whatsapp_phone(tracker):
            return ["lead_name"]
        return ["lead_name", "lead_contact"]

    def validate_lead_name(self, slot_value: Any, dispatcher: CollectingDispatcher,
                           tracker: Tracker, domain: DomainDict) -> dict[Text, Any]:
        text = str(slot_value or "").strip()
        if text and declines(text):
            return {"lead_name": DECLINED}
        bad = bad_input_response(text)
        letters = sum(ch.isalpha() for ch in text)
        if bad or text.startswith("/") or letters < 2 or len(text) > 120 or "@" in text:
            dispatcher.utter_message(response=bad if bad and bad != "utter_empty_message" else "utter_invalid_lead_name")
            return {"lead_name": None}
        return {"lead_name": " ".join(text.split())[:120]}

    def validate_lead_contact(self, slot_value: Any, dispatcher: CollectingDispatcher,
                              tracker: Tracker, domain: DomainDict) -> dict[Text, Any]:
        text = str(slot_value or "").strip()
        if text and declines(text):
            return {"lead_contact": DECLINED}
        contact = None if text.startswith("/") or len(text) > 200 else parse_contact(text)
        if contact is None:
            dispatcher.utter_message(response="utter_invalid_lead_contact")
            return {"lead_contact": None}
        return {"lead_contact": contact[1]}


LEAD_SLOTS = ("lead_name", "lead_contact")


class ActionOpenSalesLead(Action):
    """lead_form submitted: a `comercial` ticket with the prospect's name and contact, then hand-off."""

    def name(self) -> Text:
        return "action_open_sales_lead"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:

        turn = turn_of(tracker)
        events = turn.events + [SlotSet(slot, None) for slot in LEAD_SLOTS]
        interest = str(tracker.get_slot("last_question") or "").strip()
        description = f"Interesse comercial: {interest}" if interest else "Interesse comercial"
        name = str(tracker.get_slot("lead_name") or "").strip()
        name = "" if name == DECLINED else name
        phone = email = None
        flags: dict[str, Any] = {}
        if turn.customer_id is None:
            raw = str(tracker.get_slot("lead_contact") or "").strip()
            if raw and raw != DECLINED:
                contact = parse_contact(raw)
                if contact is not None:
                    phone, email = (contact[1], None) if contact[0] == "phone" else (None, contact[1])
            phone = phone or whatsapp_phone(tracker)
            contact_line = phone or email
            description += f"\nContato: {name or 'nome não informado'} — " + (
                contact_line if contact_line else "o visitante preferiu não informar telefone ou e-mail")
            flags["lead"] = True
            if not contact_line:
                flags["contact_declined"] = True
        try:
            number, _new = open_and_hand_off(
                tracker, turn, channel=ticket_channel(tracker), type_="comercial", module=None,
                description=description, name=name or None, contact_phone=phone,
                contact_email=email, flags=flags)
        except DomainError as err:
            logger.warning("could not open a sales lead: %s", err)
            dispatcher.utter_message(response="utter_ticket_error")
            return events
        dispatcher.utter_message(response="utter_sales_lead_opened", ticket_number=str(number))
        record_outcome(tracker, turn.customer_id, handed_off=True, product_offered=True)
        return events + handoff_events(number)
