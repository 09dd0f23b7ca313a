"""Conversation end: goodbye records the outcome (resolved by the bot when nothing was handed off)."""
from __future__ import annotations

from typing import Any, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from .common import record_outcome


def _answered_in_conversation(tracker: Tracker) -> bool:
    return any(e.get("event") == "slot" and e.get("name") == "awaiting" and e.get("value") == "resolved_check"
               for e in tracker.events)


class ActionGoodbye(Action):
    def name(self) -> Text:
        return "action_goodbye"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        if tracker.get_slot("awaiting") == "anything_else" and _answered_in_conversation(tracker):
            record_outcome(tracker, resolved_by_bot=True)
        else:
            record_outcome(tracker)
        dispatcher.utter_message(response="utter_goodbye")
        return [SlotSet("awaiting", None)]
