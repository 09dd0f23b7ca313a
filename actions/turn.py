"""The turn preamble of the actions that work on the customer's text.

`begin_turn` answers a message the bot cannot work with; `turn_of` identifies the customer again
for this turn (actions/identification.py) and carries the slot events that do it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from .common import as_id, slot_after, user_text
from .guard import bad_input_response
from .identification import identify


@dataclass
class Turn:
    """What an action knows about the customer's latest message, after identification."""

    tracker: Tracker
    text: str
    events: list[EventType] = field(default_factory=list)

    def slot(self, name: str) -> Any:
        return slot_after(self.events, self.tracker, name)

    @property
    def customer_id(self) -> int | None:
        """Verified customer (WhatsApp phone or website token)."""
        return as_id(self.slot("customer_id"))

    @property
    def claimed_customer_id(self) -> int | None:
        """Company named by a CNPJ typed in the chat (unverified), when not verified."""
        return None if self.customer_id is not None else as_id(self.slot("claimed_customer_id"))

    @property
    def ticket_customer_id(self) -> int | None:
        """The company a ticket opened now belongs to: verified, else claimed."""
        return self.customer_id if self.customer_id is not None else self.claimed_customer_id

    @property
    def unverified_claim(self) -> str | None:
        """The CNPJ claimed in the chat when the identity is not verified, else None."""
        if self.customer_id is not None:
            return None
        return self.slot("claimed_cnpj") or None

    @property
    def products(self) -> list[str]:
        return list(self.slot("customer_products") or []) if self.customer_id is not None else []


def turn_of(tracker: Tracker) -> Turn:
    """The latest message's text and the customer's identity (slot events in `Turn.events`)."""
    return Turn(tracker, user_text(tracker).strip(), identify(tracker))


def begin_turn(dispatcher: CollectingDispatcher, tracker: Tracker) -> Turn | None:
    """The preamble of the actions that work on the customer's text.

    Answers a message the bot cannot work with (empty, too long, emoji only) and returns None;
    otherwise identifies the customer (see `turn_of`).
    """
    bad = bad_input_response(user_text(tracker).strip())
    if bad:
        dispatcher.utter_message(response=bad)
        return None
    return turn_of(tracker)
