"""The WhatsApp webhook itself, shared by the Rasa channel and the gateway (bot env, no Rasa import).

``register_webhook`` adds ``GET /webhook`` (Meta's verification handshake), ``POST /webhook``
(signed deliveries) and ``GET /`` (health) to a Sanic blueprint. The Rasa channel
(``connectors/whatsapp.py``) and the stand-alone gateway (``connectors/wa_gateway.py``) both call it,
so both answer every request with exactly the same checks and statuses; they differ only in what
happens after a delivery is stored (wake the worker in the same process, or tell Rasa over HTTP).

``Ingestor`` stores deliveries into the durable inbox on a thread of its own, with group commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Awaitable, Callable, Deque, List, Mapping, Optional, Tuple

import sqlalchemy as sa

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.wa_parse import InboundItem, NotificationError, parse_notification
from connectors.wa_signature import SignatureCheck, check_signature, tokens_equal
from connectors.wa_store import Store, make_engine
from connectors.wa_zapi import DEFAULT_BASE_URL as ZAPI_DEFAULT_BASE_URL
from connectors.wa_zapi import ZapiSettings, webhook_items

from atende_contract.attestation import key_from_env

logger = logging.getLogger("connectors.whatsapp")


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
    # Per-sender lease across replicas sharing the database (renewed every third of it).
    lease_s: float = 30.0
    sqlite_synchronous: str = "FULL"
    # Acknowledgements first (in-process webhook only): while deliveries keep arriving (one within
    # ack_priority_s), a message waits before Rasa runs (Rasa blocks the event loop), at most
    # max_defer_s. Not needed behind the gateway.
    ack_priority_s: float = 0.02
    max_defer_s: float = 0.5
    # Tests only: "exit_after_rasa" / "exit_after_send" kill the process (os._exit) inside the
    # crash windows, once per inbox row / outbox row, to prove the recovery paths.
    fault: str = ""
    # "cloud" (Meta's WhatsApp Cloud API) or "zapi" (connectors/wa_zapi.py) for the sends; both
    # webhooks are always served (each answers 503 until its secret is set).
    provider: str = "cloud"
    zapi: ZapiSettings = ZapiSettings()
    # HMAC key of the identity attestation (atende_contract.attestation); None: no identity.
    attestation_key: Optional[bytes] = None

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
            fault=get("WHATSAPP_FAULT", ""),
            sqlite_synchronous=get("WHATSAPP_SQLITE_SYNCHRONOUS", "FULL") or "FULL",
            ack_priority_s=float(get("WHATSAPP_ACK_PRIORITY_S", "0.02")),
            max_defer_s=float(get("WHATSAPP_MAX_DEFER_S", "0.5")),
            provider=(get("WHATSAPP_PROVIDER", "cloud") or "cloud").strip().lower(),
            zapi=ZapiSettings(
                instance_id=env.get("ZAPI_INSTANCE_ID", ""), instance_token=env.get("ZAPI_INSTANCE_TOKEN", ""),
                client_token=env.get("ZAPI_CLIENT_TOKEN", ""), webhook_token=env.get("ZAPI_WEBHOOK_TOKEN", ""),
                base_url=env.get("ZAPI_BASE_URL", "") or ZAPI_DEFAULT_BASE_URL),
            attestation_key=key_from_env(env),
        )


class Ingestor:
    """Stores deliveries in the inbox; concurrent deliveries share a transaction (group commit) on
    a thread of its own, so acknowledgements never queue behind other database work.

    On SQLite (one writer at a time, shared with Rasa's tracker store and the worker) the inserts
    use a connection of their own that does not let SQLite wait for the write lock: SQLite's own
    busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between tries, which puts
    tens of milliseconds on an acknowledgement whenever another write holds the lock. Instead the
    transaction is retried every half millisecond (for up to ``lock_wait_s``)."""

    def __init__(self, store: Store, sqlite_synchronous: str = "FULL", lock_wait_s: float = 30.0) -> None:
        self.lock_wait_s = lock_wait_s
        self.sqlite = store.engine.dialect.name == "sqlite"
        if self.sqlite:
            url = store.engine.url.render_as_string(hide_password=False)
            store = Store(make_engine(url, sqlite_synchronous, sqlite_busy_timeout_s=0.0),
                          unconfirmed_grace_s=store.unconfirmed_grace_s, lease_s=store.lease_s, owner=store.owner)
        self.store = store
        # (seconds the batch took to commit, lock retries) of recent batches, for /stats
        self.timings: Deque[Tuple[float, int]] = deque(maxlen=20000)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whatsapp-ingest")
        self._queue: List[Tuple[List[InboundItem], "asyncio.Future[int]"]] = []
        self._task: Optional[asyncio.Task] = None

    async def ingest(self, items: List[InboundItem]) -> int:
        """Store one delivery's items (one transaction); returns how many were new."""
        if not items:
            return 0
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[int]" = loop.create_future()
        self._queue.append((items, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._loop())
        return await fut

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue[:200], self._queue[200:]
            try:
                counts = await loop.run_in_executor(
                    self.executor, partial(self._insert, [items for items, _ in batch]))
            except Exception as exc:  # nothing of this batch is stored: every delivery gets a 500
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), n in zip(batch, counts):
                if not fut.done():
                    fut.set_result(n)

    def _insert(self, batches: List[List[InboundItem]]) -> List[int]:
        t0 = time.monotonic()
        deadline = t0 + self.lock_wait_s
        retries = 0
        while True:
            try:
                counts = self.store.insert_batches(batches)
                self.timings.append((time.monotonic() - t0, retries))
                return counts
            except sa.exc.OperationalError as exc:  # nothing was committed: the transaction is retried
                text = str(exc).lower()
                if not self.sqlite or not ("locked" in text or "busy" in text) or time.monotonic() > deadline:
                    raise
                retries += 1
                time.sleep(0.0005)

    def close(self) -> None:
        self.executor.shutdown(wait=False)
        if self.sqlite:
            self.store.engine.dispose()


def verify_handshake(settings: WhatsAppSettings, args: Mapping[str, Any]) -> Tuple[int, Any]:
    """Meta's GET handshake: (status, challenge text or JSON error)."""
    if not settings.verify_token:
        return 503, {"error": "WHATSAPP_VERIFY_TOKEN is not configured"}
    mode, token, challenge = args.get("hub.mode"), args.get("hub.verify_token"), args.get("hub.challenge")
    if not mode or not token or challenge is None:
        return 400, {"error": "hub.mode, hub.verify_token and hub.challenge are required"}
    if mode != "subscribe" or not tokens_equal(token, settings.verify_token):
        return 403, {"error": "verification failed"}
    return 200, str(challenge)


async def receive_delivery(settings: WhatsAppSettings, body: bytes, signature: Optional[str],
                           ingest: Callable[[List[InboundItem]], Awaitable[int]]) -> Tuple[int, Any]:
    """A signed POST: checks in order (503, 413, 401, 403, 400), then stores every item (replays
    are no-ops); (status, JSON payload). Nothing is stored unless the answer is 200. A malformed
    body (not JSON, nested too deep, or anything ``parse_notification`` rejects) is a 400."""
    if not settings.app_secret:
        return 503, {"error": "WhatsApp channel disabled: WHATSAPP_APP_SECRET is not set"}
    if len(body) > settings.max_body_bytes:
        return 413, {"error": f"body larger than {settings.max_body_bytes} bytes"}
    check = check_signature(body, signature, settings.app_secret)
    if check is SignatureCheck.MISSING:
        return 401, {"error": "missing X-Hub-Signature-256"}
    if check is SignatureCheck.INVALID:
        return 403, {"error": "invalid X-Hub-Signature-256"}
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 400, {"error": "body is not JSON"}
    except RecursionError:
        return 400, {"error": "body is nested too deeply"}
    try:
        parsed = parse_notification(doc)
    except NotificationError as exc:  # malformed (wa_parse): Meta would retry a 500 for days
        logger.info("whatsapp: rejected notification: %s", exc)
        return 400, {"error": f"not a WhatsApp notification: {exc}"}
    except Exception:  # a parser bug: the delivery is still refused as a whole, never a 500
        logger.exception("whatsapp: notification could not be parsed")
        return 400, {"error": "not a WhatsApp notification: it could not be parsed"}
    for reason in parsed.ignored:
        logger.info("whatsapp: ignored: %s", reason)
    for item in parsed.items:
        if item.action == "ignore":
            logger.info("whatsapp: ignored %s %s: %s", item.kind, item.item_id, item.reason)
    new = await ingest(parsed.items)
    return 200, {"status": "ok", "items": len(parsed.items), "new": new}


def register_webhook(bp: Blueprint, settings: WhatsAppSettings,
                     ingest: Callable[[List[InboundItem]], Awaitable[int]],
                     on_stored: Callable[[int], None]) -> None:
    """Add the webhook routes to ``bp``; ``on_stored(new)`` runs after a delivery stored ``new``
    new items (before the 200 is sent)."""

    @bp.route("/", methods=["GET"])
    async def health(_request: Request) -> HTTPResponse:
        return response.json({"status": "ok", "enabled": bool(settings.app_secret)})

    @bp.route("/webhook", methods=["GET"])
    async def verify(request: Request) -> HTTPResponse:
        status, payload = verify_handshake(settings, request.args)
        if status == 200:
            return response.text(payload)
        return response.json(payload, status=status)

    @bp.route("/webhook", methods=["POST"])
    async def receive(request: Request) -> HTTPResponse:
        status, payload = await receive_delivery(settings, request.body or b"",
                                                 request.headers.get("x-hub-signature-256"), ingest)
        if status == 200 and payload.get("new"):
            on_stored(payload["new"])
        return response.json(payload, status=status)

    @bp.route("/zapi", methods=["POST"])
    async def receive_zapi(request: Request) -> HTTPResponse:
        """Z-API's webhook (unsigned by Z-API): the URL carries ``?token=<ZAPI_WEBHOOK_TOKEN>``."""
        status, error, items = webhook_items(settings.zapi, request.args.get("token"), request.body or b"",
                                             settings.max_body_bytes)
        if status != 200:
            logger.info("whatsapp: Z-API webhook refused (%s): %s", status, error)
            return response.json(error, status=status)
        for item in items:
            if item.action == "ignore":
                logger.info("whatsapp: ignored Z-API %s %s: %s", item.kind, item.item_id, item.reason)
        new = await ingest(items) if items else 0
        if new:
            on_stored(new)
        return response.json({"status": "ok", "items": len(items), "new": new})
