"""Who sent a Cloud API message or call: its address and the identity metadata for Rasa (pure).

The sender's username (Meta: ``contacts[].profile.username``, in every incoming message webhook of
a user who has one) is kept, in its canonical form (atende_contract.attestation.username_form), as
``username``: display-only data that the gateway signs into the turn's attestation, never an address
or an identity. One out of form (any JSON type, characters, length) is dropped with its reason in
the log; the message itself is handled as without one.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from atende_contract.attestation import username_form

from .common import BSUID, WA_ID, NotificationError, bounded

logger = logging.getLogger(__name__)


def _contact_for(value: Dict[str, Any], wa_id: Optional[str], bsuid: Optional[str]) -> Dict[str, Any]:
    contacts = value.get("contacts") or []
    for c in contacts:
        if (wa_id and c.get("wa_id") == wa_id) or (bsuid and c.get("user_id") == bsuid):
            return c
    return contacts[0] if len(contacts) == 1 else {}


def identity(value: Dict[str, Any], wa_id: Optional[str], bsuid: Optional[str]) -> Tuple[str, Dict[str, Any]]:
    """(address, metadata): the address is the wa_id, else the bsuid (a customer behind a username).
    The metadata keys are the contract with the action server (docs/contracts.md): ``user_id`` is
    the bsuid, under Meta's own name."""
    contact = _contact_for(value, wa_id, bsuid)
    wa_id = bounded(wa_id or contact.get("wa_id"), WA_ID, "phone (wa_id)")
    bsuid = bounded(bsuid or contact.get("user_id"), BSUID, "user_id")
    profile = contact.get("profile") or {}
    address = wa_id or bsuid
    if not address:
        raise NotificationError("no sender identity (wa_id or user_id)")
    meta = {"wa_id": wa_id, "user_id": bsuid, "profile_name": profile.get("name")}
    if profile.get("username") is not None:
        username, why = username_form(profile["username"])
        if username is None:
            logger.warning("whatsapp: dropped the username of a message from %s: %s",
                           "a phone" if wa_id else "a BSUID", why)
        else:
            meta["username"] = username
    return address, meta
