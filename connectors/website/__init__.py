"""The website chat channel (bot env): Rasa's socket.io channel with identity, limits and a widget.

Rasa loads it as ``connectors.website.WebsiteInput`` (bot/credentials.yml). One job per module:

- ``channel``: :class:`WebsiteInput`, the socket.io event handlers and the routes;
- ``output``: :class:`WebsiteOutput`, bot messages to a session's room;
- ``settings``: :class:`WebsiteSettings`, read once from credentials and environment;
- ``cors``: which origins may connect, and engine.io as the socket.io path's CORS authority;
- ``limits``: per-session and per-address rate, sockets per address, trusted proxies;
- ``sessions``: session ids, per-session state, owners (recovered from the tracker store);
- ``sockets``: what is known about each open socket;
- ``relay``: the socket.io client manager shared by replicas through Redis (optional);
- ``history``: ``mid`` stamps and the replay of missed bot messages;
- ``messages``: checks on a visitor's message and the pt-BR notices;
- ``metadata``: client metadata in, forwarded metadata out;
- ``identity``: token check → ``auth_status`` and the identity attestation;
- ``shapes``: a bot message as Atende's widget and as stock Rasa clients get it;
- ``widget``: ``GET /webhooks/website/widget.js``.

Only ``channel``, ``output`` and ``widget`` import Rasa or Sanic (``relay``: socket.io). The two channel classes are
imported here on first access (PEP 562), not at import: importing Rasa's socket.io channel costs
about 1.2 s (``python -X importtime``, bot env), and the pure modules are imported without it
(their unit tests, tools).
"""

from __future__ import annotations

from typing import Any

__all__ = ["WebsiteInput", "WebsiteOutput"]


def __getattr__(name: str) -> Any:
    if name == "WebsiteInput":
        from .channel import WebsiteInput

        return WebsiteInput
    if name == "WebsiteOutput":
        from .output import WebsiteOutput

        return WebsiteOutput
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
