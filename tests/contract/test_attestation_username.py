"""The optional signed WhatsApp username (``un``) of an identity attestation: display-only data the
gateway signs from Meta's delivery. Old attestations (without it) stay valid; adding, changing or
removing it breaks the signature; one out of form or too long makes the attestation malformed."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from atende_contract import attestation

KEY = b"k" * 32
CONV = "whatsapp:BR.13491208655302741918"


def sign(**overrides: object) -> dict:
    fields = {"channel": "whatsapp", "conversation_id": CONV, "subject": "bsuid:BR.13491208655302741918",
              "message_id": "wamid.1"}
    fields.update(overrides)
    return attestation.sign(KEY, **fields)  # type: ignore[arg-type]


def check(proof: object) -> attestation.Verdict:
    return attestation.verify(KEY, proof, conversation_id=CONV, channel="whatsapp", message_id="wamid.1")


def resign(fields: dict) -> dict:
    """``fields`` signed again with the real key over every field but ``sig``, as a forger with the
    key would: proves verify's own form checks, not only the signature, refuse a bad ``un``."""
    body = {k: fields[k] for k in ("v", "ch", "cid", "sub", "mid", "iat", "exp")}
    body["alt"] = list(fields.get("alt") or [])
    if "un" in fields:
        body["un"] = fields["un"]
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return {**fields, "sig": hmac.new(KEY, raw, hashlib.sha256).hexdigest()}


def test_a_signed_username_round_trips_in_its_canonical_form() -> None:
    proof = sign(username="@Ana.Padaria")
    assert proof["un"] == "ana.padaria"
    verdict = check(proof)
    assert verdict.ok and verdict.identity is not None
    assert (verdict.identity.kind, verdict.identity.username) == ("bsuid", "ana.padaria")


def test_without_the_field_nothing_changes_and_old_attestations_stay_valid() -> None:
    proof = sign()
    assert "un" not in proof
    verdict = check(proof)
    assert verdict.ok and verdict.identity is not None and verdict.identity.username is None
    # an attestation made before the field existed: the signature over the old byte layout
    old = {k: v for k, v in proof.items() if k != "sig"}
    raw = json.dumps({**{k: old[k] for k in ("v", "ch", "cid", "sub", "mid", "iat", "exp")}, "alt": []},
                     sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    old["sig"] = hmac.new(KEY, raw, hashlib.sha256).hexdigest()
    assert old["sig"] == proof["sig"] and check(old).ok


@pytest.mark.parametrize("tamper", [
    lambda p: p.update(un="maria.souza"),         # changed
    lambda p: p.pop("un"),                        # removed
    lambda p: p.update(un="ana.padaria "),        # padded
])
def test_tampering_with_the_username_breaks_the_signature(tamper) -> None:  # type: ignore[no-untyped-def]
    proof = sign(username="ana.padaria")
    tamper(proof)
    assert check(proof).reason in (attestation.BAD_SIGNATURE, attestation.MALFORMED)
    assert not check(proof).ok


def test_a_username_added_to_an_attestation_without_one_breaks_the_signature() -> None:
    proof = sign()
    proof["un"] = "ana.padaria"
    assert check(proof).reason == attestation.BAD_SIGNATURE


@pytest.mark.parametrize("bad", [
    "a" * 36,             # over-long
    "x" * 5000,           # far over-long
    "Ana.Padaria",        # not canonical (the gateway signs lower case)
    "@ana",               # not canonical (no '@' in the signed form)
    "ana padaria",        # space
    "ana<b>",             # markup
    "ana..padaria",       # two dots
    ".ana",               # leading dot
    "12345",              # no letter
    "ab",                 # too short
    "anã",                # non-English letter
    17,                   # not a string
    None,                 # null
    ["ana"],              # a list
])
def test_a_signed_username_out_of_form_makes_the_attestation_malformed(bad: object) -> None:
    proof = resign({**sign(username="ana.padaria"), "un": bad})
    assert check(proof).reason == attestation.MALFORMED


@pytest.mark.parametrize("bad", ["a" * 36, "ana padaria", "x", "123", "ana..b", "@@ana", "ana\u200b", ""])
def test_sign_refuses_a_username_out_of_form(bad: str) -> None:
    with pytest.raises(ValueError):
        sign(username=bad)


@pytest.mark.parametrize("raw,canonical", [
    ("@ana.padaria", "ana.padaria"), ("ana_padaria", "ana_padaria"), ("Joao123", "joao123"),
    ("abc", "abc"), ("a" * 35, "a" * 35), ("@" + "b" * 35, "b" * 35), ("x_1.y", "x_1.y"),
])
def test_the_username_form_follows_metas_rules(raw: str, canonical: str) -> None:
    assert attestation.username_form(raw) == (canonical, None)


@pytest.mark.parametrize("raw", ["@@ana", "ana@x", "ana-b", "ana.", "a..b", "_1_", "1.2.3", "ＡＮＡ", "ana\n",
                                 "a" * 36, "ab", "", "@", 3, None, b"ana"])
def test_the_username_form_refuses_everything_else_with_a_reason(raw: object) -> None:
    value, why = attestation.username_form(raw)
    assert value is None and why
