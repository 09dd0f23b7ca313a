"""Abuse limits of the website chat: message rate per session and per client address, sockets
per address, and which address a socket counts against (trusted proxies).

A new session id resets none of the per-address limits. Everything is bounded in memory (LRU).
Pure: no Rasa, no socket.io import.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Sequence

from .settings import WebsiteSettings

RATE_NOTICE_INTERVAL_S = 10.0  # at most one "too fast" notice per session in this window


class TokenBucket:
    """Burst of ``capacity`` messages, refilled at ``rate`` per second."""

    def __init__(self, capacity: int, rate: float) -> None:
        self.capacity = float(capacity)
        self.rate = rate
        self.tokens = float(capacity)
        self.updated = time.monotonic()

    def take(self, now: Optional[float] = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class AddressLimits:
    """Per client address: a message bucket and a socket count, bounded in memory (LRU)."""

    def __init__(self, settings: WebsiteSettings, max_addresses: int = 50000) -> None:
        self.settings = settings
        self.max_addresses = max_addresses
        self._buckets: "OrderedDict[str, TokenBucket]" = OrderedDict()
        self.sockets: Dict[str, int] = {}

    def take(self, address: str) -> bool:
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = TokenBucket(self.settings.ip_rate_burst, self.settings.ip_rate_per_second)
            self._buckets[address] = bucket
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(address)
        return bucket.take()

    def open_socket(self, address: str) -> bool:
        count = self.sockets.get(address, 0)
        if count >= self.settings.max_sockets_per_ip:
            return False
        self.sockets[address] = count + 1
        return True

    def close_socket(self, address: str) -> None:
        count = self.sockets.get(address, 0) - 1
        if count > 0:
            self.sockets[address] = count
        else:
            self.sockets.pop(address, None)


def client_address(environ: Mapping[str, Any], trusted_proxies: Sequence[str]) -> str:
    """The client's address: the peer, or the last untrusted hop of X-Forwarded-For behind a
    trusted proxy (a client cannot pick its own bucket by writing the header)."""
    request = environ.get("sanic.request")
    # engine.io's Sanic driver writes a fixed REMOTE_ADDR; the Sanic request knows the real peer.
    peer = str(getattr(request, "ip", None) or environ.get("REMOTE_ADDR") or "?")
    if peer not in trusted_proxies:
        return peer
    hops = [h.strip() for h in str(environ.get("HTTP_X_FORWARDED_FOR") or "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop[:64]
    return peer
