"""Settings of the WhatsApp channel and gateway, read from the environment when a process starts
(``WhatsAppSettings.from_env``), never at import time. docs/whatsapp.md lists the variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from atende_contract.attestation import key_from_env

ZAPI_DEFAULT_BASE_URL = "https://api.z-api.io"


@dataclass(frozen=True)
class ZapiSettings:
    """Z-API (providers/zapi.py): the instance to send through and the webhook's URL secret."""

    instance_id: str = ""
    instance_token: str = ""
    client_token: str = ""
    webhook_token: str = ""
    base_url: str = ZAPI_DEFAULT_BASE_URL


@dataclass(frozen=True)
class WhatsAppSettings:
    verify_token: str = ""
    app_secret: str = ""
    access_token: str = ""
    phone_number_id: str = ""
    api_version: str = "v21.0"
    graph_url: str = "https://graph.facebook.com"
    database_url: str = ""
    max_body_bytes: int = 1024 * 1024
    graph_timeout_s: float = 10.0
    retry_base_s: float = 0.5
    retry_max_s: float = 8.0
    max_attempts: int = 6
    resend_grace_s: float = 60.0
    concurrency: int = 8
    # Per-address lease across replicas sharing the database (renewed every third of it).
    lease_s: float = 30.0
    sqlite_synchronous: str = "FULL"
    # Acknowledgements first (in-process webhook only): while deliveries keep arriving (one within
    # ack_priority_s), a message waits before Rasa runs (Rasa blocks the event loop), at most
    # max_defer_s. Not needed behind the gateway.
    ack_priority_s: float = 0.02
    max_defer_s: float = 0.5
    # "cloud" (Meta's WhatsApp Cloud API) or "zapi" (providers/zapi.py) for the sends; both
    # webhooks are always served (each answers 503 until its secret is set).
    provider: str = "cloud"
    zapi: ZapiSettings = ZapiSettings()
    # HMAC key of the identity attestation (atende_contract.attestation); None: no identity.
    attestation_key: Optional[bytes] = None
    # WHATSAPP_TEMPLATES: JSON of the templates per purpose outside the 24-hour window (templates.py)
    templates_json: str = ""

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None,
                 overrides: Optional[Mapping[str, Any]] = None) -> "WhatsAppSettings":
        env = os.environ if env is None else env
        o = dict(overrides or {})

        def get(key: str, default: str) -> str:
            value = o.get(key.lower().replace("whatsapp_", ""))
            return str(value) if value is not None else env.get(key, default)

        return cls(
            verify_token=get("WHATSAPP_VERIFY_TOKEN", ""),
            app_secret=get("WHATSAPP_APP_SECRET", ""),
            access_token=get("WHATSAPP_ACCESS_TOKEN", ""),
            phone_number_id=get("WHATSAPP_PHONE_NUMBER_ID", ""),
            api_version=get("WHATSAPP_API_VERSION", "v21.0") or "v21.0",
            graph_url=get("WHATSAPP_GRAPH_URL", "https://graph.facebook.com") or "https://graph.facebook.com",
            database_url=str(o.get("database_url") or env.get("DATABASE_URL", "")),
            max_body_bytes=int(get("WHATSAPP_MAX_BODY_BYTES", str(1024 * 1024))),
            graph_timeout_s=float(get("WHATSAPP_GRAPH_TIMEOUT_S", "10")),
            retry_base_s=float(get("WHATSAPP_RETRY_BASE_S", "0.5")),
            retry_max_s=float(get("WHATSAPP_RETRY_MAX_S", "8")),
            max_attempts=int(get("WHATSAPP_MAX_ATTEMPTS", "6")),
            resend_grace_s=float(get("WHATSAPP_RESEND_GRACE_S", "60")),
            concurrency=int(get("WHATSAPP_CONCURRENCY", "8")),
            lease_s=float(get("WHATSAPP_LEASE_SECONDS", "30")),
            sqlite_synchronous=get("WHATSAPP_SQLITE_SYNCHRONOUS", "FULL") or "FULL",
            ack_priority_s=float(get("WHATSAPP_ACK_PRIORITY_S", "0.02")),
            max_defer_s=float(get("WHATSAPP_MAX_DEFER_S", "0.5")),
            provider=(get("WHATSAPP_PROVIDER", "cloud") or "cloud").strip().lower(),
            zapi=ZapiSettings(
                instance_id=env.get("ZAPI_INSTANCE_ID", ""), instance_token=env.get("ZAPI_INSTANCE_TOKEN", ""),
                client_token=env.get("ZAPI_CLIENT_TOKEN", ""), webhook_token=env.get("ZAPI_WEBHOOK_TOKEN", ""),
                base_url=env.get("ZAPI_BASE_URL", "") or ZAPI_DEFAULT_BASE_URL),
            attestation_key=key_from_env(env),
            templates_json=get("WHATSAPP_TEMPLATES", ""),
        )
