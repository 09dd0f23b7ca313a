"""``whatsapp_pricing``: Meta's pricing object of each message sent, kept by the status handler
(outbox.py ``apply_status``) in the transaction that applies the status.

One row per ``wamid``. The first status carrying pricing makes the row, with the message's time
(Meta's status ``timestamp`` when it is a plausible time, else the time it arrived) and the
conversation it belongs to (the first address of a customer who changed number, as Rasa's
conversation id); later statuses of the same message update the fields they state (Meta may send
a price on ``sent`` and again on ``delivered``), never the time or the conversation. The console
prices the rows (helpdesk/services/wa_cost.py).
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import sqlalchemy as sa

from ..identity import conversation_id
from .engine import aliases, insert_ignoring_duplicates, pricing

MIN_TIME = 1_500_000_000  # 2017
FUTURE_SLACK_S = 3600.0  # a status from the future beyond clock skew is not believed


def status_time(raw: Any, now: float) -> float:
    """The time of a status: Meta's ``timestamp`` (UNIX seconds, a string) when plausible, else ``now``."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        return now
    text = str(raw).strip()
    if not text.isdigit() or len(text) > 11:
        return now
    value = float(text)
    return value if MIN_TIME <= value <= now + FUTURE_SLACK_S else now


def note_pricing(conn: Any, status: Dict[str, Any], recipient: Optional[str]) -> bool:
    """Record the status's parsed pricing (parse/pricing.py) for its message; False when it has none."""
    fields = status.get("pricing")
    wamid = status.get("wamid")
    if not isinstance(fields, dict) or not wamid:
        return False
    address = recipient or status.get("recipient") or "unknown"
    now = time.time()
    first = conn.execute(sa.select(aliases.c.conversation).where(aliases.c.wa_id == address)).scalar() or address
    values = {k: fields.get(k) for k in ("billable", "category", "pricing_model", "pricing_type", "reason")}
    res = conn.execute(insert_ignoring_duplicates(conn.engine, pricing), {
        "wamid": wamid, "recipient": address, "conversation": conversation_id(first),
        "recorded_at": status_time(status.get("timestamp"), now), **values})
    if not res.rowcount:  # a later status of the same message: what it states replaces what was known
        stated = {k: v for k, v in values.items() if v is not None}
        if stated:
            conn.execute(sa.update(pricing).where(pricing.c.wamid == wamid).values(**stated))
    return True
