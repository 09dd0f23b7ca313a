"""WhatsApp's 24-hour customer-service window: the one rule both environments apply (pure).

Meta accepts a free-form message only while the customer-service window is open: for 24 hours
after the customer's last message. A status may also carry ``conversation.expiration_timestamp``
(the conversation Meta opened for that message); a later one extends what the store knows.
The window is open until the later of the two; with neither, it is closed. The bot env (the
WhatsApp connector's outbound path) and the app env (the console's "Responder" tab) both call
``window_until`` on what they read from the tables named in atende_contract.tables.
"""

from __future__ import annotations

from typing import Optional

WINDOW_S = 24 * 3600


def window_until(last_inbound_at: Optional[float], expires_at: Optional[float]) -> Optional[float]:
    """UNIX time until which free-form messages may be sent; None when nothing opened a window."""
    ends = [t for t in ((last_inbound_at + WINDOW_S) if last_inbound_at is not None else None, expires_at)
            if t is not None]
    return max(ends) if ends else None


def is_open(last_inbound_at: Optional[float], expires_at: Optional[float], now: float) -> bool:
    until = window_until(last_inbound_at, expires_at)
    return until is not None and now < until
