"""What the channel knows about each open socket.io socket (``sid``).

Per socket: the client address it counts against, the ``session_id`` its connection URL named,
the session it was confirmed for (``session_confirm``), and whether it is a stock Rasa client
(no ``last_mid`` in its ``session_request``): those get Rasa's own message shapes. Everything is
forgotten when the socket disconnects. Pure: no Rasa, no socket.io import.

Rooms: a session's sockets listen on ``session:<id>`` (Atende's widget) or ``rasa:<id>`` (stock
clients, Rasa's shapes). The prefix keeps a session id out of socket.io's own per-socket rooms
(a sid never contains ``:``), so no conversation id names another socket's private room.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Set


def session_room(session_id: str) -> str:
    """The room of Atende-widget sockets confirmed for ``session_id``."""
    return f"session:{session_id}"


def plain_room(session_id: str) -> str:
    """The room of stock Rasa clients confirmed for ``session_id`` (they get Rasa's shapes)."""
    return f"rasa:{session_id}"


class SocketRegistry:
    def __init__(self) -> None:
        self.address: Dict[str, str] = {}  # sid -> client address (per-address limits)
        # sid -> the ``session_id`` its connection URL carried (what a proxy pins on). It only
        # names the session the socket will ask for; it grants nothing by itself.
        self.url_session: Dict[str, str] = {}
        self.session: Dict[str, str] = {}  # sid -> the session id it was confirmed for
        # Stock Rasa clients: session id -> their sids, and sid -> session id.
        self._plain_by_session: Dict[str, Set[str]] = {}
        self._plain_session: Dict[str, str] = {}

    def mark_plain(self, sid: str, session_id: Optional[str]) -> None:
        """Record that ``sid`` is a stock Rasa client bound to ``session_id`` (None: it is not)."""
        previous = self._plain_session.pop(sid, None)
        if previous is not None:
            sockets = self._plain_by_session.get(previous)
            if sockets is not None:
                sockets.discard(sid)
                if not sockets:
                    del self._plain_by_session[previous]
        if session_id is not None:
            self._plain_session[sid] = session_id
            self._plain_by_session.setdefault(session_id, set()).add(sid)

    def is_plain(self, sid: str) -> bool:
        return sid in self._plain_session

    def plain_sockets(self, session_id: str) -> List[str]:
        """The stock-client sockets listening to ``session_id``, sorted."""
        return sorted(self._plain_by_session.get(session_id, ()))

    def forget(self, sid: str) -> Optional[str]:
        """Drop everything about ``sid``; return the address it counted against, if any."""
        self.mark_plain(sid, None)
        self.session.pop(sid, None)
        self.url_session.pop(sid, None)
        return self.address.pop(sid, None)
