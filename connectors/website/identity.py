"""Who is speaking on a website socket: the token check's answer to the widget, and the
identity attestation that tells the action server.

The connector verifies the vendor-signed token (:mod:`atende_contract.webtoken`) on every
message; the token itself never goes on to Rasa. For a verified one it signs an attestation
(:mod:`atende_contract.attestation`) bound to this conversation and this message, and that is
all the action server trusts. Pure: no Rasa, no socket.io import.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

from atende_contract import attestation, channels
from atende_contract.webtoken import MISSING, TokenCheck


def auth_status(check: TokenCheck) -> Dict[str, Any]:
    """The ``auth_status`` event's payload for a token check."""
    if check.ok:
        return {"status": "verified", "name": check.display_name}
    if check.reason == MISSING:
        return {"status": "anonymous"}
    return {"status": "refused", "reason": check.reason}


def attest(
    key: Optional[bytes], check: TokenCheck, conversation_id: str, message_id: str
) -> Optional[Dict[str, Any]]:
    """The attestation of one verified message, or None (no key, or no verified subject).

    It expires with the token, and never later than the attestation's own maximum age.
    """
    if not check.ok or key is None or check.subject is None:
        return None
    now = time.time()
    expires = min(int(check.expires_at or now), int(now) + attestation.DEFAULT_MAX_AGE_S)
    return attestation.sign(
        key, channel=channels.WEBSITE, conversation_id=conversation_id, subject=check.subject,
        message_id=message_id, now=now, expires_at=expires,
    )
