"""A new session (after `session_expiration_time` minutes without a customer message).

What carries over, and what does not:
- identity is looked up again (the WhatsApp phone may have been registered or removed, licenses
  change; a website token comes with the message that started the session). A CNPJ claim does not
  carry over: the visitor types it again if they want to open a ticket for the company;
- a hand-off in progress survives: when this conversation still has an open ticket, the hand-off
  loop is active again, so the customer's messages keep going onto the ticket and the technician's
  replies (EXTERNAL_ intents) keep being relayed;
- dialogue state does not: a yes/no question asked an hour ago (`awaiting`), a half-filled ticket,
  lead or rating form start over, so a customer coming back is greeted normally.
"""
from __future__ import annotations

import logging
from typing import Any, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from helpdesk.db import session_scope
from helpdesk.services import tickets

from .common import IDENTITY_SLOTS
from .identification import identify
from .privacy_notice import at_session_start

logger = logging.getLogger(__name__)

# Slots that simply carry over to the new session (identity is re-derived, see above).
CARRY_OVER = ("last_question",)


class ActionSessionStart(Action):
    def name(self) -> Text:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:

        events: list[EventType] = [SessionStarted()]
        metadata = tracker.get_slot("session_started_metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        previous = tracker.current_slot_values()
        for name in CARRY_OVER:
            if previous.get(name) is not None:
                events.append(SlotSet(name, previous[name]))
        if metadata:
            events.append(SlotSet("session_started_metadata", metadata))
        # Identity again, from scratch: only the attestation that came with the message starting
        # this session (its metadata), signed by the connector that verified the sender. Nothing
        # carries over; every later turn is checked again by the actions.
        blank = Tracker(tracker.sender_id, {name: None for name in IDENTITY_SLOTS}, tracker.latest_message,
                        tracker.events, False, None, {}, "action_listen")
        events += identify(blank, metadata=metadata, session_start=True)
        # LGPD: the website consent is recorded, the WhatsApp notice sent before the answer.
        at_session_start(dispatcher, tracker, metadata, events)
        active = None
        try:
            with session_scope() as s:
                ticket = tickets.active_for_conversation(s, tracker.sender_id)
                active = int(ticket.id) if ticket is not None else None
        except Exception:  # noqa: BLE001 - a new session must start even if the DB is down
            logger.exception("could not look up the active ticket of %s", tracker.sender_id)
            number = str(previous.get("active_ticket") or "").lstrip("#")
            active = int(number) if number.isdigit() else None
        if active is not None:
            events += [SlotSet("active_ticket", str(active)), ActiveLoop("action_handoff")]
        elif previous.get("active_ticket"):
            # Closed while the session was idle: keep the number for the EXTERNAL_ticket_closed notice.
            events.append(SlotSet("active_ticket", previous["active_ticket"]))
        events.append(ActionExecuted("action_listen"))
        return events
