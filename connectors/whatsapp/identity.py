"""A customer's address in the forms the rest of the system speaks (pure): the attested subject,
the Cloud API recipient fields and this turn's identity attestation (docs/whatsapp.md, "Names")."""

from __future__ import annotations

from typing import Any, Dict, Optional

from atende_contract import attestation, channels

CHANNEL_NAME = channels.WHATSAPP


def subject_of(address: str) -> str:
    """The attested subject of an address: ``phone:<wa_id>``, ``lid:<Z-API LID>`` or ``bsuid:<bsuid>``."""
    if address.isdigit():
        return f"phone:{address}"
    if address.endswith("@lid"):
        return f"lid:{address}"
    return f"bsuid:{address}"


def recipient_fields(address: str) -> Dict[str, str]:
    """Where a Cloud API send goes: ``to`` = the wa_id when the conversation has a phone, else
    ``recipient`` = the bsuid (a customer behind a username has no phone)."""
    return {"to": address} if address.isdigit() else {"recipient": address}


def conversation_id(conversation_address: str) -> str:
    """Rasa's sender id of a WhatsApp conversation: ``whatsapp:<conversation address>``."""
    return channels.conversation_id(CHANNEL_NAME, conversation_address)


def verified_shared_phone(wa_meta: Any, address: str) -> Optional[str]:
    """The phone a username-only sender shared through Meta's contact request, when the parser
    found it proven (parse/contacts.py) and it came from this very BSUID: the row's address is the
    sender's BSUID (no phone) and the message's ``user_id`` is that BSUID. Else None."""
    if not isinstance(wa_meta, dict) or address.isdigit() or address.endswith("@lid"):
        return None
    shared = wa_meta.get("shared_contact")
    if not isinstance(shared, dict) or shared.get("verified") is not True or wa_meta.get("wa_id"):
        return None
    phone = shared.get("phone")
    if wa_meta.get("user_id") != address or not isinstance(phone, str) or not phone.isdigit():
        return None
    return phone


def attest(key: Optional[bytes], conversation: str, address: str, item_id: str,
           bsuid: Optional[str] = None, previous_wa_id: Optional[str] = None,
           lid: Optional[str] = None, shared_phone: Optional[str] = None,
           username: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """This turn's identity attestation: the address of a delivery whose signature was verified,
    for conversation id ``conversation`` and message ``item_id`` only.

    When Meta sent both the phone and the bsuid of the sender, the bsuid is attested alongside
    (``alt``): that is how the action server links a bsuid to the customer found by phone, and
    recognises them later when only the bsuid comes (a username). After a number change (Meta's
    signed `user_changed_number`), the conversation's first number is attested alongside the new
    one (``phone:<previous>``), so the customer is found and relinked. Z-API's LID (``chatLid``)
    sent with the phone is attested alongside the same way (``lid:<id>@lid``).

    ``shared_phone`` (from :func:`verified_shared_phone`: a username-only sender shared their own
    number through Meta's contact request) makes that turn a delivery with both: the subject is
    ``phone:<shared>`` with the sender's BSUID beside it, so the action server links the BSUID to the
    customer of that phone exactly as when Meta sends ``from`` and ``from_user_id`` together.

    ``username`` (the parser's ``username``: Meta's ``profile.username`` of this sender) is signed as
    ``un`` beside whichever subject is attested: display-only, it identifies nobody. One out of form
    is left out (the identity is attested as without it).
    """
    if key is None:
        return None
    username = attestation.username_form(username)[0] if username is not None else None
    if shared_phone and shared_phone.isdigit() and not address.isdigit() and not address.endswith("@lid"):
        alt = [f"bsuid:{address}"]
        if previous_wa_id and not previous_wa_id.isdigit() and previous_wa_id != address:
            alt.append(f"bsuid:{previous_wa_id}")
        return attestation.sign(key, channel=CHANNEL_NAME, conversation_id=conversation,
                                subject=f"phone:{shared_phone}", message_id=item_id, alt=alt, username=username)
    alt = [f"bsuid:{bsuid}"] if bsuid and bsuid != address and address.isdigit() else []
    if lid and lid != address and address.isdigit():
        alt.append(f"lid:{lid}")
    if previous_wa_id and previous_wa_id.isdigit() and previous_wa_id != address:
        alt.append(f"phone:{previous_wa_id}")
    elif previous_wa_id and not address.isdigit() and previous_wa_id != address and not previous_wa_id.isdigit():
        alt.append(f"bsuid:{previous_wa_id}")  # Meta's signed user_changed_user_id: the first BSUID
    return attestation.sign(key, channel=CHANNEL_NAME, conversation_id=conversation,
                            subject=subject_of(address), message_id=item_id, alt=alt, username=username)


def attest_delivery(key: Optional[bytes], conversation: str, conversation_address: str, address: str,
                    item_id: str, wa_meta: Any) -> Optional[Dict[str, Any]]:
    """:func:`attest` for one stored delivery (the worker's call): its ``whatsapp`` metadata gives
    the BSUID, LID, shared phone and username (each only when a string, as the parser wrote it);
    a conversation that began on another address (a number or BSUID change) attests that one too."""
    meta = wa_meta if isinstance(wa_meta, dict) else {}

    def text(name: str) -> Optional[str]:
        value = meta.get(name)
        return value if isinstance(value, str) else None

    return attest(key, conversation, address, item_id, text("user_id"),
                  previous_wa_id=conversation_address if conversation_address != address else None,
                  lid=text("lid"), shared_phone=verified_shared_phone(meta, address), username=text("username"))
