"""A Cloud API message status (sent, delivered, read, ...) → one inbox item (pure)."""

from __future__ import annotations

from typing import Any, Dict

from .common import BSUID, ITEM_ID, NAME, UNKNOWN_ADDRESS, InboundItem, bounded

STATUS_VALUES = frozenset({"sent", "delivered", "read", "played", "failed", "deleted", "warning"})


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
    }
    if st.get("type") == "call":
        return InboundItem(item_id, "status", address, "ignore", status=info, reason=f"call status {status!r}")
    if status not in STATUS_VALUES:
        return InboundItem(item_id, "status", address, "ignore", status=info, reason=f"unknown status {status!r}")
    return InboundItem(item_id, "status", address, "status", status=info)
