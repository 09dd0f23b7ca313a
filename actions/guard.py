"""The bad-input guard and the NLU fallback ("rephrase once, then offer a human")."""
from __future__ import annotations

import unicodedata
from typing import Any, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from .common import MAX_TEXT, user_text
from .identification import claim_cnpj, is_bare_cnpj


def is_emoji_only(text: str) -> bool:
    """True for text made only of symbols/emoji (no letters or digits)."""
    stripped = "".join(ch for ch in text if not ch.isspace())
    if not stripped:
        return False
    for ch in stripped:
        cat = unicodedata.category(ch)
        if cat[0] in ("L", "N"):
            return False
    return any(unicodedata.category(ch) == "So" for ch in stripped)


def bad_input_response(text: str) -> str | None:
    """The response for a message the bot cannot work with, or None when it is fine."""
    if not text or not text.strip():
        return "utter_empty_message"
    if len(text) > MAX_TEXT:
        return "utter_message_too_long"
    if is_emoji_only(text):
        return "utter_emoji_only"
    return None


def _previous_user_intent(tracker: Tracker) -> str | None:
    seen_latest = False
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        if not seen_latest:
            seen_latest = True
            continue
        return ((event.get("parse_data") or {}).get("intent") or {}).get("name")
    return None


class ActionFallback(Action):
    """Low NLU confidence: explain bad input, else ask to rephrase once, then offer a human."""

    def name(self) -> Text:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        guard = bad_input_response(user_text(tracker))
        if guard:
            dispatcher.utter_message(response=guard)
            return []
        text = user_text(tracker)
        if is_bare_cnpj(text):
            # Only a CNPJ (digits and punctuation) that NLU did not recognise: same as inform_cnpj.
            return claim_cnpj(dispatcher, tracker)
        if _previous_user_intent(tracker) in ("nlu_fallback", "nonsense"):
            dispatcher.utter_message(response="utter_offer_human")
            return [SlotSet("awaiting", "offer_ticket"),
                    SlotSet("ticket_description", None), SlotSet("ticket_type", None),
                    SlotSet("ticket_module", None)]
        dispatcher.utter_message(response="utter_rephrase")
        return []
