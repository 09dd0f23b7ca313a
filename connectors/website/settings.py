"""Typed settings of the website chat, read once when the channel is built (never at import).

:meth:`WebsiteSettings.from_sources` reads the channel's entry in credentials.yml first, then
the environment (``WEBCHAT_*``, the token policy's and the attestation key's variables); a value
that must not start the server raises :class:`ConfigError`. The keys are listed in
docs/website.md ("Configuration").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple

from atende_contract import consent
from atende_contract.attestation import AttestationConfigError, key_from_env
from atende_contract.text import MAX_MESSAGE_CHARS
from atende_contract.webtoken import TokenConfigError, TokenPolicy

from .cors import OriginsError, origin_allowed, parse_origins

# The repository's widget build (connectors/website/settings.py -> the repository root).
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_WIDGET_DIR = os.path.join(_REPO, "widget", "dist")


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
    # LGPD consent (atende_contract.consent): the configured policy URL (the widget's default link,
    # and the only non-https one a consent may name), and the LLM provider the card must name.
    policy_url: Optional[str] = None
    llm_provider: Optional[str] = None
    # Several replicas: the Redis that carries socket.io emits between them (None: this process
    # only, as in `make run`), and the pub/sub channel they share (connectors/website/relay.py).
    socket_redis_url: Optional[str] = None
    socket_redis_channel: str = "atende-webchat"

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
        payloads = creds.get("allowed_payloads", env.get("WEBCHAT_ALLOWED_PAYLOADS"))
        if isinstance(payloads, str):
            payloads = [p.strip() for p in payloads.split(",") if p.strip()]
        try:
            origins = parse_origins(origins_raw)
            policy = TokenPolicy.from_env(env, secret=str(secret) if secret else "")
            attestation_key = key_from_env(env)
        except (OriginsError, TokenConfigError, AttestationConfigError) as exc:
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
            ip_rate_per_second=_number(
                creds.get("ip_rate_per_second", env.get("WEBCHAT_IP_RATE_PER_SECOND", 3.0)),
                "ip_rate_per_second",
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
            rate_per_second=_number(
                creds.get("rate_per_second", env.get("WEBCHAT_RATE_PER_SECOND", 1.0)),
                "rate_per_second",
            ),
            socketio_path=str(creds.get("socketio_path", "/socket.io")),
            session_persistence=bool(creds.get("session_persistence", True)),
            metadata_key=str(creds.get("metadata_key", "customData")),
            allowed_payloads=tuple(payloads) if payloads else cls.allowed_payloads,
            widget_dir=str(creds.get("widget_dir") or env.get("WEBCHAT_WIDGET_DIR") or DEFAULT_WIDGET_DIR),
            policy_url=consent.configured_policy_url(env),
            llm_provider=consent.llm_provider(env),
            socket_redis_url=_redis_url(
                creds.get("socket_redis_url", env.get("WEBCHAT_SOCKET_REDIS_URL"))),
            socket_redis_channel=str(
                creds.get("socket_redis_channel") or env.get("WEBCHAT_SOCKET_REDIS_CHANNEL")
                or cls.socket_redis_channel),
        )
        if settings.rate_per_second <= 0 or settings.ip_rate_per_second <= 0:
            raise ConfigError("rate_per_second and ip_rate_per_second must be > 0")
        if not settings.socketio_path.startswith("/"):
            raise ConfigError("socketio_path must start with '/'")
        return settings

    def origin_allowed(self, origin: Optional[str]) -> bool:
        """True when a browser on ``origin`` may open a socket (see :func:`cors.origin_allowed`)."""
        return origin_allowed(self.allowed_origins, origin)


def _redis_url(value: Any) -> Optional[str]:
    """A ``redis://``, ``rediss://`` or ``unix://`` URL, or None when unset or empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    url = str(value).strip()
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("socket_redis_url must be a redis://, rediss:// or unix:// URL")
    return url


def _positive_int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be an integer") from exc
    if number <= 0:
        raise ConfigError(f"{name} must be > 0")
    return number


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number") from exc
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number")
    return number
