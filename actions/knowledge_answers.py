"""Answers from the knowledge base, with their sources, and the "Isso resolveu?" loop."""
from __future__ import annotations

import logging
from typing import Any, Callable, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from helpdesk.db import session_scope
from helpdesk.services import outcomes

from .common import entity_values, first_entity, latest_channel, latest_intent, record_outcome
from .turn import Turn, begin_turn

logger = logging.getLogger(__name__)

_answer_fn: Callable[..., Any] | None = None


def answer_function() -> Callable[..., Any]:
    """`knowledge.answer`, imported once (it loads its index and model once per process)."""
    global _answer_fn
    if _answer_fn is None:
        # Imported on first use on purpose: `knowledge` pulls torch and sentence-transformers
        # (seconds of import), which the action server's other actions never need.
        from knowledge import answer as knowledge_answer

        _answer_fn = knowledge_answer
    return _answer_fn


def render_sources_text(sources: list[dict[str, str]]) -> str:
    """"Fontes:" then one numbered line per source, "[1] Título — URL", in the order of the
    answer's citations ([1], [2], ...), so a WhatsApp reader can match them."""
    lines = ["Fontes:"]
    for n, src in enumerate(sources, start=1):
        title = str(src.get("title") or src.get("url") or "").strip()
        url = str(src.get("url") or "").strip()
        lines.append(f"[{n}] {title} — {url}" if url and url != title else f"[{n}] {title}")
    return "\n".join(lines)


def ordered_products(tracker: Tracker, turn: Turn) -> list[str] | None:
    """The (verified) customer's products first, then a product named in the message."""
    products = turn.products
    for named in entity_values(tracker, "product"):
        if named not in products:
            products.append(named)
    return products or None


class ActionAnswerQuestion(Action):
    """Answer `ask_question` / `report_problem` from the docs.

    Grounded answer → text + sources + "Isso resolveu?". Not grounded → offer a ticket; for a
    reported problem the ticket form starts at once, already filled from the message.
    """

    def name(self) -> Text:
        return "action_answer_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        turn = begin_turn(dispatcher, tracker)
        if turn is None:
            return []
        question, events = turn.text, turn.events
        intent = latest_intent(tracker)
        module = first_entity(tracker, "module")
        prefill: list[EventType] = [
            SlotSet("last_question", question),
            SlotSet("ticket_description", question),
            SlotSet("ticket_module", module),
            SlotSet("ticket_type", "erro" if intent == "report_problem" else "duvida"),
        ]
        products = ordered_products(tracker, turn)
        try:
            # the conversation id bounds this conversation's LLM calls per hour (extractive past it)
            result = answer_function()(question, products, conversation_id=tracker.sender_id)
            grounded = bool(result.grounded)
            text = str(result.answer or "").strip()
            sources = [{"title": str(s.title), "url": str(s.url)} for s in result.sources]
        except Exception:  # noqa: BLE001 - the knowledge base being down must not break the chat
            logger.exception("knowledge.answer failed")
            grounded, text, sources = False, "", []
        self._log(tracker, question, answered=bool(text) and grounded, grounded=grounded,
                  product=(products or [None])[0], customer=turn.customer_id)
        if grounded and text:
            body = text + ("\n\n" + render_sources_text(sources) if sources else "")
            if latest_channel(tracker) == "whatsapp" or not sources:
                dispatcher.utter_message(text=body)
            else:
                dispatcher.utter_message(text=body, json_message={"sources": sources})
            dispatcher.utter_message(response="utter_did_it_help")
            return events + prefill + [SlotSet("awaiting", "resolved_check")]
        if intent == "report_problem":
            return events + prefill + [SlotSet("awaiting", None), FollowupAction("ticket_form")]
        dispatcher.utter_message(response="utter_no_answer")
        return events + prefill + [SlotSet("awaiting", "offer_ticket")]

    @staticmethod
    def _log(tracker: Tracker, question: str, *, answered: bool, grounded: bool, product: str | None,
             customer: int | None) -> None:

        try:
            with session_scope() as s:
                outcomes.log_question(s, tracker.sender_id, question, answered=answered,
                                      grounded=grounded, product=product)
        except Exception:  # noqa: BLE001
            logger.exception("could not log the question")
        record_outcome(tracker, customer, answered_from_docs=answered)


class ActionMarkResolved(Action):
    def name(self) -> Text:
        return "action_mark_resolved"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        record_outcome(tracker, resolved_by_bot=True)
        dispatcher.utter_message(response="utter_glad")
        dispatcher.utter_message(response="utter_anything_else")
        return [SlotSet("awaiting", "anything_else")]


class ActionOfferSupport(Action):
    def name(self) -> Text:
        return "action_offer_support"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        record_outcome(tracker, resolved_by_bot=False)
        dispatcher.utter_message(response="utter_offer_support")
        return [SlotSet("awaiting", "offer_ticket")]


class ActionAskAnythingElse(Action):
    def name(self) -> Text:
        return "action_ask_anything_else"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_anything_else")
        return [SlotSet("awaiting", "anything_else")]


class ActionAskMore(Action):
    def name(self) -> Text:
        return "action_ask_more"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_ask_more")
        return [SlotSet("awaiting", None)]
