"""Who is the customer?

- WhatsApp: the sender id is the phone number (only when the latest input channel is `whatsapp`).
- Website: only a JWT in `metadata.auth_token` whose HS256 signature verifies with
  WEBCHAT_JWT_SECRET (claims `sub` = customer id, or `email`; `exp`). Metadata alone never identifies.
- Otherwise: the visitor may type the CNPJ (validated by its check digits): an UNVERIFIED claim
  that only lets them open tickets for that company; or go on as a prospect.

Identity slots have custom mappings: only these functions set them, never a message payload.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from .common import (
    customer_id, extract_cnpj, is_payload, latest_channel, latest_metadata, record_outcome, slot_after,
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


def identify(tracker: Tracker, *, channel: str | None = None,
             metadata: dict[str, Any] | None = None) -> list[EventType]:
    """Slot events identifying the customer from the channel; [] when already known or unknown.

    Only VERIFIED identity is set here (WhatsApp phone on channel whatsapp, signed website token).
    Cheap on the hot path: once a conversation was checked, it is not looked up again unless a new
    website token arrives. `channel` / `metadata` default to the latest message's.
    """
    from helpdesk.db import session_scope
    from helpdesk.errors import DomainError
    from helpdesk.services import customers

    channel = channel if channel is not None else latest_channel(tracker)
    metadata = metadata if metadata is not None else latest_metadata(tracker)
    token = metadata.get("auth_token") if channel != "whatsapp" else None
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
    """The visitor typed a CNPJ: an UNVERIFIED claim (CNPJs are public).

    The claim lets the visitor open tickets for that company (marked as coming from an unverified
    contact); it never shows the company's name, tickets, licenses or products. The answer is the
    same whether the CNPJ is registered or not, so the chat cannot be used to learn who is a
    customer. Payloads (`/inform_cnpj{"cnpj": ...}`) are not accepted.
    """

    def name(self) -> Text:
        return "action_identify_by_cnpj"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        return claim_cnpj(dispatcher, tracker)


def is_bare_cnpj(text: str) -> bool:
    """A message that is only a CNPJ (what NLU may miss: digits and punctuation, no words)."""
    stripped = re.sub(r"[\s.\-/]", "", text or "")
    return len(stripped) == 14 and stripped.isdigit()


def claim_cnpj(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Record the CNPJ typed in the latest message as an unverified claim (see ActionIdentifyByCnpj)."""
    from helpdesk.cnpj import format_cnpj, normalize_cnpj
    from helpdesk.db import session_scope
    from helpdesk.errors import InvalidCNPJ
    from helpdesk.services import customers

    text = user_text(tracker)
    if is_payload(text):
        dispatcher.utter_message(response="utter_cnpj_type_it")
        return []
    raw = extract_cnpj(text)
    try:
        if raw is None:
            raise InvalidCNPJ("no CNPJ in the message")
        digits = normalize_cnpj(raw)
    except InvalidCNPJ:
        dispatcher.utter_message(response="utter_invalid_cnpj")
        return []
    events = identify(tracker)
    if slot_after(events, tracker, "customer_id") not in (None, ""):
        # Already verified by the channel: a typed CNPJ changes nothing.
        dispatcher.utter_message(response="utter_cnpj_already_verified")
        return events
    try:
        with session_scope() as s:
            customer = customers.find_by_cnpj(s, digits)
            claimed = str(customer.id) if customer is not None else None
    except Exception:  # noqa: BLE001 - the claim is a convenience; never break the chat
        logger.exception("CNPJ lookup failed for %s", tracker.sender_id)
        claimed = None
    dispatcher.utter_message(response="utter_cnpj_noted", cnpj=format_cnpj(digits))
    return events + [SlotSet("claimed_customer_id", claimed), SlotSet("claimed_cnpj", format_cnpj(digits)),
                     SlotSet("identity_checked", True)]


class ActionContinueAsProspect(Action):
    def name(self) -> Text:
        return "action_continue_as_prospect"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_prospect")
        record_outcome(tracker)
        return [SlotSet("identity_checked", True)]
