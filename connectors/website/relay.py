"""A socket.io client manager shared by the Rasa replicas through Redis (bot env).

Behind the proxy, a visitor's socket lives on one replica and a technician's reply (Rasa's HTTP
API, routed by the conversation id) may be produced on another: stock clients that put no
``session_id`` in their URL are pinned by address. With ``WEBCHAT_SOCKET_REDIS_URL`` set, the
channel's socket.io server uses :class:`SharedRooms`, python-socketio's Redis manager: an emit to
a session's room is published on the channel, and every replica delivers it to the sockets of
that room it holds (rooms stay per replica; only emits travel).

Changes to python-socketio's manager, both for a Redis that is down or slow:
- an emit to one socket of this replica (acks, ``session_confirm``, replays) is never published;
- a publish is bounded (:data:`PUBLISH_TIMEOUT_S`), never raises, and logs one warning a
  minute; after a failure, publishes are skipped for :data:`RETRY_AFTER_S` (an unreachable host
  does not slow every reply down): the channel keeps serving this replica's own sockets. The
  listener reconnects by itself (python-socketio's retries, up to a minute apart).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional

from socketio import AsyncRedisManager

from .settings import WebsiteSettings

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 2.0
WARN_INTERVAL_S = 60.0
RETRY_AFTER_S = 5.0


class SharedRooms(AsyncRedisManager):
    """python-socketio's Redis manager, bounded and quiet when Redis is unavailable."""

    name = "atende-redis"

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel, logger=logger,
                         redis_options={"socket_connect_timeout": CONNECT_TIMEOUT_S})
        self.publish_failures = 0
        self._warned_at = float("-inf")
        self._retry_at = float("-inf")

    async def emit(self, event: Any, data: Any, namespace: Any = None, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None, **kwargs: Any) -> Any:
        room = to or room
        if room is not None and self.is_connected(room, namespace or "/"):
            kwargs["ignore_queue"] = True  # one socket of this replica: nobody else holds it
        return await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid,
                                  callback=callback, **kwargs)

    async def _publish(self, data: Any) -> None:
        if time.monotonic() < self._retry_at:
            self.publish_failures += 1
            return
        try:
            if not self.connected:
                self._redis_connect()
            await asyncio.wait_for(self.redis.publish(self.channel, self.json.dumps(data)),
                                   PUBLISH_TIMEOUT_S)
        except Exception as exc:  # Redis down or slow: deliver locally only, never break the chat
            self.connected = False
            self.publish_failures += 1
            now = time.monotonic()
            self._retry_at = now + RETRY_AFTER_S
            if now - self._warned_at >= WARN_INTERVAL_S:
                self._warned_at = now
                logger.warning(
                    "website chat: cannot publish to Redis (%s): replies reach only the sockets "
                    "of this replica until it is back", type(exc).__name__)


def shared_manager(settings: WebsiteSettings) -> Optional[SharedRooms]:
    """The shared client manager when ``socket_redis_url`` is configured, else None."""
    if not settings.socket_redis_url:
        return None
    return SharedRooms(settings.socket_redis_url, settings.socket_redis_channel)


def install(sio: Any, manager: Optional[SharedRooms]) -> None:
    """Make ``manager`` the client manager of a socket.io server that has no client yet."""
    if manager is None:
        return
    if sio.manager_initialized:
        raise RuntimeError("the socket.io server already has clients")
    sio.manager = manager
    manager.set_server(sio)
