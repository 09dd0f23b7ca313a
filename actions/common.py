"""Pure tracker helpers shared by the actions: channels, slots, text extraction, outcomes.

The turn preamble (`Turn`, `turn_of`, `begin_turn`) lives in actions/turn.py, above the guard
and identification, so the import graph has no cycle: common <- identification <- guard <- turn.

Actions stay thin: the rules live in helpdesk/ (tickets, customers, outcomes) and knowledge/.
Every DB access is one short `session_scope()`; nothing heavy is loaded per call.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any, Iterable

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from atende_contract.channels import TICKET_CHANNEL_BY_INPUT
from atende_contract.text import MAX_MESSAGE_CHARS
from helpdesk.db import session_scope
from helpdesk.services import outcomes

logger = logging.getLogger(__name__)

# Verified identity (WhatsApp phone match, website signed token): only these see ticket status,
# licenses, the customer's name and products.
IDENTITY_SLOTS = ("customer_id", "customer_name", "customer_products", "identity_checked")
# Claimed identity: a CNPJ typed in the chat (CNPJs are public). It only lets the visitor open
# tickets for that company, marked as coming from an unverified contact.
CLAIM_SLOTS = ("claimed_customer_id", "claimed_cnpj")

MAX_TEXT = MAX_MESSAGE_CHARS  # longer messages are not sent to the knowledge base or stored as a ticket text

CNPJ_RE = re.compile(r"(?<!\d)(\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2})(?!\d)")
TICKET_RE = re.compile(r"(?:#|\b(?:chamado|ticket|protocolo|n[uú]mero|n[oº°]\.?)\s*#?\s*)(\d{1,9})\b|^\s*#?(\d{1,9})\s*$",
                       re.IGNORECASE)


def latest_channel(tracker: Tracker) -> str | None:
    """Input channel of the latest message that came from the customer (not an EXTERNAL_ trigger)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user" and event.get("input_channel"):
            return str(event["input_channel"])
    return None


def ticket_channel(tracker: Tracker) -> str:
    return TICKET_CHANNEL_BY_INPUT.get(latest_channel(tracker) or "", "web")


def user_text(tracker: Tracker) -> str:
    return str(tracker.latest_message.get("text") or "")


def is_payload(text: str) -> bool:
    """A `/intent{...}` message: a button press or something typed to look like one."""
    return text.lstrip().startswith("/")


def latest_metadata(tracker: Tracker) -> dict[str, Any]:
    meta = tracker.latest_message.get("metadata") or {}
    return meta if isinstance(meta, dict) else {}


def entity_values(tracker: Tracker, name: str) -> list[str]:
    out: list[str] = []
    for ent in tracker.latest_message.get("entities") or []:
        if ent.get("entity") == name and ent.get("value") not in (None, ""):
            out.append(str(ent["value"]))
    return out


def first_entity(tracker: Tracker, name: str) -> str | None:
    values = entity_values(tracker, name)
    return values[0] if values else None


def latest_intent(tracker: Tracker) -> str | None:
    return (tracker.latest_message.get("intent") or {}).get("name")


def as_id(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def customer_id(tracker: Tracker) -> int | None:
    """The VERIFIED customer's id (never a CNPJ claim)."""
    return as_id(tracker.get_slot("customer_id"))


def extract_cnpj(text: str) -> str | None:
    match = CNPJ_RE.search(text or "")
    if match:
        return match.group(1)
    digits = re.sub(r"\D", "", text or "")
    return digits if len(digits) == 14 else None


def extract_ticket_number(text: str) -> int | None:
    match = TICKET_RE.search(text or "")
    if not match:
        return None
    return int(match.group(1) or match.group(2))


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in text if not unicodedata.combining(c)).lower().strip()


def slots_reset(names: Iterable[str]) -> list[EventType]:
    return [SlotSet(name, None) for name in names]


def record_outcome(tracker: Tracker, customer: int | str | None = None, **flags: Any) -> None:
    """Record flags on this conversation's outcome; never fails the conversation."""

    cust = int(customer) if customer not in (None, "") else customer_id(tracker)
    try:
        with session_scope() as s:
            outcomes.record(s, tracker.sender_id, channel=ticket_channel(tracker),
                            customer_id=cust, **flags)
    except Exception:  # noqa: BLE001 - reporting must never break the conversation
        logger.exception("could not record the outcome of %s", tracker.sender_id)


def slot_after(events: list[EventType], tracker: Tracker, name: str) -> Any:
    """A slot's value once `events` (returned by this action so far) are applied."""
    for ev in reversed(events):
        if ev.get("event") == "slot" and ev.get("name") == name:
            return ev.get("value")
    return tracker.get_slot(name)
