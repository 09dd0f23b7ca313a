"""A Cloud API message → one inbox item, by message type (pure; the notification is validated,
so every value read here has its shape)."""

from __future__ import annotations

from typing import Any, Dict

from .common import (BSUID, MEDIA_RECEIVED_TEXT, WA_ID, ITEM_ID, InboundItem, SkipItem, bounded, button_key, describe,
                     neutralise)
from .contacts import SHARED_CONTACT_TEXT, shared_contact
from .identity import identity

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Message types documented by Meta (anything else is a malformed notification).
KNOWN_MESSAGE_TYPES = frozenset(MEDIA_TYPES + (
    "text", "interactive", "button", "location", "contacts", "reaction", "order", "system", "unsupported",
    "unknown", "request_welcome", "revoke", "edit", "ephemeral"))


def message_item(value: Dict[str, Any], msg: Dict[str, Any]) -> InboundItem:
    wamid = bounded(msg["id"], ITEM_ID, "message id") or ""
    mtype = msg["type"]
    address, ident = identity(value, msg.get("from"), msg.get("from_user_id"))
    wa: Dict[str, Any] = {"message_id": wamid, **ident, "type": mtype}
    if (msg.get("context") or {}).get("id"):
        wa["context_id"] = msg["context"]["id"]

    def ignore(reason: str) -> InboundItem:
        return InboundItem(wamid, "message", address, "ignore", metadata={"whatsapp": wa}, reason=reason)

    def rasa(text: str, button_id: Any = None) -> InboundItem:
        return InboundItem(wamid, "message", address, "rasa", text=text, metadata={"whatsapp": wa},
                           button_id=button_key(button_id))

    if mtype == "text":
        body = (msg.get("text") or {}).get("body")
        if body is None:
            return ignore("text message without a body")
        text = neutralise(body)
        if not text:
            return ignore("text message empty after neutralising leading '/'")
        if msg.get("referral") is not None:
            wa["referral"] = {k: msg["referral"].get(k) for k in ("source_type", "source_id", "headline")}
        return rasa(text)

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
        return rasa(MEDIA_RECEIVED_TEXT)

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
            return rasa(neutralise(title) or "?", rid)
        return ignore(f"interactive type {describe(itype)} is not handled")

    if mtype == "button":
        button = msg.get("button") or {}
        payload, title = button.get("payload"), button.get("text")
        if title is None:
            return ignore("template button reply without text")
        wa["type"] = "button"
        return rasa(neutralise(title) or "?", payload)

    if mtype == "system":
        system = msg.get("system") or {}
        stype = system.get("type")
        if stype == "user_changed_number" and wa.get("wa_id"):
            try:
                new = bounded(system.get("wa_id"), WA_ID, "new phone (system.wa_id)")
            except SkipItem:
                new = None
            if new and new != wa["wa_id"]:
                # Meta says this customer's number is now `new`: the conversation goes on (aliases).
                return InboundItem(wamid, "message", address, "alias", metadata={"whatsapp": wa, "new_wa_id": new},
                                   reason="the customer changed number; the new one continues the conversation")
            return ignore("number change without a usable new number")
        if stype == "user_changed_user_id":
            # Meta: the sender's BSUID changed (no phone). Only a username conversation (addressed
            # by the BSUID) needs an alias; a phone conversation links the new BSUID on its next message.
            try:
                new_uid = bounded(system.get("user_id") or msg.get("from_user_id"), BSUID, "new user id")
                old_uid = bounded(system.get("previous_user_id"), BSUID, "previous user id")
            except SkipItem:
                new_uid = old_uid = None
            if not new_uid or not old_uid or new_uid == old_uid:
                return ignore("BSUID change without a usable previous and new user id")
            if wa.get("wa_id"):
                return ignore("BSUID change on a phone conversation; the next message links the new one")
            return InboundItem(wamid, "message", address, "alias",
                               metadata={"whatsapp": wa, "new_wa_id": new_uid, "previous_address": old_uid},
                               reason="the customer's BSUID changed; the new one continues the conversation")
        return ignore(f"system event {describe(stype)} recorded, nothing for the assistant")
    if mtype == "contacts":
        if wa.get("wa_id"):
            return ignore("contact card from a sender whose phone is known; nothing for the assistant")
        # a customer behind a username answering the bot's request for their phone (contacts.py)
        wa["shared_contact"] = shared_contact(msg)
        return rasa(SHARED_CONTACT_TEXT)
    if mtype == "reaction":
        return ignore("reaction recorded, nothing for the assistant")
    if mtype == "unsupported" or mtype == "unknown":
        codes = [e.get("code") for e in msg.get("errors") or []]
        return ignore(f"unsupported message type reported by Meta (errors {describe(codes[:10], 200)})")
    return ignore(f"message type {mtype!r} is not handled by the assistant")
