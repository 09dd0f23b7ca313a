"""Hand-off: while a technician has the ticket, the bot stays silent.

`action_handoff` is a loop, started by the actions that open a ticket (ActiveLoop). While it is
active, RulePolicy runs it for every message:
- customer messages (text, media, calls) are added to the ticket; the bot says nothing;
- EXTERNAL_agent_reply (from the console) is relayed to the customer on their channel;
- EXTERNAL_ticket_closed, or finding the ticket no longer active, ends the loop; a rule then
  starts rating_form.
"""
from __future__ import annotations

import logging
from typing import Any, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.services import tickets

from .common import first_entity, latest_intent, latest_metadata, record_outcome, user_text
from .tickets import call_description

logger = logging.getLogger(__name__)

LOOP = "action_handoff"


def relay_agent_reply(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    text = (first_entity(tracker, "agent_text") or "").strip()
    if not text:
        return
    name = (first_entity(tracker, "agent_name") or "").strip()
    if name:
        # ticket_number rides with the response to the output channel: WhatsApp's template for a
        # reply outside the 24-hour window names the ticket (connectors/whatsapp/templates.py)
        number = str(tracker.get_slot("active_ticket") or "")
        dispatcher.utter_message(response="utter_agent_reply", agent_name=name, agent_text=text,
                                 **({"ticket_number": number} if number else {}))
    else:
        dispatcher.utter_message(text=text)


def closed_events(dispatcher: CollectingDispatcher, tracker: Tracker, number: str | None) -> list[EventType]:
    if number:
        dispatcher.utter_message(response="utter_ticket_closed", ticket_number=number.lstrip("#"))
    return [SlotSet("active_ticket", None), SlotSet("awaiting", None)]


def inbound_note(tracker: Tracker) -> str:
    """What a customer message becomes on the ticket."""

    intent = latest_intent(tracker)
    meta = latest_metadata(tracker)
    if intent == "inbound_call" and isinstance(meta.get("call"), dict):
        return call_description(meta["call"])
    if intent == "media_received":
        wa = meta.get("whatsapp") if isinstance(meta.get("whatsapp"), dict) else {}
        kind = str(wa.get("type") or "arquivo")
        media_id = str(wa.get("media_id") or "")
        return f"[{kind} recebido pelo WhatsApp{': ' + media_id if media_id else ''}]"
    return user_text(tracker).strip()


def _last_action_before_run(tracker: Tracker) -> str | None:
    for event in reversed(tracker.events):
        if event.get("event") == "action":
            return event.get("name")
    return None


class ActionHandoff(Action):
    def name(self) -> Text:
        return LOOP

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:

        if _last_action_before_run(tracker) != "action_listen":
            return []  # the loop was just activated by the action that opened the ticket
        intent = latest_intent(tracker)
        if intent == "EXTERNAL_agent_reply":
            relay_agent_reply(dispatcher, tracker)
            return []
        number = first_entity(tracker, "ticket_number") if intent == "EXTERNAL_ticket_closed" else None
        with session_scope() as s:
            active = tickets.active_for_conversation(s, tracker.sender_id)
            if active is not None and intent != "EXTERNAL_ticket_closed":
                note = inbound_note(tracker)
                if note:
                    author = str(tracker.get_slot("customer_name") or "cliente")
                    try:
                        tickets.add_message(s, active.id, author=author, text=note, direction="in")
                    except DomainError as err:
                        logger.warning("could not add a message to ticket %s: %s", active.id, err)
                return []
        number = number or tracker.get_slot("active_ticket")
        return closed_events(dispatcher, tracker, number) + [ActiveLoop(None)]


class ActionRelayAgentReply(Action):
    """A technician's reply arriving while the conversation is not in hand-off: relay it anyway."""

    def name(self) -> Text:
        return "action_relay_agent_reply"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        relay_agent_reply(dispatcher, tracker)
        return []


class ActionTicketClosed(Action):
    def name(self) -> Text:
        return "action_ticket_closed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        number = first_entity(tracker, "ticket_number") or tracker.get_slot("active_ticket")
        return closed_events(dispatcher, tracker, number)


class ActionRecordRating(Action):
    def name(self) -> Text:
        return "action_record_rating"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        value = str(tracker.get_slot("rating") or "")
        if value.isdigit() and 1 <= int(value) <= 5:
            record_outcome(tracker, rating=int(value))
            dispatcher.utter_message(response="utter_thanks_rating")
        else:
            dispatcher.utter_message(response="utter_rating_skipped")
        return [SlotSet("rating", None)]

