"""The metadata of a visitor's message: what the client sent, and what goes on to Rasa.

Client metadata (``customData``) is untrusted: it is read only for the token
(``auth_token``), and nothing the client wrote in it is forwarded. Rasa gets harmless widget
facts and, for a verified token, this turn's attestation (:mod:`.identity`).
Pure: no Rasa, no socket.io import.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional

from atende_contract import consent
from atende_contract.attestation import METADATA_KEY as ATTESTATION_KEY
from atende_contract.webtoken import TokenCheck

from .identity import attest

logger = logging.getLogger(__name__)

MAX_METADATA_JSON = 16384  # characters of a JSON-string ``customData``; longer ones are ignored

# Metadata keys a client could use to claim an identity; the connector never forwards them.
IDENTITY_KEYS = frozenset(
    {"auth_token", "token", "customer_id", "customer", "sub", "email", "name", "cnpj", "phone",
     "user", "user_id", "identity", ATTESTATION_KEY}
)


def parse_metadata(raw: Any) -> Dict[str, Any]:
    """Client metadata as a dict (JSON strings accepted); anything else becomes {}."""
    if isinstance(raw, str):
        if len(raw) > MAX_METADATA_JSON:
            return {}
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return dict(raw) if isinstance(raw, dict) else {}


def forwarded_metadata(
    raw: Dict[str, Any],
    check: TokenCheck,
    *,
    client_id: Optional[str],
    quick_reply: bool,
    conversation_id: str,
    message_id: str,
    attestation_key: Optional[bytes],
    policy_url: Optional[str] = None,
) -> Dict[str, Any]:
    """Harmless widget facts and, for a verified token, this turn's identity attestation.

    Neither the token nor any identity the client wrote goes on to Rasa: the action server
    learns who is speaking only from the attestation, signed here after the token check.
    """
    metadata: Dict[str, Any] = {"website": {"client_id": client_id, "quick_reply": quick_reply}}
    proof = attest(attestation_key, check, conversation_id, message_id)
    if proof is not None:
        metadata[ATTESTATION_KEY] = proof
    # The visitor's consent (text version, policy URL), only as the contract cleans it; the action
    # server records it with its own clock. A forged or odd one is dropped, the message goes on.
    if consent.CUSTOM_DATA_KEY in raw:
        cleaned = consent.clean(raw[consent.CUSTOM_DATA_KEY], policy_url)
        if cleaned is not None:
            metadata[consent.METADATA_KEY] = cleaned
        else:
            logger.info("website chat: dropped a malformed consent object")
    dropped = sorted(key for key in raw if key in IDENTITY_KEYS and key != "auth_token")
    if dropped:
        logger.info("website chat: dropped client identity metadata %s", dropped)
    return metadata
