"""Parse WhatsApp Cloud API webhook notifications into inbox items (pure, stdlib only).

A notification is validated as a whole before anything is stored: a body that is not a WhatsApp
notification, or that names a message type Meta does not document, raises ``NotificationError``
(the webhook answers 400 and changes nothing). Everything else becomes a list of ``InboundItem``
(each with a unique id so that Meta's retries are no-ops) plus a list of ignored parts, each with
the reason that the webhook logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Tuple

INBOUND_CALL_TEXT = "/inbound_call"
MEDIA_RECEIVED_TEXT = "/media_received"

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Message types documented by Meta (anything else is a malformed notification).
KNOWN_MESSAGE_TYPES = frozenset(
    MEDIA_TYPES
    + (
        "text",
        "interactive",
        "button",
        "location",
        "contacts",
        "reaction",
        "order",
        "system",
        "unsupported",
        "unknown",
        "request_welcome",
        "revoke",
        "edit",
        "ephemeral",
    )
)
STATUS_VALUES = frozenset({"sent", "delivered", "read", "played", "failed", "deleted", "warning"})

ItemKind = Literal["message", "call", "status"]
ItemAction = Literal["rasa", "status", "ignore"]


class NotificationError(ValueError):
    """The body is not a valid WhatsApp Cloud API notification."""


@dataclass(frozen=True)
class InboundItem:
    """One thing from a notification that gets an inbox row."""

    item_id: str  # unique: wamid, "<call id>#<event>", "<wamid>#status:<status>"
    kind: ItemKind
    sender: str  # Rasa conversation id (wa_id, or user_id when there is no phone)
    action: ItemAction
    text: Optional[str] = None  # the user text for Rasa (action == "rasa")
    metadata: Dict[str, Any] = field(default_factory=dict)
    reason: Optional[str] = None  # why it is ignored (action == "ignore")
    button_id: Optional[str] = None  # interactive/template reply id, mapped to a payload later
    status: Optional[Dict[str, Any]] = None  # for kind == "status"
    call: Optional[Dict[str, Any]] = None  # for kind == "call"


@dataclass
class ParseResult:
    items: List[InboundItem] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)  # parts without an id, with the reason


_LEADING_SLASHES = re.compile(r"^[\s/\\]+")


def neutralise(text: str) -> str:
    """Strip leading slashes so user text can never trigger an intent or set slots in Rasa."""
    return _LEADING_SLASHES.sub("", text).strip()


def _req_str(obj: Dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise NotificationError(f"{where}: '{key}' must be a non-empty string")
    return value


def _list_of_dicts(obj: Dict[str, Any], key: str, where: str) -> List[Dict[str, Any]]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise NotificationError(f"{where}: '{key}' must be a list of objects")
    return value


def validate(doc: Any) -> None:
    """Raise NotificationError unless ``doc`` has the shape of a WhatsApp notification."""
    if not isinstance(doc, dict):
        raise NotificationError("body must be a JSON object")
    if doc.get("object") != "whatsapp_business_account":
        raise NotificationError("'object' must be 'whatsapp_business_account'")
    entries = doc.get("entry")
    if not isinstance(entries, list) or not entries:
        raise NotificationError("'entry' must be a non-empty list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise NotificationError(f"entry[{i}] must be an object")
        changes = entry.get("changes")
        if not isinstance(changes, list):
            raise NotificationError(f"entry[{i}].changes must be a list")
        for j, change in enumerate(changes):
            where = f"entry[{i}].changes[{j}]"
            if not isinstance(change, dict) or not isinstance(change.get("field"), str):
                raise NotificationError(f"{where} must be an object with a 'field'")
            value = change.get("value")
            if not isinstance(value, dict):
                raise NotificationError(f"{where}.value must be an object")
            if change["field"] not in ("messages", "calls"):
                continue
            if value.get("messaging_product") != "whatsapp":
                raise NotificationError(f"{where}.value.messaging_product must be 'whatsapp'")
            _list_of_dicts(value, "contacts", where)
            for k, msg in enumerate(_list_of_dicts(value, "messages", where)):
                mwhere = f"{where}.messages[{k}]"
                _req_str(msg, "id", mwhere)
                mtype = _req_str(msg, "type", mwhere)
                if mtype not in KNOWN_MESSAGE_TYPES:
                    raise NotificationError(f"{mwhere}: unknown message type {mtype!r}")
                if not isinstance(msg.get("from") or msg.get("from_user_id"), str):
                    raise NotificationError(f"{mwhere}: 'from' or 'from_user_id' is required")
            for k, st in enumerate(_list_of_dicts(value, "statuses", where)):
                swhere = f"{where}.statuses[{k}]"
                _req_str(st, "id", swhere)
                _req_str(st, "status", swhere)
            for k, call in enumerate(_list_of_dicts(value, "calls", where)):
                cwhere = f"{where}.calls[{k}]"
                _req_str(call, "id", cwhere)
                _req_str(call, "event", cwhere)


def _contact_for(value: Dict[str, Any], wa_id: Optional[str], user_id: Optional[str]) -> Dict[str, Any]:
    contacts = value.get("contacts") or []
    for c in contacts:
        if (wa_id and c.get("wa_id") == wa_id) or (user_id and c.get("user_id") == user_id):
            return c
    return contacts[0] if len(contacts) == 1 else {}


def _identity(value: Dict[str, Any], phone: Optional[str], user_id: Optional[str]) -> Tuple[str, Dict[str, Any]]:
    contact = _contact_for(value, phone, user_id)
    wa_id = phone or contact.get("wa_id")
    uid = user_id or contact.get("user_id")
    profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
    sender = wa_id or uid
    if not sender:
        raise NotificationError("no sender identity (wa_id or user_id)")
    meta = {
        "wa_id": wa_id,
        "user_id": uid,
        "profile_name": profile.get("name"),
    }
    return sender, meta


def _message_item(value: Dict[str, Any], msg: Dict[str, Any]) -> InboundItem:
    mid = msg["id"]
    mtype = msg["type"]
    sender, ident = _identity(value, msg.get("from"), msg.get("from_user_id"))
    wa: Dict[str, Any] = {"message_id": mid, **ident, "type": mtype}
    if isinstance(msg.get("context"), dict) and msg["context"].get("id"):
        wa["context_id"] = msg["context"]["id"]

    def ignore(reason: str) -> InboundItem:
        return InboundItem(mid, "message", sender, "ignore", metadata={"whatsapp": wa}, reason=reason)

    if mtype == "text":
        body = (msg.get("text") or {}).get("body")
        if not isinstance(body, str):
            return ignore("text message without a body")
        text = neutralise(body)
        if not text:
            return ignore("text message empty after neutralising leading '/'")
        if isinstance(msg.get("referral"), dict):
            wa["referral"] = {k: msg["referral"].get(k) for k in ("source_type", "source_id", "headline")}
        return InboundItem(mid, "message", sender, "rasa", text=text, metadata={"whatsapp": wa})

    if mtype in MEDIA_TYPES:
        media = msg.get(mtype)
        if not isinstance(media, dict) or not media.get("id"):
            return ignore(f"{mtype} message without a media id")
        if mtype == "audio" and media.get("voice") is True:
            wa["type"] = "voice"
        wa["media_id"] = str(media["id"])
        for key in ("mime_type", "caption", "filename"):
            if isinstance(media.get(key), str):
                wa[key] = media[key]
        return InboundItem(mid, "message", sender, "rasa", text=MEDIA_RECEIVED_TEXT, metadata={"whatsapp": wa})

    if mtype == "interactive":
        inter = msg.get("interactive")
        if not isinstance(inter, dict):
            return ignore("interactive message without content (Meta reported errors)")
        itype = inter.get("type")
        if itype in ("button_reply", "list_reply"):
            reply = inter.get(itype) or {}
            rid, title = reply.get("id"), reply.get("title")
            if not isinstance(rid, str) or not isinstance(title, str):
                return ignore(f"{itype} without id/title")
            wa["type"] = itype
            text = neutralise(title) or title
            return InboundItem(mid, "message", sender, "rasa", text=text, metadata={"whatsapp": wa}, button_id=rid)
        return ignore(f"interactive type {itype!r} is not handled")

    if mtype == "button":
        button = msg.get("button") or {}
        payload, title = button.get("payload"), button.get("text")
        if not isinstance(title, str):
            return ignore("template button reply without text")
        wa["type"] = "button"
        text = neutralise(title) or title
        return InboundItem(
            mid, "message", sender, "rasa", text=text, metadata={"whatsapp": wa},
            button_id=payload if isinstance(payload, str) else None,
        )

    if mtype == "system":
        stype = (msg.get("system") or {}).get("type")
        return ignore(f"system event {stype!r} recorded, nothing for the assistant")
    if mtype == "reaction":
        return ignore("reaction recorded, nothing for the assistant")
    if mtype == "unsupported" or mtype == "unknown":
        codes = [e.get("code") for e in msg.get("errors") or [] if isinstance(e, dict)]
        return ignore(f"unsupported message type reported by Meta (errors {codes})")
    return ignore(f"message type {mtype!r} is not handled by the assistant")


def _call_item(value: Dict[str, Any], call: Dict[str, Any]) -> InboundItem:
    call_id, event = call["id"], call["event"]
    item_id = f"{call_id}#{event}"
    direction = call.get("direction")
    customer = call.get("from") if direction != "BUSINESS_INITIATED" else call.get("to")
    sender, ident = _identity(value, customer, call.get("from_user_id"))
    duration = call.get("duration")
    info = {
        "call_id": call_id,
        "event": event,
        "direction": direction,
        "status": call.get("status"),
        "duration": int(duration) if isinstance(duration, (int, str)) and str(duration).isdigit() else None,
    }
    wa = {"message_id": item_id, **ident, "type": "call"}
    if direction == "BUSINESS_INITIATED":
        return InboundItem(item_id, "call", sender, "ignore", metadata={"whatsapp": wa}, call=info,
                           reason="business-initiated call: not an inbound call")
    if event not in ("connect", "terminate"):
        return InboundItem(item_id, "call", sender, "ignore", metadata={"whatsapp": wa}, call=info,
                           reason=f"call event {event!r} is not handled")
    return InboundItem(item_id, "call", sender, "rasa", text=INBOUND_CALL_TEXT, metadata={"whatsapp": wa}, call=info)


def _status_item(st: Dict[str, Any]) -> InboundItem:
    wamid, status = st["id"], st["status"]
    item_id = f"{wamid}#status:{status}"
    sender = st.get("recipient_id") or st.get("recipient_user_id") or "unknown"
    info = {
        "wamid": wamid,
        "status": status,
        "timestamp": st.get("timestamp"),
        "errors": [e for e in st.get("errors") or [] if isinstance(e, dict)],
        "biz_opaque_callback_data": st.get("biz_opaque_callback_data"),
    }
    if st.get("type") == "call":
        return InboundItem(item_id, "status", sender, "ignore", status=info, reason=f"call status {status!r}")
    if status not in STATUS_VALUES:
        return InboundItem(item_id, "status", sender, "ignore", status=info, reason=f"unknown status {status!r}")
    return InboundItem(item_id, "status", sender, "status", status=info)


def parse_notification(doc: Any) -> ParseResult:
    """Validate ``doc`` and turn it into inbox items (raises NotificationError)."""
    validate(doc)
    result = ParseResult()
    seen: set = set()
    for entry in doc["entry"]:
        for change in entry["changes"]:
            fld, value = change["field"], change["value"]
            if fld not in ("messages", "calls"):
                result.ignored.append(f"field {fld!r} is not handled")
                continue
            items: List[InboundItem] = []
            items += [_message_item(value, m) for m in value.get("messages") or []]
            items += [_call_item(value, c) for c in value.get("calls") or []]
            items += [_status_item(s) for s in value.get("statuses") or []]
            for err in value.get("errors") or []:
                result.ignored.append(f"Meta reported an error on field {fld!r}: {err}")
            if not items and not value.get("errors"):
                result.ignored.append(f"field {fld!r} change without messages, calls or statuses")
            for item in items:
                if item.item_id in seen:  # the same id twice in one body: keep the first
                    result.ignored.append(f"duplicate id {item.item_id!r} in one notification")
                    continue
                seen.add(item.item_id)
                result.items.append(item)
    return result
