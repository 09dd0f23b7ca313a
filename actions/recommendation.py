"""Product recommendation for prospects and customers, and the sales lead."""
from __future__ import annotations

import logging
from typing import Any, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from .common import entity_values, fold, record_outcome, user_text
from .guard import bad_input_response
from .identification import identify, slot_after

logger = logging.getLogger(__name__)


def _words(text: str) -> set[str]:
    import re

    return {w for w in re.findall(r"[a-z0-9]+", fold(text)) if len(w) > 2}


def recommend(question: str, owned_products: list[str], owned_modules: list[str],
              named_products: list[str], named_modules: list[str]) -> list[str]:
    """Lines of a recommendation from the catalog (data in helpdesk), best first."""
    from helpdesk.db import session_scope
    from helpdesk.services import catalog

    words = _words(question)
    lines: list[str] = []
    with session_scope() as s:
        scored: list[tuple[float, Any]] = []
        for product in catalog.products(s):
            text = " ".join([product.name, product.description, product.audience]
                            + [f"{m.name} {m.description} {' '.join(m.synonyms or [])}" for m in product.modules])
            score = len(words & _words(text))
            if product.code in named_products or any(m.code in named_modules for m in product.modules):
                score += 10
            scored.append((score, product))
        scored.sort(key=lambda item: -item[0])
        for score, product in scored:
            missing = [m for m in product.modules if m.code not in owned_modules]
            if product.code in owned_products:
                if not missing:
                    continue
                wanted = [m for m in missing if m.code in named_modules] or missing
                extras = ", ".join(f"{m.name} ({m.description.rstrip('.')})" for m in wanted)
                lines.append(f"Você já usa o {product.name}. Para complementar: {extras}.")
            else:
                modules = ", ".join(m.name for m in product.modules)
                lines.append(f"*{product.name}*: {product.description} Indicado para {product.audience}. "
                             f"Módulos: {modules}.")
            if len(lines) == 2 or (lines and score == 0):
                break
    return lines


class ActionRecommendProduct(Action):
    def name(self) -> Text:
        return "action_recommend_product"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        from helpdesk.db import session_scope
        from helpdesk.services import customers

        question = user_text(tracker).strip()
        guard = bad_input_response(question)
        if guard:
            dispatcher.utter_message(response=guard)
            return []
        events = identify(tracker)
        cust = slot_after(events, tracker, "customer_id")
        owned_products: list[str] = []
        owned_modules: list[str] = []
        if cust:
            with session_scope() as s:
                customer = customers.get(s, int(cust))
                owned_products = customers.product_codes(customer)
                owned_modules = customers.module_codes(customer)
        lines = recommend(question, owned_products, owned_modules,
                          entity_values(tracker, "product"), entity_values(tracker, "module"))
        if not lines:
            lines = ["Você já tem todos os nossos produtos e módulos contratados. 😊"]
        dispatcher.utter_message(text="Pelo que você contou, minha sugestão:\n" + "\n".join(lines))
        dispatcher.utter_message(response="utter_offer_sales")
        record_outcome(tracker, cust, product_offered=True)
        return events + [SlotSet("awaiting", "offer_sales"), SlotSet("last_question", question)]


class ActionOpenSalesLead(Action):
    """The prospect accepted to talk to sales: a `comercial` ticket, then hand-off."""

    def name(self) -> Text:
        return "action_open_sales_lead"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        from helpdesk.errors import DomainError

        from .common import ticket_channel
        from .tickets import handoff_events, open_and_hand_off

        events = identify(tracker)
        cust = slot_after(events, tracker, "customer_id")
        interest = str(tracker.get_slot("last_question") or "").strip()
        try:
            number, _new = open_and_hand_off(
                tracker, cust_id=int(cust) if cust else None, channel=ticket_channel(tracker),
                type_="comercial", module=None,
                description=f"Interesse comercial: {interest}" if interest else "Interesse comercial")
        except DomainError as err:
            logger.warning("could not open a sales lead: %s", err)
            dispatcher.utter_message(response="utter_ticket_error")
            return events
        dispatcher.utter_message(response="utter_sales_lead_opened", ticket_number=str(number))
        record_outcome(tracker, cust, handed_off=True, product_offered=True)
        return events + handoff_events(number)
