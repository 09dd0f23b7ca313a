"""Identity attestation: how a connector tells the action server who is speaking in this turn.

Only the component that verified an identity may assert it: the WhatsApp connector after the
webhook's signature check (the sender), the website connector after the token check (the token's
subject). It puts an attestation in the message metadata under :data:`METADATA_KEY`:

    {"v": 1, "ch": "whatsapp", "cid": "whatsapp:5511987654321", "sub": "phone:5511987654321",
     "mid": "wamid...", "iat": 1764633600, "exp": 1764633900, "sig": "<hex HMAC-SHA256>"}

``sig`` is an HMAC-SHA256, keyed by ``ATENDE_ATTESTATION_SECRET`` (held by the connectors and
the action server only), over the other fields. The action server accepts it only when the
signature matches, the channel and conversation are this turn's (and the conversation id's
namespace is that channel's), the message id is this turn's (when it knows it), it was issued
recently (``max_age_s``) and has not expired (a website attestation expires with its token).

Subjects: ``phone:<digits>`` and ``bsuid:<id>`` (WhatsApp), ``id:<customer id>`` and
``email:<address>`` (website). ``alt`` (signed too) lists other identities the same verified
source vouched for in this message: a WhatsApp delivery that carries both the phone and the
business-scoped user id attests ``phone:...`` with ``alt: ["bsuid:..."]``, which is how a BSUID
gets linked to the customer found by phone. Anything without a valid attestation is anonymous: Rasa's REST
channel, an ``input_channel`` a client wrote, metadata a client wrote, or a slot carried over
from an earlier turn.

``un`` (optional, signed when present) is the sender's WhatsApp username as Meta's signed delivery
carried it (``contacts[].profile.username``), in the canonical form of :func:`username_form`. It is
display-only data about the identity in ``sub``: it never identifies anyone. An attestation without
``un`` signs exactly the bytes it signed before the field existed, so older ones stay valid; adding,
removing or changing ``un`` breaks the signature; a ``un`` out of form makes the attestation malformed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from . import channels

METADATA_KEY = "atende_attestation"
VERSION = 1
MIN_SECRET_BYTES = 32
DEFAULT_MAX_AGE_S = 300
MAX_FIELD = 256
MAX_ALT = 4
SUBJECT_KINDS = ("phone", "bsuid", "lid", "id", "email")
# A WhatsApp username (Meta, "Business-scoped user IDs": user usernames follow the business username
# format): 3 to 35 English letters, digits, '.' and '_', at least one letter, no '.' first or last,
# no two '.' in a row. Case is ignored when Meta compares them: the canonical form is lower case.
USERNAME_MIN = 3
USERNAME_MAX = 35
_USERNAME = re.compile(r"[a-z0-9._]{%d,%d}" % (USERNAME_MIN, USERNAME_MAX))

# Why an attestation was refused (logs and tests; never shown to users).
ABSENT = "absent"
NO_SECRET = "no_secret"
MALFORMED = "malformed"
BAD_SIGNATURE = "bad_signature"
WRONG_CONVERSATION = "wrong_conversation"
WRONG_CHANNEL = "wrong_channel"
WRONG_MESSAGE = "wrong_message"
STALE = "stale"
EXPIRED = "expired"


class AttestationConfigError(ValueError):
    """An attestation secret the server must not start with."""


def check_secret(secret: Optional[str]) -> Optional[bytes]:
    """The key bytes of ``ATENDE_ATTESTATION_SECRET``; None when unset; raises when too short."""
    if not secret:
        return None
    key = secret.encode("utf-8")
    if len(key) < MIN_SECRET_BYTES:
        raise AttestationConfigError(
            f"ATENDE_ATTESTATION_SECRET has {len(key)} bytes; use at least {MIN_SECRET_BYTES} random bytes"
        )
    return key


def key_from_env(env: Mapping[str, str]) -> Optional[bytes]:
    return check_secret(env.get("ATENDE_ATTESTATION_SECRET"))


@dataclass(frozen=True)
class Identity:
    """A verified identity for one turn."""

    channel: str
    conversation_id: str
    kind: str  # one of SUBJECT_KINDS
    value: str
    message_id: str
    expires_at: int
    alt: tuple = ()  # ((kind, value), ...): other identities of the same sender
    username: Optional[str] = None  # display-only WhatsApp username (canonical), never an identity

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class Verdict:
    identity: Optional[Identity]
    reason: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.identity is not None


def username_form(raw: Any) -> tuple:
    """``(canonical, None)`` for a WhatsApp username (one leading '@' stripped, lower case), or
    ``(None, reason)`` when it is not one (the reason names the rule, never the value)."""
    if not isinstance(raw, str):
        return None, f"not a string ({type(raw).__name__})"
    text = raw[1:] if raw.startswith("@") else raw
    if not USERNAME_MIN <= len(text) <= USERNAME_MAX:
        return None, f"length {len(text)} outside {USERNAME_MIN}..{USERNAME_MAX}"
    if not text.isascii():
        return None, "characters other than English letters, digits, '.' and '_'"
    text = text.lower()
    if not _USERNAME.fullmatch(text):
        return None, "characters other than English letters, digits, '.' and '_'"
    if not any("a" <= ch <= "z" for ch in text):
        return None, "no letter"
    if text.startswith(".") or text.endswith(".") or ".." in text:
        return None, "a '.' first, last or twice in a row"
    return text, None


def _signed_bytes(fields: Mapping[str, Any]) -> bytes:
    body = {k: fields[k] for k in ("v", "ch", "cid", "sub", "mid", "iat", "exp")}
    body["alt"] = list(fields.get("alt") or [])
    if "un" in fields:  # absent: the bytes of an attestation made before the field existed
        body["un"] = fields["un"]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(
    key: bytes,
    *,
    channel: str,
    conversation_id: str,
    subject: str,
    message_id: str,
    now: Optional[float] = None,
    expires_at: Optional[int] = None,
    max_age_s: int = DEFAULT_MAX_AGE_S,
    alt: Sequence[str] = (),
    username: Optional[str] = None,
) -> dict:
    """An attestation for one message (``expires_at`` defaults to ``now + max_age_s``).

    ``username``: the sender's WhatsApp username from the verified delivery, signed as ``un`` in its
    canonical form; raises ValueError when it is not one (callers check :func:`username_form` first)."""
    issued = int(time.time() if now is None else now)
    fields: dict[str, Any] = {
        "v": VERSION,
        "ch": channel,
        "cid": conversation_id,
        "sub": subject,
        "mid": message_id,
        "iat": issued,
        "exp": int(expires_at) if expires_at is not None else issued + max_age_s,
    }
    if alt:
        fields["alt"] = [str(a) for a in list(alt)[:MAX_ALT]]
    if username is not None:
        canonical, why = username_form(username)
        if canonical is None:
            raise ValueError(f"not a WhatsApp username: {why}")
        fields["un"] = canonical
    fields["sig"] = hmac.new(key, _signed_bytes(fields), hashlib.sha256).hexdigest()
    return fields


def verify(
    key: Optional[bytes],
    attestation: Any,
    *,
    conversation_id: str,
    channel: Optional[str],
    message_id: Optional[str] = None,
    now: Optional[float] = None,
    max_age_s: int = DEFAULT_MAX_AGE_S,
) -> Verdict:
    """The identity an attestation proves for this turn, or why it proves none. Never raises."""
    if attestation is None:
        return Verdict(None, ABSENT)
    if key is None:
        return Verdict(None, NO_SECRET)
    if not isinstance(attestation, dict):
        return Verdict(None, MALFORMED)
    fields = attestation
    str_fields = ("ch", "cid", "sub", "mid", "sig")
    if fields.get("v") != VERSION or any(
        not isinstance(fields.get(k), str) or not fields.get(k) or len(fields[k]) > MAX_FIELD for k in str_fields
    ):
        return Verdict(None, MALFORMED)
    if any(isinstance(fields.get(k), bool) or not isinstance(fields.get(k), int) for k in ("iat", "exp")):
        return Verdict(None, MALFORMED)
    # a signed username is checked like the rest (bounded before it is hashed); only its canonical form
    if "un" in fields and (not isinstance(fields["un"], str) or len(fields["un"]) > USERNAME_MAX
                           or username_form(fields["un"])[0] != fields["un"]):
        return Verdict(None, MALFORMED)
    expected = hmac.new(key, _signed_bytes(fields), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["sig"]):
        return Verdict(None, BAD_SIGNATURE)
    if fields["cid"] != conversation_id:
        return Verdict(None, WRONG_CONVERSATION)
    # The conversation id's namespace names the only channel that may identify it.
    if channels.channel_of(conversation_id) != fields["ch"] or (channel is not None and channel != fields["ch"]):
        return Verdict(None, WRONG_CHANNEL)
    if message_id is not None and fields["mid"] != message_id:
        return Verdict(None, WRONG_MESSAGE)
    now = time.time() if now is None else now
    if fields["iat"] > now + 60 or now - fields["iat"] > max_age_s:
        return Verdict(None, STALE)
    if fields["exp"] <= now:
        return Verdict(None, EXPIRED)
    parsed = [_subject(fields["sub"])]
    raw_alt = fields.get("alt", [])
    if not isinstance(raw_alt, list) or len(raw_alt) > MAX_ALT:
        return Verdict(None, MALFORMED)
    parsed += [_subject(a) for a in raw_alt]
    if any(p is None for p in parsed):
        return Verdict(None, MALFORMED)
    (kind, value), alt = parsed[0], tuple(parsed[1:])  # type: ignore[misc]
    return Verdict(Identity(fields["ch"], fields["cid"], kind, value, fields["mid"], fields["exp"], alt,
                            fields.get("un")))


def _subject(raw: Any) -> Optional[tuple]:
    """``(kind, value)`` of ``kind:value``, or None when malformed."""
    if not isinstance(raw, str) or len(raw) > MAX_FIELD:
        return None
    kind, sep, value = raw.partition(":")
    if not sep or kind not in SUBJECT_KINDS or not value:
        return None
    return kind, value
