"""Tickets opened by the bot: the ticket form, sales leads and WhatsApp voice calls.

Opening a ticket starts the hand-off loop (actions/handoff.py) for this conversation.
"""
from __future__ import annotations

import logging
from typing import Any, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.services import identities, tickets

from .common import latest_channel, latest_metadata, record_outcome, ticket_channel
from .identification import ticket_identified_by
from .turn import Turn, turn_of

logger = logging.getLogger(__name__)

TICKET_SLOTS = ("ticket_description", "ticket_module", "ticket_type")
NO_MODULE = "nenhum"


def contact_name(tracker: Tracker, turn: Turn | None = None) -> str | None:
    """Who is writing: the verified customer's first name, else the WhatsApp profile name."""
    name = turn.slot("customer_name") if turn is not None and turn.customer_id is not None else None
    if name:
        return str(name)
    wa = latest_metadata(tracker).get("whatsapp")
    if isinstance(wa, dict) and wa.get("profile_name"):
        return str(wa["profile_name"])[:160]
    return None


def unverified_note(cnpj: str) -> str:
    return (f"[Contato não verificado: a empresa foi indicada pelo CNPJ {cnpj} digitado no chat. "
            "Confirme a identidade antes de passar dados do cadastro.]")


def open_and_hand_off(tracker: Tracker, turn: Turn, *, channel: str, type_: str, module: str | None,
                      description: str, name: str | None = None, contact_phone: str | None = None,
                      contact_email: str | None = None, flags: dict[str, Any] | None = None) -> tuple[int, bool]:
    """Open a ticket for this conversation (or reuse the active one). Returns (number, is_new).

    The ticket belongs to the verified customer, else to the company of a CNPJ claim, marked as
    coming from an unverified contact (a note in the description, `unverified_contact` on the
    ticket's `created` event). The ticket records which identity identified it (`identified_by`).
    """

    flags = dict(flags or {})
    claim = turn.unverified_claim
    identified_by = ticket_identified_by(tracker, verified=turn.customer_id is not None, claimed=bool(claim))
    if claim:
        description = f"{description}\n\n{unverified_note(claim)}"
        flags.update(unverified_contact=True, claimed_cnpj=claim)
    with session_scope() as s:
        active = tickets.active_for_conversation(s, tracker.sender_id)
        if active is not None:
            return int(active.id), False
        ticket = tickets.open_ticket(
            s, customer_id=turn.ticket_customer_id, channel=channel, type=type_,
            module=None if module in (None, "", NO_MODULE) else module,
            description=description, conversation_id=tracker.sender_id, actor="bot",
            contact_name=name or contact_name(tracker, turn), contact_phone=contact_phone,
            contact_email=contact_email, flags=flags or None)
        identities.set_identified_by(s, ticket.id, identified_by)
        return int(ticket.id), True


def handoff_events(number: int) -> list[EventType]:
    return [SlotSet(name, None) for name in TICKET_SLOTS] + [
        SlotSet("awaiting", None), SlotSet("active_ticket", str(number)), ActiveLoop("action_handoff")]


class ActionOpenTicket(Action):
    """Submit of ticket_form: open the ticket, tell its number, hand off to a technician."""

    def name(self) -> Text:
        return "action_open_ticket"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:

        turn = turn_of(tracker)
        events = turn.events
        try:
            number, new = open_and_hand_off(
                tracker, turn, channel=ticket_channel(tracker),
                type_=str(tracker.get_slot("ticket_type") or "outro"),
                module=tracker.get_slot("ticket_module"),
                description=str(tracker.get_slot("ticket_description") or tracker.get_slot("last_question")
                                or "Atendimento solicitado pelo chat"))
        except DomainError as err:
            logger.warning("could not open a ticket: %s", err)
            dispatcher.utter_message(response="utter_ticket_error")
            return events + [SlotSet(name, None) for name in TICKET_SLOTS]
        dispatcher.utter_message(response="utter_ticket_opened" if new else "utter_ticket_already_open",
                                 ticket_number=str(number))
        record_outcome(tracker, turn.customer_id, handed_off=True)
        return events + handoff_events(number)


def call_description(call: dict[str, Any]) -> str:
    if call.get("missed"):
        return "Ligação perdida pelo WhatsApp."
    duration = call.get("duration")
    if isinstance(duration, (int, float)) and duration > 0:
        minutes, seconds = divmod(int(duration), 60)
        return f"Ligação atendida pelo WhatsApp (duração {minutes} min {seconds:02d} s)."
    return "Ligação recebida pelo WhatsApp."


def call_ticket_type(tracker: Tracker) -> str:
    """Type by context: the last thing the customer said before calling."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent == "report_problem":
            return "erro"
        if intent == "ask_question":
            return "duvida"
        if intent == "ask_product_recommendation":
            return "comercial"
    return "outro"


class ActionInboundCall(Action):
    """`/inbound_call` from the WhatsApp connector: open a ticket and tell the customer its number."""

    def name(self) -> Text:
        return "action_inbound_call"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:

        call = latest_metadata(tracker).get("call")
        if latest_channel(tracker) != "whatsapp" or not isinstance(call, dict):
            # Only the WhatsApp connector sends calls; anything else is treated as not understood.
            dispatcher.utter_message(response="utter_rephrase")
            return []
        turn = turn_of(tracker)
        events = turn.events
        try:
            number, new = open_and_hand_off(
                tracker, turn, channel="phone",
                type_=call_ticket_type(tracker), module=tracker.get_slot("ticket_module"),
                description=call_description(call))
        except DomainError as err:
            logger.warning("could not open a call ticket: %s", err)
            dispatcher.utter_message(response="utter_ticket_error")
            return events
        if new:
            dispatcher.utter_message(
                response="utter_missed_call_ticket_opened" if call.get("missed") else "utter_call_ticket_opened",
                ticket_number=str(number))
        else:
            dispatcher.utter_message(response="utter_ticket_already_open", ticket_number=str(number))
        record_outcome(tracker, turn.customer_id, handed_off=True)
        return events + handoff_events(number)


