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

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import aiohttp

from connectors.wa_graph import SendResult, post_json
from connectors.wa_parse import MEDIA_RECEIVED_TEXT, InboundItem, NotificationError, ParseResult, neutralise

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


def parse_callback(doc: Any) -> ParseResult:
    """Validate a Z-API webhook body and turn it into inbox items (raises NotificationError)."""
    if not isinstance(doc, dict):
        raise NotificationError("body must be a JSON object")
    kind = doc.get("type")
    if kind == "ReceivedCallback":
        return _received(doc)
    if kind == "MessageStatusCallback":
        return _statuses(doc)
    if isinstance(kind, str) and kind.endswith("Callback"):  # connect/disconnect/presence/...
        return ParseResult(ignored=[f"Z-API callback {kind!r} is not handled"])
    raise NotificationError("'type' must be a Z-API callback type")


def _received(doc: Dict[str, Any]) -> ParseResult:
    mid, phone = _str(doc, "messageId"), _str(doc, "phone")
    if mid is None or phone is None:
        raise NotificationError("ReceivedCallback needs 'messageId' and 'phone'")
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
    if isinstance(doc.get("text"), dict):
        wa["type"] = "text"
        text = neutralise(str(doc["text"].get("message") or ""))
        return item("rasa", text=text) if text else item("ignore", reason="empty text")
    for key, field_name in (("buttonsResponseMessage", "buttonId"), ("listResponseMessage", "selectedRowId")):
        reply = doc.get(key)
        if isinstance(reply, dict):
            wa["type"] = "button_reply" if key.startswith("buttons") else "list_reply"
            rid = _str(reply, field_name)
            title = str(reply.get("message") or reply.get("title") or "")
            return item("rasa", text=neutralise(title) or "?", button_id=rid)
    for mtype, url_key in MEDIA_KEYS.items():
        media = doc.get(mtype)
        if isinstance(media, dict):
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
    phone = _str(doc, "phone") or "unknown"
    result = ParseResult()
    mapped = STATUS_MAP.get(status)
    for mid in ids:
        info = {"wamid": mid, "status": mapped or status.lower(), "timestamp": doc.get("momment"), "errors": [],
                "biz_opaque_callback_data": None}
        item_id = f"{mid}#status:{info['status']}"
        if mapped is None:
            result.items.append(InboundItem(item_id, "status", phone, "ignore", status=info,
                                            reason=f"Z-API status {status!r} is not tracked"))
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
    try:
        parsed = parse_callback(doc)
    except NotificationError as exc:
        return 400, {"error": f"not a Z-API callback: {exc}"}, []
    return 200, None, parsed.items
