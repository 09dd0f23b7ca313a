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


UNCLEAR_INTENTS = ("nlu_fallback", "nonsense")


def answered_from_docs(events: list[dict[str, Any]]) -> bool:
    """True when `events` hold a documentation answer: action_answer_question (also reached from
    action_question_or_fallback) sets `awaiting` to "resolved_check" when, and only when, it sent a
    grounded answer and asked "Isso resolveu?"."""
    return any(e.get("event") == "slot" and e.get("name") == "awaiting" and e.get("value") == "resolved_check"
               for e in events)


def previous_message_was_unclear(tracker: Tracker) -> bool:
    """True when the customer's message before the latest one was not understood (an NLU fallback
    or nonsense) and was not answered from the docs: the second such message in a row gets a human.
    An unsure NLU intent that the docs answered was understood after all, so it does not count."""
    users = [i for i, e in enumerate(tracker.events) if e.get("event") == "user"]
    if len(users) < 2:
        return False
    previous = tracker.events[users[-2]]
    intent = ((previous.get("parse_data") or {}).get("intent") or {}).get("name")
    return intent in UNCLEAR_INTENTS and not answered_from_docs(tracker.events[users[-2] + 1:users[-1]])


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
        if previous_message_was_unclear(tracker):
            dispatcher.utter_message(response="utter_offer_human")
            return [SlotSet("awaiting", "offer_ticket"),
                    SlotSet("ticket_description", None), SlotSet("ticket_type", None),
                    SlotSet("ticket_module", None)]
        dispatcher.utter_message(response="utter_rephrase")
        return []
