"""WhatsApp providers behind one contract (base.Provider): graph.py (Meta's Cloud API) and zapi.py
(Z-API)."""

from __future__ import annotations

from ..settings import WhatsAppSettings
from .base import Provider, SendResult
from .graph import GraphClient
from .zapi import ZapiClient

__all__ = ["GraphClient", "Provider", "SendResult", "ZapiClient", "provider_for"]


def provider_for(settings: WhatsAppSettings) -> Provider:
    """The provider that ``WHATSAPP_PROVIDER`` names (``cloud`` or ``zapi``)."""
    if settings.provider == "zapi":
        return ZapiClient(settings.zapi, settings.graph_timeout_s)
    if settings.provider == "cloud":
        return GraphClient(settings.graph_url, settings.api_version, settings.phone_number_id,
                           settings.access_token, settings.graph_timeout_s)
    raise ValueError(f"WHATSAPP_PROVIDER must be 'cloud' or 'zapi', got {settings.provider!r}")
