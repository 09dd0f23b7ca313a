"""Origins policy of the website chat: which browser origins may open a socket, and CORS.

- :func:`parse_origins` reads the configured list (exact ``scheme://host[:port]`` origins; a
  wildcard is refused, so a misconfigured server does not start);
- :func:`origin_allowed` applies it (no list: the development default, localhost on any port);
- :func:`leave_socketio_cors_to_engineio` keeps engine.io the only CORS authority of the
  socket.io path (see docs/website.md, "Supported clients and CORS").

Pure: no Rasa, no socket.io import.
"""

from __future__ import annotations

import re
from typing import Any, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

DEV_ORIGIN_HOSTS = ("localhost", "127.0.0.1", "::1")


class OriginsError(ValueError):
    """A configured origins list that must not start the server (a wildcard, a bad origin)."""


def parse_origins(raw: Any) -> Tuple[str, ...]:
    """Parse a list or comma-separated string of origins; "*" is refused."""
    if isinstance(raw, str):
        items = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, (list, tuple)):
        items = [str(part).strip() for part in raw]
    else:
        raise OriginsError("allowed_origins must be a list or a comma-separated string")
    origins: List[str] = []
    for item in items:
        if not item:
            continue
        if "*" in item:
            raise OriginsError(
                "allowed_origins must list exact origins (e.g. https://www.example.com); "
                "'*' is not accepted"
            )
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise OriginsError(f"invalid origin {item!r}: expected scheme://host[:port]")
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return tuple(origins)


def origin_allowed(allowed_origins: Sequence[str], origin: Optional[str]) -> bool:
    """True when a browser on ``origin`` may open a socket (no Origin header: non-browser).

    ``allowed_origins`` is what :func:`parse_origins` returned; empty means the development
    default: http(s) on localhost, 127.0.0.1 or [::1], any port.
    """
    if not origin:
        return True
    origin = origin.strip().rstrip("/").lower()
    if allowed_origins:
        return origin in allowed_origins
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in DEV_ORIGIN_HOSTS


def leave_socketio_cors_to_engineio(app: Any, socketio_path: str) -> None:
    """Make engine.io the only CORS authority of the socket.io path.

    Rasa always installs Sanic-CORS on ``/*`` (with the origins of ``--cors``, none by default)
    with automatic ``OPTIONS`` answers: it would answer socket.io preflights itself, without any
    allowed origin, and with ``--cors`` it adds a second ``Access-Control-Allow-Origin`` next to
    engine.io's. Its resource patterns are narrowed here so they never match the socket.io path;
    engine.io answers there with our origin check (``cors_allowed_origins``).
    """
    context = getattr(getattr(app, "ctx", None), "sanic_cors", None)
    resources = getattr(context, "resources", None)
    if not isinstance(resources, list):
        return
    path = "/" + socketio_path.strip("/")
    guard = r"(?!%s(?:/|$))" % re.escape(path)
    narrowed = []
    for pattern, options in resources:
        source = pattern.pattern if isinstance(pattern, re.Pattern) else str(pattern)
        if source.startswith(guard):
            narrowed.append((pattern, options))  # already narrowed (a second listener run)
            continue
        narrowed.append((re.compile(guard + source), options))
    context.resources = narrowed
