"""A Cloud API message status (sent, delivered, read, ...) → one inbox item (pure)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from .common import BSUID, ITEM_ID, NAME, UNKNOWN_ADDRESS, InboundItem, bounded
from .pricing import parse_pricing

MIN_EXPIRATION, MAX_EXPIRATION = 1_500_000_000, 4_102_444_800  # 2017 .. 2100
STATUS_VALUES = frozenset({"sent", "delivered", "read", "played", "failed", "deleted", "warning"})


def _expiration(conversation: Any) -> Optional[float]:
    """Meta's ``conversation.expiration_timestamp`` (UNIX seconds, a string); None when absent or
    not a plausible time (untrusted: a bad value never extends the window)."""
    raw = conversation.get("expiration_timestamp") if isinstance(conversation, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        return None
    text = str(raw).strip()
    if not text.isdigit() or len(text) > 11:
        return None
    value = float(text)
    return value if MIN_EXPIRATION <= value <= MAX_EXPIRATION else None


def status_item(st: Dict[str, Any]) -> InboundItem:
    wamid = bounded(st["id"], ITEM_ID, "status message id") or ""
    status = bounded(st["status"], NAME, "status value") or ""
    item_id = f"{wamid}#status:{status}"
    address = (bounded(st.get("recipient_id"), BSUID, "recipient_id")
               or bounded(st.get("recipient_user_id"), BSUID, "recipient_user_id") or UNKNOWN_ADDRESS)
    info = {
        "wamid": wamid,
        "status": status,
        "timestamp": st.get("timestamp"),
        "errors": list(st.get("errors") or []),
        "biz_opaque_callback_data": st.get("biz_opaque_callback_data"),
        "conversation_expires_at": _expiration(st.get("conversation")),
        # Meta's pricing object (parse/pricing.py: never rejects the status); None when absent
        "pricing": parse_pricing(st.get("pricing")),
        "recipient": address,
    }
    if st.get("type") == "call":
        return InboundItem(item_id, "status", address, "ignore", status=info, reason=f"call status {status!r}")
    if status not in STATUS_VALUES:
        return InboundItem(item_id, "status", address, "ignore", status=info, reason=f"unknown status {status!r}")
    return InboundItem(item_id, "status", address, "status", status=info)
