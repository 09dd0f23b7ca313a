"""Z-API (z-api.io), the second WhatsApp provider (bot env, aiohttp). Select it with
``WHATSAPP_PROVIDER=zapi``.

Everything after the webhook is shared with the Cloud API: the inbox (parse/zapi.py makes the same
items), the worker, the outbox (Cloud API bodies) and its retry policy. This module translates a
queued Cloud API body to the Z-API endpoint and body (``to_zapi``) and sends it with the
``Client-Token`` header; answers are classified as ok / retry (429, 5xx, timeouts) / reject (other
4xx), like the Graph API's.

Z-API has no ``biz_opaque_callback_data``: after a crash in the middle of a send, the row is
resent after ``WHATSAPP_RESEND_GRACE_S`` unless a status quoting the message id arrives (which
needs that id, known only from Z-API's answer), so the crash window gives at-least-once there.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import aiohttp

from ..settings import ZapiSettings
from .base import MessageBody, SendResult, post_json


def to_zapi(body: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """A Graph API message body (as queued in the outbox) → (Z-API path, Z-API body).

    Z-API takes the contact in ``phone``: the number, or the LID (``…@lid``) of a contact whose
    number WhatsApp hides; a conversation without a phone is queued with ``recipient`` = its LID
    (identity.recipient_fields)."""
    phone = str(body.get("to") or body.get("recipient") or "")
    if not phone:
        raise ValueError("no recipient (to or recipient)")
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
        wamid = None
        if isinstance(payload, dict):
            wamid = payload.get("messageId") or payload.get("id") or payload.get("zaapId")
        return SendResult("ok", wamid=wamid, http_status=http_status)
    title = None
    if isinstance(payload, dict):
        title = str(payload.get("message") or payload.get("error") or "")[:500] or None
    if http_status == 429 or http_status >= 500:
        return SendResult("retry", title=title, http_status=http_status)
    return SendResult("reject", title=title, http_status=http_status)


class ZapiClient:
    """``Provider`` for Z-API: one instance (id and token in the URL), the account's client token."""

    def __init__(self, settings: ZapiSettings, timeout_s: float = 10.0) -> None:
        self.base = (f"{settings.base_url.rstrip('/')}/instances/{settings.instance_id}"
                     f"/token/{settings.instance_token}")
        self.headers = {"Client-Token": settings.client_token}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: Optional[aiohttp.ClientSession] = None

    async def _call(self, path: str, body: Dict[str, Any]) -> SendResult:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return await post_json(self._session, f"{self.base}/{path}", body, self.headers, classify)

    async def send(self, body: MessageBody) -> SendResult:
        try:
            path, zbody = to_zapi(body)
        except (KeyError, ValueError, TypeError) as exc:
            return SendResult("reject", title=f"not sendable through Z-API: {exc}")
        return await self._call(path, zbody)

    async def mark_read(self, wamid: str, address: str, typing: bool = True) -> SendResult:
        """Z-API marks a message read by phone and id; it has no typing indicator here (``typing``
        is accepted and has no effect)."""
        if not address:
            return SendResult("reject", title="Z-API needs the phone to mark a message as read")
        return await self._call("read-message", {"phone": address, "messageId": wamid})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
