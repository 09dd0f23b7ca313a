"""The WhatsApp channel (bot env): Meta's Cloud API and Z-API behind one durable inbox and outbox.

One job per module (docs/whatsapp.md has the map and the names used throughout):

- channel.py: the Rasa input/output channels (``connectors.whatsapp.WhatsAppInput`` in
  credentials.yml); worker.py: inbox → Rasa → outbox → provider;
- webhook.py: the webhook (checks, statuses), shared by the channel and gateway.py, the stand-alone
  process (``python -m connectors.whatsapp.gateway``); ingest.py: storing deliveries;
- parse/: webhook bodies → inbox items; outbound.py: Rasa messages → Cloud API bodies;
  signature.py: ``X-Hub-Signature-256``; identity.py: addresses, subjects, attestations;
- store/: one module per table; providers/: the ``Provider`` contract, Cloud API and Z-API;
- settings.py: the environment, read when a process starts; hooks.py: crash-test hooks.

The channel classes import Rasa, which the gateway must not load (tests/connectors/
test_rasa_speedups.py), so they are exported lazily: ``connectors.whatsapp.WhatsAppInput``
imports channel.py on first access.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WhatsAppInput", "WhatsAppOutput"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import channel

        return getattr(channel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
