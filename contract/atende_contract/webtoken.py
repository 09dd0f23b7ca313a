"""The website token: a JWT (HS256) that the vendor's site signs for a logged-in customer.

One policy, one check, used by the website connector (which verifies the token of every message
and then attests the subject) and by anything else that must read such a token:

- signature HS256 with ``WEBCHAT_JWT_SECRET`` (at least 32 bytes, or the server does not start);
- ``exp`` required and in the future; ``iat`` required when a lifetime cap applies, and
  ``exp - iat`` at most ``WEBCHAT_JWT_MAX_LIFETIME_HOURS`` (default 24);
- ``iss`` and ``aud`` checked when ``WEBCHAT_JWT_ISSUER`` / ``WEBCHAT_JWT_AUDIENCE`` are set; a
  token that carries an ``aud`` is accepted only when an audience is configured and matches;
- a subject: ``sub`` (the customer id) or ``email``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import jwt

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
MAX_TOKEN_LENGTH = 4096
DEFAULT_MAX_LIFETIME_S = 24 * 3600

# Refusal reasons (stable, English; the widget maps them to pt-BR text).
MISSING = "missing"
NO_SECRET = "no_secret"
MALFORMED = "malformed"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
NO_SUBJECT = "no_subject"
BAD_ISSUER = "bad_issuer"
BAD_AUDIENCE = "bad_audience"
TOO_LONG_LIVED = "too_long_lived"


class TokenConfigError(ValueError):
    """A token configuration the server must not start with."""


@dataclass(frozen=True)
class TokenPolicy:
    secret: Optional[str]
    issuer: Optional[str] = None
    audience: Optional[str] = None
    max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S
    leeway_s: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str], secret: Optional[str] = None) -> "TokenPolicy":
        """The policy from ``WEBCHAT_JWT_*`` variables; raises :class:`TokenConfigError` when unsafe."""
        raw_secret = secret if secret is not None else env.get("WEBCHAT_JWT_SECRET")
        hours_raw = env.get("WEBCHAT_JWT_MAX_LIFETIME_HOURS", "") or str(DEFAULT_MAX_LIFETIME_S // 3600)
        try:
            hours = float(hours_raw)
        except ValueError as exc:
            raise TokenConfigError("WEBCHAT_JWT_MAX_LIFETIME_HOURS must be a number of hours") from exc
        if hours <= 0:
            raise TokenConfigError("WEBCHAT_JWT_MAX_LIFETIME_HOURS must be > 0")
        policy = cls(
            secret=raw_secret or None,
            issuer=(env.get("WEBCHAT_JWT_ISSUER") or "").strip() or None,
            audience=(env.get("WEBCHAT_JWT_AUDIENCE") or "").strip() or None,
            max_lifetime_s=int(hours * 3600),
        )
        policy.validate()
        return policy

    def validate(self) -> None:
        if self.secret is not None and len(self.secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise TokenConfigError(
                f"WEBCHAT_JWT_SECRET has {len(self.secret.encode('utf-8'))} bytes; use at least "
                f"{MIN_SECRET_BYTES} random bytes (for example: python3 -c "
                "'import secrets; print(secrets.token_urlsafe(48))')"
            )


@dataclass(frozen=True)
class TokenCheck:
    """Outcome of verifying one token."""

    ok: bool
    reason: Optional[str] = None
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> Optional[str]:
        """``id:<sub>`` or ``email:<address>``: the identity the token asserts."""
        sub = self.claims.get("sub")
        if isinstance(sub, (str, int)) and not isinstance(sub, bool) and str(sub).strip():
            value = str(sub).strip()
            return f"email:{value.lower()}" if "@" in value else f"id:{value}"
        email = self.claims.get("email")
        if isinstance(email, str) and "@" in email:
            return f"email:{email.strip().lower()}"
        return None

    @property
    def expires_at(self) -> Optional[int]:
        exp = self.claims.get("exp")
        return int(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None

    @property
    def display_name(self) -> Optional[str]:
        name = self.claims.get("name")
        return str(name)[:120] if isinstance(name, str) and name.strip() else None


def verify_token(token: Any, policy: TokenPolicy, *, now: Optional[float] = None) -> TokenCheck:
    """Verify a vendor-signed token under ``policy``; never raises for bad input."""
    if token is None or token == "":
        return TokenCheck(False, MISSING)
    if not policy.secret:
        return TokenCheck(False, NO_SECRET)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        return TokenCheck(False, MALFORMED)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return TokenCheck(False, MALFORMED)
    if header.get("alg") != ALGORITHM:
        return TokenCheck(False, BAD_SIGNATURE)
    now = time.time() if now is None else now
    try:
        # Time claims are checked below against `now` (so a test can move the clock).
        claims = jwt.decode(
            token, policy.secret, algorithms=[ALGORITHM],
            options={"require": ["exp"], "verify_exp": False, "verify_iat": False,
                     "verify_nbf": False, "verify_aud": False, "verify_iss": False},
        )
    except jwt.InvalidSignatureError:
        return TokenCheck(False, BAD_SIGNATURE)
    except jwt.PyJWTError:
        return TokenCheck(False, MALFORMED)
    if not isinstance(claims, dict):
        return TokenCheck(False, MALFORMED)
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    for value in (exp, iat, nbf):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return TokenCheck(False, MALFORMED)
    if float(exp) <= now - policy.leeway_s:
        return TokenCheck(False, EXPIRED)
    if nbf is not None and float(nbf) > now + policy.leeway_s:
        return TokenCheck(False, EXPIRED)
    if policy.max_lifetime_s:
        if iat is None or float(iat) > now + 60 + policy.leeway_s:
            return TokenCheck(False, TOO_LONG_LIVED)
        if float(exp) - float(iat) > policy.max_lifetime_s:
            return TokenCheck(False, TOO_LONG_LIVED)
    if policy.issuer is not None and claims.get("iss") != policy.issuer:
        return TokenCheck(False, BAD_ISSUER)
    aud = claims.get("aud")
    if policy.audience is not None:
        audiences = aud if isinstance(aud, list) else [aud]
        if policy.audience not in audiences:
            return TokenCheck(False, BAD_AUDIENCE)
    elif aud is not None:
        # A token minted for some other audience is not for this chat.
        return TokenCheck(False, BAD_AUDIENCE)
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
    issuer: Optional[str] = None,
    audience: Optional[str] = None,
) -> str:
    """Sign a token as the vendor's site would (the demo site, tests and benchmarks use it)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"iat": issued, "exp": issued + ttl_seconds}
    if sub is not None:
        claims["sub"] = str(sub)
    if email is not None:
        claims["email"] = email
    if name is not None:
        claims["name"] = name
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
