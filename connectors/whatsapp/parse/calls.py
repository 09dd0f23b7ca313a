"""A Cloud API call event → one inbox item (pure; the notification is validated)."""

from __future__ import annotations

import re
from typing import Any, Dict, Optional

from .common import INBOUND_CALL_TEXT, ITEM_ID, NAME, InboundItem, bounded
from .identity import identity

_DIGITS = re.compile(r"[0-9]{1,9}")


def _duration(value: Any) -> Optional[int]:
    """Seconds of a call (an int or a string of ASCII digits), None when absent or absurd."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9:
        return value
    return None


def call_item(value: Dict[str, Any], call: Dict[str, Any]) -> InboundItem:
    call_id = bounded(call["id"], ITEM_ID, "call id") or ""
    event = bounded(call["event"], NAME, "call event") or ""
    item_id = f"{call_id}#{event}"
    direction = call.get("direction")
    customer = call.get("from") if direction != "BUSINESS_INITIATED" else call.get("to")
    address, ident = identity(value, customer, call.get("from_user_id"))
    info = {
        "call_id": call_id,
        "event": event,
        "direction": direction,
        "status": call.get("status"),
        "duration": _duration(call.get("duration")),
    }
    wa = {"message_id": item_id, **ident, "type": "call"}
    if direction == "BUSINESS_INITIATED":
        return InboundItem(item_id, "call", address, "ignore", metadata={"whatsapp": wa}, call=info,
                           reason="business-initiated call: not an inbound call")
    if event not in ("connect", "terminate"):
        return InboundItem(item_id, "call", address, "ignore", metadata={"whatsapp": wa}, call=info,
                           reason=f"call event {event!r} is not handled")
    return InboundItem(item_id, "call", address, "rasa", text=INBOUND_CALL_TEXT, metadata={"whatsapp": wa},
                       call=info)
