"""The WhatsApp webhook itself, shared by the Rasa channel and the gateway (bot env, no Rasa import).

``register_webhook`` adds ``GET /webhook`` (Meta's verification handshake), ``POST /webhook``
(signed deliveries), ``POST /zapi`` (Z-API's callbacks) and ``GET /`` (health) to a Sanic
blueprint. The Rasa channel (channel.py) and the stand-alone gateway (gateway.py) both call it, so
both answer every request with exactly the same checks and statuses; they differ only in what
happens after a delivery is stored (wake the worker in the same process, or tell Rasa over HTTP).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, List, Mapping, Optional, Tuple

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from .parse import InboundItem, NotificationError, parse_callback, parse_notification
from .settings import WhatsAppSettings, ZapiSettings
from .signature import SignatureCheck, check_signature, tokens_equal

logger = logging.getLogger("connectors.whatsapp")

Ingest = Callable[[List[InboundItem]], Awaitable[int]]


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
                           ingest: Ingest) -> Tuple[int, Any]:
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
    except NotificationError as exc:  # malformed (parse/): Meta would retry a 500 for days
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


def zapi_items(settings: ZapiSettings, token: Optional[str], body: bytes,
               max_body_bytes: int) -> Tuple[int, Any, List[InboundItem]]:
    """Check a Z-API webhook request (Z-API does not sign its webhooks: the URL carries
    ``?token=<ZAPI_WEBHOOK_TOKEN>``, compared in constant time): (status, error payload or None,
    items to store)."""
    if not settings.webhook_token:
        return 503, {"error": "Z-API channel disabled: ZAPI_WEBHOOK_TOKEN is not set"}, []
    if len(body) > max_body_bytes:
        return 413, {"error": f"body larger than {max_body_bytes} bytes"}, []
    if not token:
        return 401, {"error": "missing token"}, []
    if not tokens_equal(token, settings.webhook_token):
        return 403, {"error": "invalid token"}, []
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 400, {"error": "body is not JSON"}, []
    except RecursionError:
        return 400, {"error": "body is nested too deeply"}, []
    try:
        parsed = parse_callback(doc)
    except NotificationError as exc:
        return 400, {"error": f"not a Z-API callback: {exc}"}, []
    except Exception:  # a parser bug: still the sender's bad input, never a 500 retried for days
        logger.exception("whatsapp: Z-API callback could not be parsed")
        return 400, {"error": "not a Z-API callback: it could not be parsed"}, []
    for reason in parsed.ignored:
        logger.info("whatsapp: Z-API ignored: %s", reason)
    return 200, None, parsed.items


def register_webhook(bp: Blueprint, settings: WhatsAppSettings, ingest: Ingest,
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
        status, error, items = zapi_items(settings.zapi, request.args.get("token"), request.body or b"",
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
