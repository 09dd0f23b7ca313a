"""Validate a WhatsApp Cloud API webhook notification and turn it into inbox items (pure).

A notification is validated as a whole before anything is stored. It is **malformed** and raises
``NotificationError`` (the webhook answers 400 and changes nothing) when it is not a WhatsApp
notification, names a message type Meta does not document, lacks a required id, has a value of
the wrong JSON type in any object the parser reads (``_VALUE`` below lists them: an object where
a list is expected, a number where a string is, ...), or holds a string that is not valid Unicode.
Ids out of bounds skip their item only (parse/common.py).

Everything else becomes a list of ``InboundItem`` (each with a unique id so that Meta's retries
are no-ops) plus a list of ignored parts, each with the reason that the webhook logs; one module
per kind turns a part into its item (messages.py, calls.py, statuses.py).
"""

from __future__ import annotations

from typing import Any, Dict, List

from .calls import call_item
from .common import InboundItem, NotificationError, ParseResult, SkipItem, check_shape, check_text, describe
from .messages import KNOWN_MESSAGE_TYPES, MEDIA_TYPES, message_item
from .statuses import status_item

_ERROR = {"code": int, "title": str, "message": str}
_MEDIA = {"id": str, "mime_type": str, "caption": str, "filename": str, "voice": bool}
_REPLY = {"id": str, "title": str}
# A shared contact card (Meta: contacts messages; `origin` from the business-scoped user ids page).
_SHARED_CONTACT = {"origin": str, "vcard": str, "phones": [{"phone": str, "wa_id": str, "type": str}]}
_MESSAGE = {
    "id": str, "type": str, "from": str, "from_user_id": str,
    "context": {"id": str},
    "text": {"body": str},
    "referral": {"source_type": str, "source_id": str, "headline": str},
    "interactive": {"type": str, "button_reply": _REPLY, "list_reply": _REPLY},
    "button": {"payload": str, "text": str},
    "system": {"type": str, "wa_id": str, "body": str, "user_id": str, "previous_user_id": str,
               "parent_user_id": str, "previous_parent_user_id": str},
    "errors": [_ERROR],
    "origin": str,
    "contacts": [_SHARED_CONTACT],
    **{m: _MEDIA for m in MEDIA_TYPES},
}
# profile.username (display-only) is not in the shape: one of any type is dropped by parse/identity.py
# with its reason, and the message is handled as without it.
_CONTACT = {"wa_id": str, "user_id": str, "profile": {"name": str}}
_STATUS = {
    "id": str, "status": str, "type": str, "recipient_id": str, "recipient_user_id": str,
    "timestamp": (str, int), "biz_opaque_callback_data": str, "errors": [_ERROR],
}
_CALL = {
    "id": str, "event": str, "direction": str, "status": str, "from": str, "to": str,
    "from_user_id": str, "duration": (int, str),
}
# Everything the parser reads of a change's value ("messages" and "calls" fields).
_VALUE = {
    "messaging_product": str,
    "contacts": [_CONTACT],
    "messages": [_MESSAGE],
    "statuses": [_STATUS],
    "calls": [_CALL],
    "errors": [dict],
}


def _req_str(obj: Dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise NotificationError(f"{where}: '{key}' must be a non-empty string")
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
    check_text(doc)
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
            check_shape(value, _VALUE, f"{where}.value")
            for k, msg in enumerate(value.get("messages") or []):
                mwhere = f"{where}.messages[{k}]"
                _req_str(msg, "id", mwhere)
                mtype = _req_str(msg, "type", mwhere)
                if mtype not in KNOWN_MESSAGE_TYPES:
                    raise NotificationError(f"{mwhere}: unknown message type {describe(mtype)}")
                if not (msg.get("from") or msg.get("from_user_id")):
                    raise NotificationError(f"{mwhere}: 'from' or 'from_user_id' is required")
            for k, st in enumerate(value.get("statuses") or []):
                swhere = f"{where}.statuses[{k}]"
                _req_str(st, "id", swhere)
                _req_str(st, "status", swhere)
            for k, call in enumerate(value.get("calls") or []):
                cwhere = f"{where}.calls[{k}]"
                _req_str(call, "id", cwhere)
                _req_str(call, "event", cwhere)


def parse_notification(doc: Any) -> ParseResult:
    """Validate ``doc`` and turn it into inbox items (raises NotificationError when malformed)."""
    validate(doc)
    result = ParseResult()
    seen: set = set()
    for entry in doc["entry"]:
        for change in entry["changes"]:
            fld, value = change["field"], change["value"]
            if fld not in ("messages", "calls"):
                result.ignored.append(f"field {describe(fld)} is not handled")
                continue
            items: List[InboundItem] = []
            parts = ([(message_item, value, m, "message") for m in value.get("messages") or []]
                     + [(call_item, value, c, "call") for c in value.get("calls") or []]
                     + [(lambda _v, s: status_item(s), value, s, "status") for s in value.get("statuses") or []])
            for build, val, part, kind in parts:
                try:
                    items.append(build(val, part))
                except SkipItem as skip:
                    result.ignored.append(f"{kind} {describe(part.get('id'))} skipped: {skip}")
            for err in value.get("errors") or []:
                result.ignored.append(f"Meta reported an error on field {fld!r}: {describe(err, 300)}")
            if not parts and not value.get("errors"):
                result.ignored.append(f"field {fld!r} change without messages, calls or statuses")
            for item in items:
                if item.item_id in seen:  # the same id twice in one body: keep the first
                    result.ignored.append(f"duplicate id {item.item_id!r} in one notification")
                    continue
                seen.add(item.item_id)
                result.items.append(item)
    return result
