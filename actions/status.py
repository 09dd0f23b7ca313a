"""Ticket status. A customer sees only their own tickets (or the ones opened in this conversation)."""
from __future__ import annotations

from typing import Any, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from helpdesk.db import session_scope
from helpdesk.errors import NotFound
from helpdesk.models import STATUS_LABELS, TYPE_LABELS
from helpdesk.services import tickets

from .common import extract_ticket_number, first_entity, is_payload
from .turn import turn_of


def _type_label(code: str) -> str:

    return str(TYPE_LABELS.get(code, code))


def _status_label(code: str) -> str:

    return str(STATUS_LABELS.get(code, code))


def _utter_ticket(dispatcher: CollectingDispatcher, ticket: Any) -> None:
    dispatcher.utter_message(
        response="utter_ticket_status", ticket_number=str(ticket.id), ticket_type=_type_label(ticket.type),
        status=_status_label(ticket.status), opened_at=ticket.opened_at.strftime("%d/%m/%Y"))


def report_status(dispatcher: CollectingDispatcher, tracker: Tracker, cust_id: int | None,
                  number: int | None) -> list[EventType]:
    """Tell the status of ticket `number` (or the latest tickets) if it belongs to the customer."""

    with session_scope() as s:
        if number is not None:
            try:
                ticket = tickets.get(s, number)
            except NotFound:
                ticket = None
            own = ticket is not None and (
                (cust_id is not None and ticket.customer_id == cust_id)
                or (ticket.conversation_id is not None and ticket.conversation_id == tracker.sender_id))
            if not own:
                # Same answer whether the ticket does not exist or belongs to someone else.
                dispatcher.utter_message(response="utter_ticket_not_found", ticket_number=str(number))
                return []
            _utter_ticket(dispatcher, ticket)
            return []
        found: list[Any] = []
        if cust_id is not None:
            found = tickets.for_customer(s, cust_id, limit=5)
        else:
            active = tickets.active_for_conversation(s, tracker.sender_id)
            found = [active] if active is not None else []
        if not found:
            dispatcher.utter_message(response="utter_no_tickets")
            return []
        if len(found) > 1:
            dispatcher.utter_message(response="utter_ticket_list_header")
        for ticket in found:
            _utter_ticket(dispatcher, ticket)
    return []


class ActionTicketStatus(Action):
    """Status only for a VERIFIED customer; anyone may see the ticket opened in this conversation.

    A CNPJ claim does not count: the visitor is told how to verify (registered WhatsApp number, or
    logging in on the website).
    """

    def name(self) -> Text:
        return "action_ticket_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        turn = turn_of(tracker)
        text = turn.text
        number = None if is_payload(text) else extract_ticket_number(text)
        if number is None:
            ent = first_entity(tracker, "ticket_number")
            if ent and ent.lstrip("#").isdigit() and not is_payload(text):
                number = int(ent.lstrip("#"))
        if turn.customer_id is None:
            # An unverified visitor may ask about the ticket opened in this very conversation.

            with session_scope() as s:
                if number is None:
                    own = tickets.active_for_conversation(s, tracker.sender_id)
                else:
                    try:
                        own = tickets.get(s, number)
                    except NotFound:
                        own = None
                    if own is not None and own.conversation_id != tracker.sender_id:
                        own = None
                if own is not None:
                    _utter_ticket(dispatcher, own)
                    return turn.events
            dispatcher.utter_message(response="utter_verify_identity")
            return turn.events
        return turn.events + report_status(dispatcher, tracker, turn.customer_id, number)
