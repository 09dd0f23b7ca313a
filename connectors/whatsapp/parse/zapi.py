"""Z-API's webhook callbacks → inbox items (pure): ``ReceivedCallback`` (messages) and
``MessageStatusCallback`` (statuses) become the same ``InboundItem`` rows, with the same metadata
for Rasa, as the Cloud API's (providers/zapi.py sends; webhook.py checks the URL's token)."""

from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple

from .common import (ITEM_ID, MAX_ID_CHARS, WA_ID, MEDIA_RECEIVED_TEXT, NAME, UNKNOWN_ADDRESS, InboundItem,
                     NotificationError, ParseResult, SkipItem, bounded, button_key, check_shape, check_text,
                     describe, neutralise)

# Z-API status names → the Cloud API's (ranked the same way by the store)
STATUS_MAP = {"SENT": "sent", "RECEIVED": "delivered", "DELIVERED": "delivered", "READ": "read", "PLAYED": "played"}
MEDIA_KEYS = {"image": "imageUrl", "audio": "audioUrl", "video": "videoUrl", "document": "documentUrl",
              "sticker": "stickerUrl"}


def _str(obj: Dict[str, Any], key: str) -> Optional[str]:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


# Z-API addresses: the phone's digits, or a LID / group / newsletter id ("81896604192873@lid",
# "120363019502650977-group"), at most MAX_ID_CHARS characters.
ZAPI_ID = re.compile(r"[0-9][0-9a-z@.-]{0,%d}" % (MAX_ID_CHARS - 1))
# A contact's LID (WhatsApp's Linked ID, as Z-API sends it in `chatLid` and sometimes in `phone`):
# digits, then "@lid". Anything else in those places is not taken for a LID.
LID = re.compile(r"[0-9]{1,32}@lid")
_ZAPI_MEDIA = {"mimeType": str, "caption": str, "fileName": str, "ptt": bool}
_ZAPI_REPLY = {"message": str, "title": str}
# Everything parse_callback reads of a callback (see common.check_shape).
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
    surrogate). An id out of bounds skips its item (``ParseResult.ignored``), as for the Cloud API."""
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
    wamid, phone = _str(doc, "messageId"), _str(doc, "phone")
    if wamid is None or phone is None:
        raise NotificationError("ReceivedCallback needs 'messageId' and 'phone'")
    try:
        bounded(wamid, ITEM_ID, "messageId")
        bounded(phone, ZAPI_ID, "phone")
        bounded(doc.get("chatLid"), ZAPI_ID, "chatLid")
        bounded(doc.get("senderLid"), ZAPI_ID, "senderLid")
    except SkipItem as skip:
        return ParseResult(ignored=[f"Z-API message {describe(wamid)} skipped: {skip}"])
    result = ParseResult()
    address, wa_id, lid = _sender(phone, doc, result.ignored, wamid)
    wa: Dict[str, Any] = {"message_id": wamid, "wa_id": wa_id, "lid": lid, "provider": "zapi"}
    if _str(doc, "senderName") or _str(doc, "chatName"):
        wa["profile_name"] = _str(doc, "senderName") or _str(doc, "chatName")

    def item(action: str, text: Optional[str] = None, reason: Optional[str] = None,
             button_id: Optional[str] = None) -> ParseResult:
        result.items.append(InboundItem(wamid, "message", address, action,  # type: ignore[arg-type]
                                        text=text, metadata={"whatsapp": wa}, reason=reason, button_id=button_id))
        return result

    if doc.get("fromMe"):
        return item("ignore", reason="sent by this number (fromMe)")
    if doc.get("isGroup") or doc.get("isNewsletter") or doc.get("broadcast"):
        return item("ignore", reason="group, newsletter or broadcast message")
    if wa_id is None and not LID.fullmatch(phone):
        return item("ignore", reason=f"sender {describe(phone)} is neither a phone nor a LID")
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


def _sender(phone: str, doc: Dict[str, Any], notes: list, wamid: str) -> Tuple[str, Optional[str], Optional[str]]:
    """(address, phone, LID) of a received message's contact.

    Z-API (developer.z-api.io/en/tips/lid): `phone` holds the number or the LID itself, `chatLid`
    the LID (the most stable id; it may be null), and its "on receive" examples carry the sender's
    LID in `senderLid`. The address is the phone when there is one, else the LID: Z-API sends to
    either in `phone`. The LID is `chatLid`, else a LID-form `phone`, else `senderLid` (read only
    for one-to-one messages from the contact; never `participantLid`, a name or the text). A value
    there in another form is dropped with its reason in ``notes``; the message goes on by phone."""
    wa_id = phone if WA_ID.fullmatch(phone) else None
    lid = phone if LID.fullmatch(phone) else None
    one_to_one = not (doc.get("fromMe") or doc.get("isGroup") or doc.get("isNewsletter") or doc.get("broadcast"))
    for key in ("chatLid", "senderLid"):
        value = doc.get(key)
        if not isinstance(value, str) or not value or (key == "senderLid" and not one_to_one):
            continue
        if not LID.fullmatch(value):
            notes.append(f"Z-API message {describe(wamid)}: {key} {describe(value)} is not a LID; not linked")
        elif key == "chatLid" or lid is None:
            lid = value  # chatLid: the stable one, even when `phone` holds a LID too
    return (wa_id or lid or phone), wa_id, lid


def _statuses(doc: Dict[str, Any]) -> ParseResult:
    status, ids = doc.get("status"), doc.get("ids")
    if not isinstance(status, str) or not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise NotificationError("MessageStatusCallback needs 'status' and a list of 'ids'")
    result = ParseResult()
    try:
        address = bounded(_str(doc, "phone"), ZAPI_ID, "phone") or UNKNOWN_ADDRESS
        mapped = STATUS_MAP.get(status)
        name = bounded(mapped or status.lower(), NAME, "status") or ""
    except SkipItem as skip:
        return ParseResult(ignored=[f"Z-API status callback skipped: {skip}"])
    for wamid in ids:
        if not ITEM_ID.fullmatch(wamid):
            result.ignored.append(f"Z-API status of {describe(wamid)} skipped: the message id is out of bounds")
            continue
        info = {"wamid": wamid, "status": name, "timestamp": doc.get("momment"), "errors": [],
                "biz_opaque_callback_data": None}
        item_id = f"{wamid}#status:{name}"
        if mapped is None:
            result.items.append(InboundItem(item_id, "status", address, "ignore", status=info,
                                            reason=f"Z-API status {describe(status)} is not tracked"))
        else:
            result.items.append(InboundItem(item_id, "status", address, "status", status=info))
    return result
