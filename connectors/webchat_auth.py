"""Verification of the identity token that the vendor's site gives to the website widget.

Pure helpers (no Rasa import) so the action server can share the same rules: the token is a
JWT signed with HS256 and the shared secret ``WEBCHAT_JWT_SECRET``; it must carry ``exp`` and a
subject (``sub`` = customer id, or ``email``); ``name`` is optional.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import jwt

ALGORITHM = "HS256"
# A token longer than this is refused before any parsing (JWTs from the vendor are small).
MAX_TOKEN_LENGTH = 4096
# Metadata keys a client could use to claim an identity; the connector never forwards them.
IDENTITY_KEYS = frozenset(
    {
        "auth_token",
        "token",
        "customer_id",
        "customer",
        "sub",
        "email",
        "name",
        "cnpj",
        "phone",
        "user",
        "user_id",
        "identity",
    }
)

# Refusal reasons (stable, English; the widget maps them to pt-BR text).
MISSING = "missing"
NO_SECRET = "no_secret"
MALFORMED = "malformed"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
NO_SUBJECT = "no_subject"


@dataclass(frozen=True)
class TokenCheck:
    """Outcome of verifying one token."""

    ok: bool
    reason: Optional[str] = None
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> Optional[str]:
        sub = self.claims.get("sub")
        if sub is not None and str(sub).strip():
            return str(sub)
        email = self.claims.get("email")
        return str(email) if email else None

    @property
    def display_name(self) -> Optional[str]:
        name = self.claims.get("name")
        return str(name)[:120] if isinstance(name, str) and name.strip() else None


def verify_token(
    token: Any, secret: Optional[str], *, now: Optional[float] = None, leeway: int = 0
) -> TokenCheck:
    """Verify a vendor-signed token; never raises for bad input."""
    if token is None or token == "":
        return TokenCheck(False, MISSING)
    if not secret:
        return TokenCheck(False, NO_SECRET)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        return TokenCheck(False, MALFORMED)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return TokenCheck(False, MALFORMED)
    if header.get("alg") != ALGORITHM:
        return TokenCheck(False, BAD_SIGNATURE)
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp"], "verify_aud": False},
            leeway=leeway,
        )
    except jwt.ExpiredSignatureError:
        return TokenCheck(False, EXPIRED)
    except jwt.InvalidSignatureError:
        return TokenCheck(False, BAD_SIGNATURE)
    except jwt.PyJWTError:
        return TokenCheck(False, MALFORMED)
    if now is not None and float(claims["exp"]) <= now - leeway:
        return TokenCheck(False, EXPIRED)
    check = TokenCheck(True, None, claims)
    if check.subject is None:
        return TokenCheck(False, NO_SUBJECT)
    return check


def sign_token(
    secret: str,
    *,
    sub: Optional[str] = None,
    email: Optional[str] = None,
    name: Optional[str] = None,
    ttl_seconds: int = 3600,
    now: Optional[float] = None,
) -> str:
    """Sign a token as the vendor's site would (used by the demo site, tests and benchmarks)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"iat": issued, "exp": issued + ttl_seconds}
    if sub is not None:
        claims["sub"] = str(sub)
    if email is not None:
        claims["email"] = email
    if name is not None:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
