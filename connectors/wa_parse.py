"""Parse WhatsApp Cloud API webhook notifications into inbox items (pure, stdlib only).

A notification is validated as a whole before anything is stored. It is **malformed** and raises
``NotificationError`` (the webhook answers 400 and changes nothing) when it is not a WhatsApp
notification, names a message type Meta does not document, lacks a required id, has a value of
the wrong JSON type in any object the parser reads (``_VALUE`` below lists them: an object where
a list is expected, a number where a string is, ...), or holds a string that is not valid Unicode
(a lone surrogate such as ``"\\ud800"``, which no database can store).

Ids are bounded: sender ids (``MAX_ID_CHARS`` characters; phones ``from``/``wa_id``/``to`` are
ASCII digits, business-scoped user ids and status recipients are ``[A-Za-z0-9._-]``) and item ids
(message, call and status ids: printable ASCII, ``MAX_ITEM_ID_CHARS``). An id of the right type
but out of those bounds does not reject the delivery: that one item is **skipped** (no inbox row,
the reason is in ``ParseResult.ignored`` and logged), so the other customers' messages batched in
the same delivery are still stored.

Everything else becomes a list of ``InboundItem`` (each with a unique id so that Meta's retries
are no-ops) plus a list of ignored parts, each with the reason that the webhook logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Pattern, Tuple, Union

from atende_contract.text import neutralise as neutralise_command

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

# Bounds of ids (see the module docstring). The inbox columns are sender VARCHAR(128), item_id and
# button_id VARCHAR(255): "<item id>#status:<name>" stays within 128 + 8 + 32.
MAX_ID_CHARS = 64
MAX_ITEM_ID_CHARS = 128
MAX_NAME_CHARS = 32
MAX_BUTTON_ID_CHARS = 255
PHONE_ID = re.compile(r"[0-9]{1,%d}" % MAX_ID_CHARS)  # wa_id, from, to: digits only
USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,%d}" % (MAX_ID_CHARS - 1))  # BSUIDs ("US.123"), groups
ITEM_ID = re.compile(r"[!-~]{1,%d}" % MAX_ITEM_ID_CHARS)  # wamid / call id / status id: printable ASCII
NAME = re.compile(r"[!-~]{1,%d}" % MAX_NAME_CHARS)  # status values and call events
UNKNOWN_SENDER = "unknown"  # the sender of a status that names no recipient

ItemKind = Literal["message", "call", "status"]
ItemAction = Literal["rasa", "status", "ignore", "alias"]  # alias: the sender changed number


class NotificationError(ValueError):
    """The body is not a valid WhatsApp notification (malformed): the webhook answers 400."""


class SkipItem(Exception):
    """One item of an otherwise valid notification cannot be stored (an id out of bounds)."""


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
    ignored: List[str] = field(default_factory=list)  # parts without an inbox row, with the reason




def neutralise(text: str) -> str:
    """Strip leading slashes so user text can never trigger an intent or set slots in Rasa (and
    NUL characters, which PostgreSQL cannot store)."""
    return neutralise_command(text.replace("\x00", "")).strip()


def describe(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for reasons and logs."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


# ---- shapes ------------------------------------------------------------------------------------
# A shape is a type or tuple of types (isinstance; a bool is never an int), a dict (an object whose
# listed keys, when present and not null, have their shapes; other keys are not looked at) or a
# one-element list (a list whose items all have that shape).
Shape = Union[type, Tuple[type, ...], Dict[str, Any], List[Any]]


def check_shape(value: Any, shape: Shape, where: str) -> None:
    """Raise NotificationError unless ``value`` has ``shape`` (iterative: any depth)."""
    stack: List[Tuple[Any, Shape, str]] = [(value, shape, where)]
    while stack:
        v, s, w = stack.pop()
        if isinstance(s, dict):
            if not isinstance(v, dict):
                raise NotificationError(f"{w} must be an object")
            for key, sub in s.items():
                item = v.get(key)
                if item is not None:
                    stack.append((item, sub, f"{w}.{key}"))
        elif isinstance(s, list):
            if not isinstance(v, list):
                raise NotificationError(f"{w} must be a list")
            stack.extend((item, s[0], f"{w}[{i}]") for i, item in enumerate(v))
        else:
            types = s if isinstance(s, tuple) else (s,)
            if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
                names = " or ".join("a string" if t is str else f"a {t.__name__}" for t in types)
                raise NotificationError(f"{w} must be {names}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(doc: Any) -> None:
    """Raise NotificationError if a string anywhere in ``doc`` (keys included) holds a lone
    surrogate: JSON can encode it (``"\\ud800"``), UTF-8 and so the database cannot."""
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                raise NotificationError("a string is not valid Unicode (lone surrogate)")
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def bounded(value: Optional[str], pattern: Pattern[str], what: str) -> Optional[str]:
    """An id from a validated notification: None when absent or empty, else ``value`` when it
    matches ``pattern``; raises SkipItem when it does not."""
    if not value:
        return None
    if pattern.fullmatch(value):
        return value
    raise SkipItem(f"{what} {describe(value)} is out of bounds")


def button_key(value: Any) -> Optional[str]:
    """A reply/option id as stored for the payload lookup (None when it cannot be one of ours)."""
    if isinstance(value, str) and value and len(value) <= MAX_BUTTON_ID_CHARS and "\x00" not in value:
        return value
    return None


_ERROR = {"code": int, "title": str, "message": str}
_MEDIA = {"id": str, "mime_type": str, "caption": str, "filename": str, "voice": bool}
_REPLY = {"id": str, "title": str}
_MESSAGE = {
    "id": str, "type": str, "from": str, "from_user_id": str,
    "context": {"id": str},
    "text": {"body": str},
    "referral": {"source_type": str, "source_id": str, "headline": str},
    "interactive": {"type": str, "button_reply": _REPLY, "list_reply": _REPLY},
    "button": {"payload": str, "text": str},
    "system": {"type": str, "wa_id": str, "body": str},
    "errors": [_ERROR],
    **{m: _MEDIA for m in MEDIA_TYPES},
}
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


# ---- items (the notification is valid: every value read below has its shape) ------------------
def _contact_for(value: Dict[str, Any], wa_id: Optional[str], user_id: Optional[str]) -> Dict[str, Any]:
    contacts = value.get("contacts") or []
    for c in contacts:
        if (wa_id and c.get("wa_id") == wa_id) or (user_id and c.get("user_id") == user_id):
            return c
    return contacts[0] if len(contacts) == 1 else {}


def _identity(value: Dict[str, Any], phone: Optional[str], user_id: Optional[str]) -> Tuple[str, Dict[str, Any]]:
    contact = _contact_for(value, phone, user_id)
    wa_id = bounded(phone or contact.get("wa_id"), PHONE_ID, "phone (wa_id)")
    uid = bounded(user_id or contact.get("user_id"), USER_ID, "user_id")
    profile = contact.get("profile") or {}
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
    mid = bounded(msg["id"], ITEM_ID, "message id") or ""
    mtype = msg["type"]
    sender, ident = _identity(value, msg.get("from"), msg.get("from_user_id"))
    wa: Dict[str, Any] = {"message_id": mid, **ident, "type": mtype}
    if (msg.get("context") or {}).get("id"):
        wa["context_id"] = msg["context"]["id"]

    def ignore(reason: str) -> InboundItem:
        return InboundItem(mid, "message", sender, "ignore", metadata={"whatsapp": wa}, reason=reason)

    if mtype == "text":
        body = (msg.get("text") or {}).get("body")
        if body is None:
            return ignore("text message without a body")
        text = neutralise(body)
        if not text:
            return ignore("text message empty after neutralising leading '/'")
        if msg.get("referral") is not None:
            wa["referral"] = {k: msg["referral"].get(k) for k in ("source_type", "source_id", "headline")}
        return InboundItem(mid, "message", sender, "rasa", text=text, metadata={"whatsapp": wa})

    if mtype in MEDIA_TYPES:
        media = msg.get(mtype)
        if not media or not media.get("id"):
            return ignore(f"{mtype} message without a media id")
        if mtype == "audio" and media.get("voice") is True:
            wa["type"] = "voice"
        wa["media_id"] = media["id"]
        for key in ("mime_type", "caption", "filename"):
            if media.get(key) is not None:
                wa[key] = media[key]
        return InboundItem(mid, "message", sender, "rasa", text=MEDIA_RECEIVED_TEXT, metadata={"whatsapp": wa})

    if mtype == "interactive":
        inter = msg.get("interactive")
        if inter is None:
            return ignore("interactive message without content (Meta reported errors)")
        itype = inter.get("type")
        if itype in ("button_reply", "list_reply"):
            reply = inter.get(itype) or {}
            rid, title = reply.get("id"), reply.get("title")
            if rid is None or title is None:
                return ignore(f"{itype} without id/title")
            wa["type"] = itype
            # the title is only the text when the id is not one of ours; never an intent
            return InboundItem(mid, "message", sender, "rasa", text=neutralise(title) or "?",
                               metadata={"whatsapp": wa}, button_id=button_key(rid))
        return ignore(f"interactive type {describe(itype)} is not handled")

    if mtype == "button":
        button = msg.get("button") or {}
        payload, title = button.get("payload"), button.get("text")
        if title is None:
            return ignore("template button reply without text")
        wa["type"] = "button"
        return InboundItem(mid, "message", sender, "rasa", text=neutralise(title) or "?",
                           metadata={"whatsapp": wa}, button_id=button_key(payload))

    if mtype == "system":
        system = msg.get("system") or {}
        stype = system.get("type")
        if stype == "user_changed_number" and wa.get("wa_id"):
            try:
                new = bounded(system.get("wa_id"), PHONE_ID, "new phone (system.wa_id)")
            except SkipItem:
                new = None
            if new and new != wa["wa_id"]:
                # Meta says this user's number is now `new`: the conversation goes on (aliases).
                return InboundItem(mid, "message", sender, "alias", metadata={"whatsapp": wa, "new_wa_id": new},
                                   reason="the customer changed number; the new one continues the conversation")
            return ignore("number change without a usable new number")
        return ignore(f"system event {describe(stype)} recorded, nothing for the assistant")
    if mtype == "reaction":
        return ignore("reaction recorded, nothing for the assistant")
    if mtype == "unsupported" or mtype == "unknown":
        codes = [e.get("code") for e in msg.get("errors") or []]
        return ignore(f"unsupported message type reported by Meta (errors {describe(codes[:10], 200)})")
    return ignore(f"message type {mtype!r} is not handled by the assistant")


_DIGITS = re.compile(r"[0-9]{1,9}")


def _duration(value: Any) -> Optional[int]:
    """Seconds of a call (an int or a string of ASCII digits), None when absent or absurd."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9:
        return value
    return None


def _call_item(value: Dict[str, Any], call: Dict[str, Any]) -> InboundItem:
    call_id = bounded(call["id"], ITEM_ID, "call id") or ""
    event = bounded(call["event"], NAME, "call event") or ""
    item_id = f"{call_id}#{event}"
    direction = call.get("direction")
    customer = call.get("from") if direction != "BUSINESS_INITIATED" else call.get("to")
    sender, ident = _identity(value, customer, call.get("from_user_id"))
    info = {
        "call_id": call_id,
        "event": event,
        "direction": direction,
        "status": call.get("status"),
        "duration": _duration(call.get("duration")),
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
    wamid = bounded(st["id"], ITEM_ID, "status message id") or ""
    status = bounded(st["status"], NAME, "status value") or ""
    item_id = f"{wamid}#status:{status}"
    sender = (bounded(st.get("recipient_id"), USER_ID, "recipient_id")
              or bounded(st.get("recipient_user_id"), USER_ID, "recipient_user_id") or UNKNOWN_SENDER)
    info = {
        "wamid": wamid,
        "status": status,
        "timestamp": st.get("timestamp"),
        "errors": list(st.get("errors") or []),
        "biz_opaque_callback_data": st.get("biz_opaque_callback_data"),
    }
    if st.get("type") == "call":
        return InboundItem(item_id, "status", sender, "ignore", status=info, reason=f"call status {status!r}")
    if status not in STATUS_VALUES:
        return InboundItem(item_id, "status", sender, "ignore", status=info, reason=f"unknown status {status!r}")
    return InboundItem(item_id, "status", sender, "status", status=info)


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
            parts = ([(_message_item, value, m, "message") for m in value.get("messages") or []]
                     + [(_call_item, value, c, "call") for c in value.get("calls") or []]
                     + [(lambda _v, s: _status_item(s), value, s, "status") for s in value.get("statuses") or []])
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
