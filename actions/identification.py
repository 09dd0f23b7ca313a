"""Who is the customer?

- WhatsApp: the sender id is the phone number (only when the latest input channel is `whatsapp`).
- Website: only a JWT in `metadata.auth_token` whose HS256 signature verifies with
  WEBCHAT_JWT_SECRET (claims `sub` = customer id, or `email`; `exp`). Metadata alone never identifies.
- Otherwise: the customer may type the CNPJ (validated by its check digits), or go on as a prospect.

Identity slots have custom mappings: only these functions set them, never a message payload.
"""
from __future__ import annotations

import logging
from typing import Any, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from .common import (
    customer_id, extract_cnpj, is_payload, latest_channel, latest_metadata, record_outcome,
    user_text,
)

logger = logging.getLogger(__name__)


def _identity_events(customer: Any) -> list[EventType]:
    from helpdesk.services import customers

    return [
        SlotSet("customer_id", str(customer.id)),
        SlotSet("customer_name", customer.responsible_name.split()[0] if customer.responsible_name else None),
        SlotSet("customer_products", customers.product_codes(customer)),
        SlotSet("identity_checked", True),
    ]


def verify_web_token(token: str) -> dict[str, Any] | None:
    """Claims of a website token, or None when it is missing, forged or expired."""
    import jwt

    from helpdesk.config import get_settings

    secret = get_settings().webchat_jwt_secret
    if not token or not secret or not isinstance(token, str):
        return None
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.PyJWTError as err:
        logger.info("website token rejected: %s", err)
        return None
    return claims if isinstance(claims, dict) else None


def identify(tracker: Tracker) -> list[EventType]:
    """Slot events identifying the customer from the channel; [] when already known or unknown.

    Cheap on the hot path: once a conversation was checked, it is not looked up again unless a new
    website token arrives.
    """
    from helpdesk.db import session_scope
    from helpdesk.errors import DomainError
    from helpdesk.services import customers

    channel = latest_channel(tracker)
    token = latest_metadata(tracker).get("auth_token") if channel != "whatsapp" else None
    if customer_id(tracker) is not None and not token:
        return []
    if tracker.get_slot("identity_checked") and not token:
        return []
    customer = None
    try:
        with session_scope() as s:
            if channel == "whatsapp":
                try:
                    customer = customers.find_by_phone(s, tracker.sender_id)
                except DomainError:
                    customer = None
            elif token:
                claims = verify_web_token(token)
                if claims:
                    sub = claims.get("sub")
                    if sub is not None and str(sub).isdigit():
                        try:
                            customer = customers.get(s, int(sub))
                        except DomainError:
                            customer = None
                    if customer is None and (claims.get("email") or (sub and "@" in str(sub))):
                        customer = customers.find_by_email(s, str(claims.get("email") or sub))
            if customer is not None:
                if str(customer.id) == str(tracker.get_slot("customer_id")):
                    return []
                return _identity_events(customer)
    except Exception:  # noqa: BLE001 - identification must never break the conversation
        logger.exception("identification failed for %s", tracker.sender_id)
        return []
    return [SlotSet("identity_checked", True)]


def slot_after(events: list[EventType], tracker: Tracker, name: str) -> Any:
    for ev in reversed(events):
        if ev.get("event") == "slot" and ev.get("name") == name:
            return ev.get("value")
    return tracker.get_slot(name)


class ActionGreet(Action):
    def name(self) -> Text:
        return "action_greet"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        events = identify(tracker)
        name = slot_after(events, tracker, "customer_name")
        if name:
            dispatcher.utter_message(response="utter_greet_customer", customer_name=name)
        else:
            dispatcher.utter_message(response="utter_greet_visitor")
        return events


class ActionIdentifyByCnpj(Action):
    """The customer typed a CNPJ. Payloads (`/inform_cnpj{"cnpj": ...}`) are not accepted."""

    def name(self) -> Text:
        return "action_identify_by_cnpj"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        from helpdesk.db import session_scope
        from helpdesk.errors import InvalidCNPJ
        from helpdesk.services import customers

        text = user_text(tracker)
        if is_payload(text):
            dispatcher.utter_message(response="utter_cnpj_type_it")
            return []
        raw = extract_cnpj(text)
        if raw is None:
            dispatcher.utter_message(response="utter_invalid_cnpj")
            return []
        try:
            with session_scope() as s:
                customer = customers.find_by_cnpj(s, raw)
                if customer is None:
                    dispatcher.utter_message(response="utter_cnpj_not_found")
                    return [SlotSet("identity_checked", True), SlotSet("pending_request", None)]
                events = _identity_events(customer)
                dispatcher.utter_message(
                    response="utter_identified", legal_name=customer.trade_name or customer.legal_name,
                    customer_name=customer.responsible_name.split()[0])
        except InvalidCNPJ:
            dispatcher.utter_message(response="utter_invalid_cnpj")
            return []
        pending = str(tracker.get_slot("pending_request") or "")
        if pending.startswith("ticket_status"):
            from .status import report_status

            number = pending.partition(":")[2]
            events.append(SlotSet("pending_request", None))
            events += report_status(dispatcher, tracker, int(customer.id),
                                    int(number) if number.isdigit() else None)
        return events


class ActionContinueAsProspect(Action):
    def name(self) -> Text:
        return "action_continue_as_prospect"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_prospect")
        record_outcome(tracker)
        return [SlotSet("identity_checked", True), SlotSet("pending_request", None)]
