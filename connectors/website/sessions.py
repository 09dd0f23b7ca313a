"""Website chat sessions: their ids, what the connector remembers of each, and who owns one.

A session id (``[A-Za-z0-9_-]{8,64}``) is the widget's key to its conversation; the Rasa
conversation id is ``web:<session id>`` (:mod:`atende_contract.channels`). A session that
carried a verified customer's messages is owned by that subject (``id:42``, ``email:...``): only
a socket proving the same subject joins it. After a restart (or on another replica) the owner is
recovered from the tracker store (:func:`stored_owner`). Pure: no Rasa, no socket.io import.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence
from urllib.parse import parse_qs

from atende_contract import attestation

from .history import ReplayBuffer
from .limits import TokenBucket
from .settings import WebsiteSettings

logger = logging.getLogger(__name__)

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
UNKNOWN_OWNER = "unknown"  # an owner that no subject matches (unreadable proof): fail closed


class BadSessionId(ValueError):
    """A malformed ``session_id`` in a connection URL."""


def valid_session_id(value: Any) -> bool:
    return isinstance(value, str) and bool(SESSION_ID_RE.match(value))


def new_session_id() -> str:
    return uuid.uuid4().hex


def session_id_in_url(environ: Mapping[str, Any]) -> Optional[str]:
    """The ``session_id`` of a socket's connection URL, None when absent.

    The widget puts it there so that a proxy in front of several Rasa servers pins the socket
    to the server its conversation lives on; it only names the session the socket will ask for
    and grants nothing. Raises :class:`BadSessionId` when malformed or repeated.
    """
    values = parse_qs(environ.get("QUERY_STRING") or "", keep_blank_values=True).get("session_id")
    if not values:
        return None
    if len(values) != 1 or not valid_session_id(values[0]):
        raise BadSessionId("bad_session_id")
    return values[0]


@dataclass
class SessionState:
    """What the connector remembers about one session (one Rasa conversation)."""

    bucket: TokenBucket
    history: ReplayBuffer
    offered_payloads: "OrderedDict[str, None]" = field(default_factory=OrderedDict)
    recent_client_ids: "OrderedDict[str, None]" = field(default_factory=OrderedDict)
    rate_notice_at: float = float("-inf")  # monotonic time of the last rate-limit notice
    # The verified subject whose messages this session carries (``id:42``), once a verified
    # message was accepted. A socket that cannot prove the same subject never joins it, so a
    # known session id gives neither the replay buffer nor the technician's replies.
    owner: Optional[str] = None

    def admits(self, subject: Optional[str]) -> bool:
        """May a socket proving ``subject`` (None: anonymous) speak for / listen to this session?"""
        return self.owner is None or self.owner == subject

    def remember_client_id(self, client_id: str) -> bool:
        """Record a client message id; False when it was already seen (a resend)."""
        if client_id in self.recent_client_ids:
            return False
        self.recent_client_ids[client_id] = None
        while len(self.recent_client_ids) > 500:
            self.recent_client_ids.popitem(last=False)
        return True

    def offer_payloads(self, payloads: Sequence[str]) -> None:
        for payload in payloads:
            self.offered_payloads[payload] = None
            self.offered_payloads.move_to_end(payload)
        while len(self.offered_payloads) > 100:
            self.offered_payloads.popitem(last=False)


class SessionStore:
    """Bounded LRU of session states, keyed by session id."""

    def __init__(self, settings: WebsiteSettings) -> None:
        self.settings = settings
        self.epoch = uuid.uuid4().hex[:10]  # this process's prefix of every ``mid``
        self._sessions: "OrderedDict[str, SessionState]" = OrderedDict()

    def get(self, session_id: str) -> SessionState:
        state = self._sessions.get(session_id)
        if state is None:
            state = SessionState(
                bucket=TokenBucket(self.settings.rate_burst, self.settings.rate_per_second),
                history=ReplayBuffer(self.epoch, self.settings.replay_buffer),
            )
            self._sessions[session_id] = state
            while len(self._sessions) > self.settings.max_sessions:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(session_id)
        return state

    def peek(self, session_id: str) -> Optional[SessionState]:
        return self._sessions.get(session_id)

    def payload_allowed(self, session_id: str, payload: str) -> bool:
        if payload in self.settings.allowed_payloads:
            return True
        state = self._sessions.get(session_id)
        return state is not None and payload in state.offered_payloads


async def stored_owner(tracker_store: Any, conversation_id: str) -> Optional[str]:
    """The subject of the last attested user message of a stored conversation, or None.

    ``tracker_store`` is the Rasa agent's (None: nothing stored, nothing owned). A tracker that
    cannot be read, or a proof without a string subject, gives :data:`UNKNOWN_OWNER`, which no
    socket proves: the session is never joined on a guess.
    """
    if tracker_store is None:
        return None
    try:
        tracker = await tracker_store.retrieve(conversation_id)
    except Exception:  # the owner check must never break the chat; fail closed
        logger.exception("website chat: could not read the tracker of a resumed session")
        return UNKNOWN_OWNER
    if tracker is None:
        return None
    for event in reversed(tracker.events):
        proof = (getattr(event, "metadata", None) or {}).get(attestation.METADATA_KEY)
        if getattr(event, "type_name", "") == "user" and isinstance(proof, dict):
            subject = proof.get("sub")
            return subject if isinstance(subject, str) else UNKNOWN_OWNER
    return None
