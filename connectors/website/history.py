"""Replay of missed bot messages after a reconnect.

Every bot message a session is sent gets a ``mid`` of the form ``<epoch>-<n>``: the epoch is
made once per Rasa process (a restart starts a new one), ``n`` counts the session's messages.
The last ``size`` messages are kept; a widget that reconnects with ``last_mid`` gets those after
it. A ``last_mid`` of another epoch (or malformed) gets nothing: the widget keeps its own
transcript, and the conversation itself is in the tracker store. Pure: no Rasa import.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Deque, Dict, List


class ReplayBuffer:
    """The last ``size`` bot messages of one session, stamped with their ``mid``."""

    def __init__(self, epoch: str, size: int) -> None:
        self.epoch = epoch
        self.size = size
        self.seq = 0
        self.sent: Deque[Dict[str, Any]] = deque()

    def record(self, message: Dict[str, Any]) -> Dict[str, Any]:
        """A copy of ``message`` stamped with the next ``mid``, kept for replay."""
        self.seq += 1
        stamped = dict(message)
        stamped["mid"] = f"{self.epoch}-{self.seq}"
        self.sent.append(stamped)
        while len(self.sent) > self.size:
            self.sent.popleft()
        return stamped

    def after(self, last_mid: Any) -> List[Dict[str, Any]]:
        """Kept messages sent after ``last_mid``; none for an id of another epoch or malformed."""
        if not isinstance(last_mid, str) or "-" not in last_mid:
            return []
        mid_epoch, _, number = last_mid.rpartition("-")
        # ASCII digits only, bounded: "²".isdigit() is true, and int() of it raises.
        if mid_epoch != self.epoch or not (number.isascii() and number.isdigit()) or len(number) > 18:
            return []
        last = int(number)
        return [m for m in self.sent if int(m["mid"].rpartition("-")[2]) > last]
