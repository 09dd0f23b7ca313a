"""atende_contract: the rules both environments share (ids, limits, tokens, attestation, URLs)."""
from __future__ import annotations

import time

import pytest

from atende_contract import attestation, channels, dburl, text

KEY = b"k" * 32


def sign(**overrides: object) -> dict:
    fields = {"channel": "whatsapp", "conversation_id": "whatsapp:5511987654321",
              "subject": "phone:5511987654321", "message_id": "wamid.1"}
    fields.update(overrides)
    return attestation.sign(KEY, **fields)  # type: ignore[arg-type]


def check(proof: object, **overrides: object) -> attestation.Verdict:
    args = {"conversation_id": "whatsapp:5511987654321", "channel": "whatsapp", "message_id": "wamid.1"}
    args.update(overrides)
    return attestation.verify(KEY, proof, **args)  # type: ignore[arg-type]


def test_an_attestation_proves_its_subject_for_its_turn_only() -> None:
    verdict = check(sign())
    assert verdict.ok and verdict.identity is not None
    assert (verdict.identity.kind, verdict.identity.value) == ("phone", "5511987654321")
    assert check(sign(), conversation_id="whatsapp:5511900000000").reason == attestation.WRONG_CONVERSATION
    assert check(sign(), channel="website").reason == attestation.WRONG_CHANNEL
    assert check(sign(), message_id="wamid.2").reason == attestation.WRONG_MESSAGE
    # the namespace of the conversation id names the only channel that may identify it
    web = sign(channel="website", conversation_id="whatsapp:5511987654321", subject="id:1")
    assert check(web, channel=None).reason == attestation.WRONG_CHANNEL
    assert check(None).reason == attestation.ABSENT
    assert attestation.verify(None, sign(), conversation_id="whatsapp:5511987654321",
                              channel="whatsapp").reason == attestation.NO_SECRET


@pytest.mark.parametrize("field, value", [
    ("sub", "phone:5511900000000"), ("cid", "whatsapp:5511900000000"), ("ch", "website"),
    ("mid", "wamid.9"), ("iat", 1), ("exp", 2_000_000_000), ("v", 2), ("sig", "0" * 64),
])
def test_any_edited_field_breaks_the_signature(field: str, value: object) -> None:
    proof = dict(sign(), **{field: value})
    assert not check(proof).ok


@pytest.mark.parametrize("proof", [
    "x", 5, [], {}, {"v": 1}, dict(sign(), iat=True), dict(sign(), exp="1"), dict(sign(), sub=""),
    dict(sign(), sub=["x"]), dict(sign(), mid="m" * 1000),
])
def test_malformed_attestations_are_refused_without_raising(proof: object) -> None:
    assert check(proof).reason in (attestation.MALFORMED, attestation.BAD_SIGNATURE)


def test_other_key_stale_future_and_expired_are_refused() -> None:
    other = attestation.sign(b"o" * 32, channel="whatsapp", conversation_id="whatsapp:5511987654321",
                             subject="phone:5511987654321", message_id="wamid.1")
    assert check(other).reason == attestation.BAD_SIGNATURE
    now = time.time()
    assert check(sign(now=now - 301)).reason == attestation.STALE
    assert check(sign(now=now + 3600)).reason == attestation.STALE
    assert check(sign(now=now - 10, expires_at=int(now) - 1)).reason == attestation.EXPIRED
    assert check(sign(subject="user:1")).reason == attestation.MALFORMED


def test_attestation_secret_must_be_long() -> None:
    assert attestation.key_from_env({}) is None
    with pytest.raises(attestation.AttestationConfigError, match="32"):
        attestation.key_from_env({"ATENDE_ATTESTATION_SECRET": "curta"})
    assert attestation.key_from_env({"ATENDE_ATTESTATION_SECRET": "x" * 32}) == b"x" * 32


def test_conversation_ids_are_namespaced_and_bounded() -> None:
    assert channels.conversation_id("whatsapp", "5511987654321") == "whatsapp:5511987654321"
    assert channels.conversation_id("website", "abc") == "web:abc"
    assert channels.conversation_id("rest", "whatsapp:5511") == "rest:whatsapp:5511"
    for bad in ("", "a b", "x" * 129, "a/b", "a?b", None, 5):
        with pytest.raises(channels.BadConversationId):
            channels.conversation_id("website", bad)  # type: ignore[arg-type]
    with pytest.raises(channels.BadConversationId):
        channels.conversation_id("sms", "1")
    assert channels.split("web:abc") == ("website", "abc")
    assert channels.split("5511987654321") == (None, "5511987654321")
    assert channels.split("other:1") == (None, "other:1")
    assert channels.local_id("whatsapp:55", "whatsapp") == "55"
    assert channels.local_id("55", "whatsapp") == "55"  # legacy bare id
    with pytest.raises(channels.BadConversationId):
        channels.local_id("web:abc", "whatsapp")
    assert channels.legacy_forms("whatsapp:55") == ("whatsapp:55", "55")
    assert channels.legacy_forms("55") == ("55",)


def test_neutralise_and_reserved_payloads() -> None:
    assert text.neutralise('/EXTERNAL_x{"a": 1}') == 'EXTERNAL_x{"a": 1}'
    assert text.neutralise(" \\/ //greet") == "greet"
    assert text.neutralise("oi /greet") == "oi /greet"
    assert text.is_reserved_payload("/EXTERNAL_agent_reply") and text.is_reserved_payload(" / external_x")
    assert not text.is_reserved_payload("/greet")


def test_database_url_forms(tmp_path: object) -> None:
    root = "/srv/atende"
    assert dburl.app_url("sqlite:///var/a.db", root) == "sqlite:////srv/atende/var/a.db"
    assert dburl.app_url("sqlite:////abs/a.db", root) == "sqlite:////abs/a.db"
    assert dburl.app_url("postgres://u:p@h:5433/d", root) == "postgresql+psycopg://u:p@h:5433/d"
    assert dburl.bot_url("postgresql+psycopg://u@h/d", root) == "postgresql://u@h/d"
    assert dburl.tracker_store_keys("postgresql://u:p%40ss@h:5433/d?sslmode=require", root) == {
        "dialect": "postgresql", "url": "h", "port": 5433, "db": "d", "username": "u", "password": "p@ss",
        "query": {"sslmode": "require"}}
    assert dburl.tracker_store_keys("sqlite:///var/a.db", root) == {"dialect": "sqlite", "db": "/srv/atende/var/a.db"}
    for bad in ("mysql://u@h/d", "not a url", "http://x"):
        with pytest.raises(dburl.BadDatabaseUrl):
            dburl.app_url(bad, root)


def test_alternative_identities_are_signed_with_the_subject() -> None:
    proof = sign(alt=["bsuid:BR.123abc"])
    verdict = check(proof)
    assert verdict.ok and verdict.identity is not None and verdict.identity.alt == (("bsuid", "BR.123abc"),)
    assert check(dict(proof, alt=["bsuid:BR.other"])).reason == attestation.BAD_SIGNATURE
    assert check(dict(sign(), alt=["bsuid:BR.added"])).reason == attestation.BAD_SIGNATURE
    for bad in (["nope"], ["bsuid:" + "x" * 300], ["user:1"]):
        assert check(sign(alt=bad)).reason == attestation.MALFORMED, bad
    assert len(sign(alt=["bsuid:a"] * 9)["alt"]) == attestation.MAX_ALT  # bounded when signed
