"""Z-API (z-api.io), a second WhatsApp provider behind the same connector (bot env).

Select it with ``WHATSAPP_PROVIDER=zapi``. Everything after the webhook is shared with the Cloud
API provider: the durable inbox (same ``InboundItem`` rows, same metadata for Rasa), the worker,
the outbox (Graph API bodies, rendered within Meta's limits) and its retry policy. This module only
translates at the two edges:

- inbound: Z-API's ``ReceivedCallback`` (messages) and ``MessageStatusCallback`` (statuses) →
  inbox items (``parse_callback``). Z-API does not sign its webhooks, so the webhook URL carries a
  secret: ``/webhooks/whatsapp/zapi?token=<ZAPI_WEBHOOK_TOKEN>`` (compared in constant time);
- outbound: a Graph API body → the Z-API endpoint and body (``to_zapi``), sent by ``ZapiClient``
  with the ``Client-Token`` header; answers are classified as ok / retry (429, 5xx, timeouts) /
  reject (other 4xx), like the Graph API's.

Z-API has no ``biz_opaque_callback_data``: after a crash in the middle of a send, the row is
resent after ``WHATSAPP_RESEND_GRACE_S`` unless a status quoting the message id arrives (which
needs that id, known only from Z-API's answer), so the crash window gives at-least-once there.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import aiohttp

from connectors.wa_graph import SendResult, post_json
from connectors.wa_parse import (ITEM_ID, MAX_ID_CHARS, MEDIA_RECEIVED_TEXT, NAME, UNKNOWN_SENDER, InboundItem,
                                 NotificationError, ParseResult, SkipItem, bounded, button_key, check_shape,
                                 check_text, describe, neutralise)

logger = logging.getLogger("connectors.whatsapp")

DEFAULT_BASE_URL = "https://api.z-api.io"
# Z-API status names → the Cloud API's (ranked the same way by the store)
STATUS_MAP = {"SENT": "sent", "RECEIVED": "delivered", "DELIVERED": "delivered", "READ": "read", "PLAYED": "played"}
MEDIA_KEYS = {"image": "imageUrl", "audio": "audioUrl", "video": "videoUrl", "document": "documentUrl",
              "sticker": "stickerUrl"}


@dataclass(frozen=True)
class ZapiSettings:
    instance_id: str = ""
    instance_token: str = ""
    client_token: str = ""
    webhook_token: str = ""
    base_url: str = DEFAULT_BASE_URL


def _str(obj: Dict[str, Any], key: str) -> Optional[str]:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


# Z-API sender ids: the phone's digits, or a LID / group / newsletter id ("81896604192873@lid",
# "120363019502650977-group"), at most MAX_ID_CHARS characters.
ZAPI_ID = re.compile(r"[0-9][0-9a-z@.-]{0,%d}" % (MAX_ID_CHARS - 1))
_ZAPI_MEDIA = {"mimeType": str, "caption": str, "fileName": str, "ptt": bool}
_ZAPI_REPLY = {"message": str, "title": str}
# Everything parse_callback reads of a callback (see wa_parse.check_shape).
_RECEIVED = {
    "messageId": str, "phone": str, "chatLid": str, "senderLid": str, "senderName": str, "chatName": str,
    "fromMe": bool, "isGroup": bool, "isNewsletter": bool, "broadcast": bool,
    "text": {"message": str},
    "buttonsResponseMessage": {"buttonId": str, **_ZAPI_REPLY},
    "listResponseMessage": {"selectedRowId": str, **_ZAPI_REPLY},
    **{mtype: {url_key: str, **_ZAPI_MEDIA} for mtype, url_key in MEDIA_KEYS.items()},
}
_STATUS = {"status": str, "ids": [str], "phone": str, "momment": (int, str)}


def parse_callback(doc: Any) -> ParseResult:
    """Validate a Z-API webhook body and turn it into inbox items (raises NotificationError when
    it is malformed: not a callback, a required id missing, a value of the wrong JSON type, a lone
    surrogate). An id out of bounds skips its item (``ParseResult.ignored``), as in wa_parse."""
    if not isinstance(doc, dict):
        raise NotificationError("body must be a JSON object")
    kind = doc.get("type")
    if kind == "ReceivedCallback":
        check_text(doc)
        check_shape(doc, _RECEIVED, "ReceivedCallback")
        return _received(doc)
    if kind == "MessageStatusCallback":
        check_text(doc)
        check_shape(doc, _STATUS, "MessageStatusCallback")
        return _statuses(doc)
    if isinstance(kind, str) and kind.endswith("Callback"):  # connect/disconnect/presence/...
        return ParseResult(ignored=[f"Z-API callback {describe(kind)} is not handled"])
    raise NotificationError("'type' must be a Z-API callback type")


def _received(doc: Dict[str, Any]) -> ParseResult:
    mid, phone = _str(doc, "messageId"), _str(doc, "phone")
    if mid is None or phone is None:
        raise NotificationError("ReceivedCallback needs 'messageId' and 'phone'")
    try:
        bounded(mid, ITEM_ID, "messageId")
        bounded(phone, ZAPI_ID, "phone")
        bounded(doc.get("chatLid"), ZAPI_ID, "chatLid")
        bounded(doc.get("senderLid"), ZAPI_ID, "senderLid")
    except SkipItem as skip:
        return ParseResult(ignored=[f"Z-API message {describe(mid)} skipped: {skip}"])
    wa: Dict[str, Any] = {"message_id": mid, "wa_id": phone, "provider": "zapi"}
    if _str(doc, "senderName") or _str(doc, "chatName"):
        wa["profile_name"] = _str(doc, "senderName") or _str(doc, "chatName")
    result = ParseResult()

    def item(action: str, text: Optional[str] = None, reason: Optional[str] = None,
             button_id: Optional[str] = None) -> ParseResult:
        result.items.append(InboundItem(mid, "message", phone, action,  # type: ignore[arg-type]
                                        text=text, metadata={"whatsapp": wa}, reason=reason, button_id=button_id))
        return result

    if doc.get("fromMe"):
        return item("ignore", reason="sent by this number (fromMe)")
    if doc.get("isGroup") or doc.get("isNewsletter") or doc.get("broadcast"):
        return item("ignore", reason="group, newsletter or broadcast message")
    if doc.get("text") is not None:
        wa["type"] = "text"
        text = neutralise(doc["text"].get("message") or "")
        return item("rasa", text=text) if text else item("ignore", reason="empty text")
    for key, field_name in (("buttonsResponseMessage", "buttonId"), ("listResponseMessage", "selectedRowId")):
        reply = doc.get(key)
        if reply is not None:
            wa["type"] = "button_reply" if key.startswith("buttons") else "list_reply"
            title = reply.get("message") or reply.get("title") or ""
            return item("rasa", text=neutralise(title) or "?", button_id=button_key(reply.get(field_name)))
    for mtype, url_key in MEDIA_KEYS.items():
        media = doc.get(mtype)
        if media is not None:
            wa["type"] = "voice" if mtype == "audio" and media.get("ptt") else mtype
            wa["media_url"] = media.get(url_key)
            if media.get("mimeType"):
                wa["mime_type"] = media["mimeType"]
            if media.get("caption"):
                wa["caption"] = media["caption"]
            if media.get("fileName"):
                wa["filename"] = media["fileName"]
            return item("rasa", text=MEDIA_RECEIVED_TEXT)
    for other in ("location", "reaction", "contact", "poll", "pollVote", "order", "product"):
        if other in doc:
            return item("ignore", reason=f"{other} message")
    return item("ignore", reason="message type not handled")


def _statuses(doc: Dict[str, Any]) -> ParseResult:
    status, ids = doc.get("status"), doc.get("ids")
    if not isinstance(status, str) or not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise NotificationError("MessageStatusCallback needs 'status' and a list of 'ids'")
    result = ParseResult()
    try:
        phone = bounded(_str(doc, "phone"), ZAPI_ID, "phone") or UNKNOWN_SENDER
        mapped = STATUS_MAP.get(status)
        name = bounded(mapped or status.lower(), NAME, "status") or ""
    except SkipItem as skip:
        return ParseResult(ignored=[f"Z-API status callback skipped: {skip}"])
    for mid in ids:
        if not ITEM_ID.fullmatch(mid):
            result.ignored.append(f"Z-API status of {describe(mid)} skipped: the message id is out of bounds")
            continue
        info = {"wamid": mid, "status": name, "timestamp": doc.get("momment"), "errors": [],
                "biz_opaque_callback_data": None}
        item_id = f"{mid}#status:{name}"
        if mapped is None:
            result.items.append(InboundItem(item_id, "status", phone, "ignore", status=info,
                                            reason=f"Z-API status {describe(status)} is not tracked"))
        else:
            result.items.append(InboundItem(item_id, "status", phone, "status", status=info))
    return result


def to_zapi(body: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """A Graph API message body (as queued in the outbox) → (Z-API path, Z-API body)."""
    phone = str(body.get("to") or "")
    mtype = body.get("type")
    if mtype == "text":
        return "send-text", {"phone": phone, "message": body["text"]["body"]}
    if mtype == "interactive":
        inter = body["interactive"]
        text = inter.get("body", {}).get("text", "")
        action = inter.get("action") or {}
        if inter.get("type") == "button":
            buttons = [{"id": b["reply"]["id"], "label": b["reply"]["title"]} for b in action.get("buttons", [])]
            return "send-button-list", {"phone": phone, "message": text, "buttonList": {"buttons": buttons}}
        if inter.get("type") == "list":
            options = [{"id": r["id"], "title": r["title"], **({"description": r["description"]}
                                                              if r.get("description") else {})}
                       for s in action.get("sections", []) for r in s.get("rows", [])]
            return "send-option-list", {"phone": phone, "message": text, "optionList": {
                "title": (action.get("sections") or [{}])[0].get("title") or "Opções",
                "buttonLabel": action.get("button") or "Ver opções", "options": options}}
    if mtype == "image":
        media = body["image"]
        return "send-image", {"phone": phone, "image": media.get("link") or media.get("id"),
                              **({"caption": media["caption"]} if media.get("caption") else {})}
    if mtype == "document":
        media = body["document"]
        link = str(media.get("link") or "")
        ext = link.rsplit(".", 1)[-1].lower() if "." in link.rsplit("/", 1)[-1] else "pdf"
        return f"send-document/{ext}", {"phone": phone, "document": link,
                                         **({"fileName": media["filename"]} if media.get("filename") else {})}
    raise ValueError(f"message type {mtype!r} cannot be sent through Z-API")


def classify(http_status: int, payload: Any) -> SendResult:
    if 200 <= http_status < 300:
        mid = None
        if isinstance(payload, dict):
            mid = payload.get("messageId") or payload.get("id") or payload.get("zaapId")
        return SendResult("ok", wamid=mid, http_status=http_status)
    title = None
    if isinstance(payload, dict):
        title = str(payload.get("message") or payload.get("error") or "")[:500] or None
    if http_status == 429 or http_status >= 500:
        return SendResult("retry", title=title, http_status=http_status)
    return SendResult("reject", title=title, http_status=http_status)


class ZapiClient:
    """Same interface as ``wa_graph.GraphClient`` (``post`` a Graph body, ``mark_read``, ``close``)."""

    def __init__(self, settings: ZapiSettings, timeout_s: float = 10.0) -> None:
        self.base = (f"{settings.base_url.rstrip('/')}/instances/{settings.instance_id}"
                     f"/token/{settings.instance_token}")
        self.headers = {"Client-Token": settings.client_token}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: Optional[aiohttp.ClientSession] = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, path: str, body: Dict[str, Any]) -> SendResult:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return await post_json(self._session, f"{self.base}/{path}", body, self.headers, classify)

    async def post(self, body: Dict[str, Any]) -> SendResult:
        try:
            path, zbody = to_zapi(body)
        except (KeyError, ValueError, TypeError) as exc:
            return SendResult("reject", title=f"not sendable through Z-API: {exc}")
        return await self._call(path, zbody)

    async def mark_read(self, message_id: str, recipient: Optional[str] = None) -> SendResult:
        if not recipient:
            return SendResult("reject", title="Z-API needs the phone to mark a message as read")
        return await self._call("read-message", {"phone": recipient, "messageId": message_id})


def webhook_items(settings: ZapiSettings, token: Optional[str], body: bytes,
                  max_body_bytes: int) -> Tuple[int, Any, List[InboundItem]]:
    """Check a Z-API webhook request: (status, error payload or None, items to store)."""
    import json

    from connectors.wa_signature import tokens_equal

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
