"""Pure rules of the website chat: settings, limits, text hygiene and per-session state.

Nothing here imports Rasa or socket.io, so it is unit-testable and shared by the connector.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from atende_contract.attestation import METADATA_KEY as ATTESTATION_KEY
from atende_contract.attestation import AttestationConfigError, key_from_env
from atende_contract.text import MAX_MESSAGE_CHARS, neutralise
from atende_contract.webtoken import TokenConfigError, TokenPolicy

# User-facing texts (pt-BR).
MSG_TOO_LONG = (
    "Sua mensagem é longa demais ({size} caracteres). Envie no máximo {limit} caracteres "
    "por mensagem; se precisar, divida o texto em partes."
)
MSG_RATE = (
    "Você está enviando mensagens rápido demais. Aguarde alguns segundos e tente de novo; "
    "as últimas mensagens não foram enviadas."
)
MSG_EMPTY = "Não consegui ler sua mensagem. Tente escrever de novo."

DEV_ORIGIN_HOSTS = ("localhost", "127.0.0.1", "::1")
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
RATE_NOTICE_INTERVAL_S = 10.0  # at most one "too fast" notice per session in this window
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


# Metadata keys a client could use to claim an identity; the connector never forwards them.
IDENTITY_KEYS = frozenset(
    {"auth_token", "token", "customer_id", "customer", "sub", "email", "name", "cnpj", "phone",
     "user", "user_id", "identity", ATTESTATION_KEY}
)


class ConfigError(ValueError):
    """Raised for a website chat configuration that must not start."""


@dataclass(frozen=True)
class WebsiteSettings:
    """Typed settings of the website connector, read once from credentials and environment."""

    jwt_secret: Optional[str]
    allowed_origins: Tuple[str, ...]  # empty tuple = development default (localhost, any port)
    max_message_chars: int = MAX_MESSAGE_CHARS
    rate_burst: int = 5
    rate_per_second: float = 1.0
    # Per client address, whatever session ids it uses (a new session does not reset these).
    ip_rate_burst: int = 20
    ip_rate_per_second: float = 3.0
    max_sockets_per_ip: int = 30
    # Proxies (exact addresses) whose X-Forwarded-For names the client; empty = use the peer.
    trusted_proxies: Tuple[str, ...] = ()
    token_policy: TokenPolicy = field(default_factory=lambda: TokenPolicy(None))
    attestation_key: Optional[bytes] = None
    socketio_path: str = "/socket.io"
    session_persistence: bool = True
    metadata_key: str = "customData"
    allowed_payloads: Tuple[str, ...] = ("/request_human", "/greet")
    widget_dir: str = ""
    replay_buffer: int = 50
    max_sessions: int = 10000

    @classmethod
    def from_sources(
        cls, credentials: Optional[Mapping[str, Any]], environ: Optional[Mapping[str, str]] = None
    ) -> "WebsiteSettings":
        creds = dict(credentials or {})
        env = os.environ if environ is None else environ
        secret = creds.get("jwt_secret") or env.get("WEBCHAT_JWT_SECRET") or None
        origins_raw: Any = creds.get("allowed_origins")
        if origins_raw is None:
            origins_raw = env.get("WEBCHAT_ALLOWED_ORIGINS", "")
        origins = parse_origins(origins_raw)
        default_widget = os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "widget", "dist"
        )
        payloads = creds.get("allowed_payloads", env.get("WEBCHAT_ALLOWED_PAYLOADS"))
        if isinstance(payloads, str):
            payloads = [p.strip() for p in payloads.split(",") if p.strip()]
        try:
            policy = TokenPolicy.from_env(env, secret=str(secret) if secret else "")
            attestation_key = key_from_env(env)
        except (TokenConfigError, AttestationConfigError) as exc:
            raise ConfigError(str(exc)) from exc
        proxies = creds.get("trusted_proxies", env.get("WEBCHAT_TRUSTED_PROXIES", ""))
        if isinstance(proxies, str):
            proxies = [p.strip() for p in proxies.split(",") if p.strip()]
        settings = cls(
            jwt_secret=str(secret) if secret else None,
            allowed_origins=origins,
            max_message_chars=_positive_int(
                creds.get("max_message_chars", env.get("WEBCHAT_MAX_MESSAGE_CHARS", MAX_MESSAGE_CHARS)),
                "max_message_chars",
            ),
            ip_rate_burst=_positive_int(
                creds.get("ip_rate_burst", env.get("WEBCHAT_IP_RATE_BURST", 20)), "ip_rate_burst"
            ),
            ip_rate_per_second=float(
                creds.get("ip_rate_per_second", env.get("WEBCHAT_IP_RATE_PER_SECOND", 3.0))
            ),
            max_sockets_per_ip=_positive_int(
                creds.get("max_sockets_per_ip", env.get("WEBCHAT_MAX_SOCKETS_PER_IP", 30)),
                "max_sockets_per_ip",
            ),
            trusted_proxies=tuple(str(p) for p in proxies),
            token_policy=policy,
            attestation_key=attestation_key,
            rate_burst=_positive_int(
                creds.get("rate_burst", env.get("WEBCHAT_RATE_BURST", 5)), "rate_burst"
            ),
            rate_per_second=float(
                creds.get("rate_per_second", env.get("WEBCHAT_RATE_PER_SECOND", 1.0))
            ),
            socketio_path=str(creds.get("socketio_path", "/socket.io")),
            session_persistence=bool(creds.get("session_persistence", True)),
            metadata_key=str(creds.get("metadata_key", "customData")),
            allowed_payloads=tuple(payloads) if payloads else cls.allowed_payloads,
            widget_dir=str(creds.get("widget_dir") or env.get("WEBCHAT_WIDGET_DIR") or default_widget),
        )
        if settings.rate_per_second <= 0 or settings.ip_rate_per_second <= 0:
            raise ConfigError("rate_per_second and ip_rate_per_second must be > 0")
        if not settings.socketio_path.startswith("/"):
            raise ConfigError("socketio_path must start with '/'")
        return settings

    def origin_allowed(self, origin: Optional[str]) -> bool:
        """True when a browser on ``origin`` may open a socket (no Origin header: non-browser)."""
        if not origin:
            return True
        origin = origin.strip().rstrip("/").lower()
        if self.allowed_origins:
            return origin in self.allowed_origins
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and (parts.hostname or "") in DEV_ORIGIN_HOSTS


def parse_origins(raw: Any) -> Tuple[str, ...]:
    """Parse a list or comma-separated string of origins; "*" is refused."""
    if isinstance(raw, str):
        items = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, (list, tuple)):
        items = [str(part).strip() for part in raw]
    else:
        raise ConfigError("allowed_origins must be a list or a comma-separated string")
    origins: List[str] = []
    for item in items:
        if not item:
            continue
        if "*" in item:
            raise ConfigError(
                "allowed_origins must list exact origins (e.g. https://www.example.com); "
                "'*' is not accepted"
            )
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ConfigError(f"invalid origin {item!r}: expected scheme://host[:port]")
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return tuple(origins)


def _positive_int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be an integer") from exc
    if number <= 0:
        raise ConfigError(f"{name} must be > 0")
    return number


def neutralise_typed_text(text: str) -> str:
    """Remove leading slashes so typed text can never be read as an ``/intent`` command."""
    return neutralise(text)


def parse_metadata(raw: Any) -> Dict[str, Any]:
    """Client metadata as a dict (JSON strings accepted); anything else becomes {}."""
    if isinstance(raw, str):
        if len(raw) > 16384:
            return {}
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return dict(raw) if isinstance(raw, dict) else {}


def valid_session_id(value: Any) -> bool:
    return isinstance(value, str) and bool(SESSION_ID_RE.match(value))


def valid_client_id(value: Any) -> bool:
    return isinstance(value, str) and bool(CLIENT_ID_RE.match(value))


def new_session_id() -> str:
    return uuid.uuid4().hex


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


@dataclass
class SessionState:
    """What the connector remembers about one conversation (one Rasa sender id)."""

    bucket: TokenBucket
    replay_size: int
    offered_payloads: "OrderedDict[str, None]" = field(default_factory=OrderedDict)
    recent_client_ids: "OrderedDict[str, None]" = field(default_factory=OrderedDict)
    sent: Deque[Dict[str, Any]] = field(default_factory=deque)
    seq: int = 0
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

    def record_sent(self, epoch: str, message: Dict[str, Any]) -> Dict[str, Any]:
        """Stamp an outgoing bot message with a unique id and keep it for replay."""
        self.seq += 1
        stamped = dict(message)
        stamped["mid"] = f"{epoch}-{self.seq}"
        self.sent.append(stamped)
        while len(self.sent) > self.replay_size:
            self.sent.popleft()
        return stamped

    def replay_after(self, epoch: str, last_mid: Any) -> List[Dict[str, Any]]:
        """Messages sent after ``last_mid`` (all kept ones when the id is from another epoch)."""
        if not isinstance(last_mid, str) or "-" not in last_mid:
            return []
        mid_epoch, _, number = last_mid.rpartition("-")
        if mid_epoch != epoch or not number.isdigit():
            return []
        last = int(number)
        return [m for m in self.sent if int(m["mid"].rpartition("-")[2]) > last]


class SessionStore:
    """Bounded LRU of session states and the socket → session binding."""

    def __init__(self, settings: WebsiteSettings) -> None:
        self.settings = settings
        self.epoch = uuid.uuid4().hex[:10]
        self._sessions: "OrderedDict[str, SessionState]" = OrderedDict()
        self.socket_session: Dict[str, str] = {}

    def get(self, session_id: str) -> SessionState:
        state = self._sessions.get(session_id)
        if state is None:
            state = SessionState(
                bucket=TokenBucket(self.settings.rate_burst, self.settings.rate_per_second),
                replay_size=self.settings.replay_buffer,
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
