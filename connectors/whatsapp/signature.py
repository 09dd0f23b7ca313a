"""X-Hub-Signature-256 verification for WhatsApp Cloud API webhooks (pure, stdlib only)."""

from __future__ import annotations

import hashlib
import hmac
from enum import Enum
from typing import Optional

SIGNATURE_PREFIX = "sha256="


class SignatureCheck(Enum):
    OK = "ok"
    MISSING = "missing"  # -> 401
    INVALID = "invalid"  # -> 403


def sign(body: bytes, app_secret: str) -> str:
    """The header value Meta sends for ``body``: ``sha256=<hex hmac>``."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def check_signature(body: bytes, header: Optional[str], app_secret: str) -> SignatureCheck:
    """Compare the header with the HMAC-SHA256 of the raw body in constant time."""
    if not header or not header.strip():
        return SignatureCheck.MISSING
    expected = sign(body, app_secret).encode("ascii")
    given = header.strip().encode("utf-8", "replace")
    # compare_digest runs in time independent of where the strings differ.
    if hmac.compare_digest(expected, given):
        return SignatureCheck.OK
    return SignatureCheck.INVALID


def tokens_equal(given: Optional[str], expected: str) -> bool:
    """Constant-time comparison for the verify token of the GET handshake."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
