"""A Cloud API ``contacts`` message from a customer behind a username: is it their own phone? (pure)

Meta's "Business-scoped user IDs" page (developers.facebook.com/documentation/business-messaging/
whatsapp/business-scoped-user-ids, "Requesting contact information") adds ``origin`` to the
contacts message a user sends: ``contact_request`` when the user tapped the business's
request-contact-info button (the interactive ``request_contact_info`` message, or a template's
``REQUEST_CONTACT_INFO`` button), which shares the user's **own** contact information; ``other``
when the user shared a contact card from their address book, which may be anyone's.

So a shared phone is this sender's own number, and the gateway may attest it, only when all hold:

- ``origin`` is ``contact_request`` (message-level, as Meta's example has it; a contact-level
  ``origin`` is read when the message has none; both present and different: not verified);
- the sender is username-only: ``from_user_id`` (the BSUID) and no ``from`` (a sender with a phone
  is identified by it already; their shared cards are not for the assistant);
- exactly one contact with exactly one phone, whose digits are a phone number (8..15 digits), and
  when Meta gives its ``wa_id`` too, the two name the same number (Brazil's ninth digit either way).

Anything else stays a claim: the item still goes to the assistant (``/shared_contact``), marked
unverified with the reason, so the bot can ask again. The card's text (names, vCard) is never read.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from .common import describe

SHARED_CONTACT_TEXT = "/shared_contact"
CONTACT_REQUEST = "contact_request"
MAX_CONTACTS = 1
_DIGITS = re.compile(r"[0-9]{8,15}")
_PHONE_CHARS = re.compile(r"[+0-9 ().\-]{1,40}")


def _digits(raw: Any) -> Optional[str]:
    """The digits of a phone as Meta writes it (``+55 11 98765-4321``), or None when it is not one."""
    if not isinstance(raw, str) or not _PHONE_CHARS.fullmatch(raw.strip()):
        return None
    digits = re.sub(r"[^0-9]", "", raw)
    return digits if _DIGITS.fullmatch(digits) else None


def same_number(a: str, b: str) -> bool:
    """Two digit strings naming the same number: equal, or a Brazilian mobile with and without the
    ninth digit (55 + area code + 9 + 8 digits vs 55 + area code + 8 digits)."""
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return (len(short) == 12 and len(long_) == 13 and short.startswith("55") and long_.startswith("55")
            and long_[4] == "9" and long_[:4] + long_[5:] == short)


def shared_contact(msg: Dict[str, Any]) -> Dict[str, Any]:
    """What a contacts message proves: ``{"origin", "phone", "verified", "reason"}`` (``phone``:
    the number's digits, Meta's wa_id when it gives one; None when there is no single usable one)."""
    contacts: List[Any] = msg.get("contacts") or []
    first = contacts[0] if len(contacts) == 1 and isinstance(contacts[0], dict) else {}
    origin = msg.get("origin")
    inner = first.get("origin")
    if origin is None:
        origin = inner
    out: Dict[str, Any] = {"origin": origin if isinstance(origin, str) else None, "phone": None,
                           "verified": False, "reason": None}

    def claim(reason: str) -> Dict[str, Any]:
        out["reason"] = reason
        return out

    if not contacts:
        return claim("contacts message without a contact")
    if len(contacts) > MAX_CONTACTS:
        return claim(f"{len(contacts)} contacts shared; only one, the sender's own, can be verified")
    phones = [p for p in first.get("phones") or [] if isinstance(p, dict)]
    if len(phones) != 1:
        return claim(f"the contact has {len(phones)} phones; exactly one is needed")
    phone = phones[0]
    digits = _digits(phone.get("phone"))
    wa_id = phone.get("wa_id") if isinstance(phone.get("wa_id"), str) else None
    if wa_id is not None and not _DIGITS.fullmatch(wa_id):
        return claim("the phone's wa_id is not a phone number")
    if digits is None and wa_id is None:
        return claim("the contact's phone is not a phone number")
    if digits is not None and wa_id is not None and not same_number(digits, wa_id):
        return claim("the phone and its wa_id name different numbers")
    out["phone"] = wa_id or digits
    if msg.get("from"):
        return claim("the sender's phone is known; a shared contact identifies no one")
    if not msg.get("from_user_id"):
        return claim("no sender BSUID")
    if inner is not None and msg.get("origin") is not None and inner != msg.get("origin"):
        return claim("the message and the contact name different origins")
    if origin != CONTACT_REQUEST:
        return claim(f"origin {describe(origin)}: a contact card the user chose, maybe someone else's")
    out["verified"] = True
    return out
