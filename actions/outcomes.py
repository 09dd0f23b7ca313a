"""Conversation end: goodbye records the outcome (resolved by the bot when nothing was handed off)."""
from __future__ import annotations

from typing import Any, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from .common import record_outcome
from .guard import answered_from_docs


class ActionGoodbye(Action):
    def name(self) -> Text:
        return "action_goodbye"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        if tracker.get_slot("awaiting") == "anything_else" and answered_from_docs(tracker.events):
            record_outcome(tracker, resolved_by_bot=True)
        else:
            record_outcome(tracker)
        dispatcher.utter_message(response="utter_goodbye")
        return [SlotSet("awaiting", None)]
