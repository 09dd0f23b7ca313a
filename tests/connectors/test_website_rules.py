"""Pure rules of the website chat: token checks, settings, origins, text hygiene, rate, replay."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jwt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (bot env)

from atende_contract.webtoken import TokenConfigError, TokenPolicy, sign_token
from atende_contract.webtoken import verify_token as _verify
from connectors.webchat_rules import (
    ConfigError,
    SessionStore,
    TokenBucket,
    WebsiteSettings,
    neutralise_typed_text,
    parse_metadata,
    parse_origins,
)

SECRET = "s3gredo-compartilhado-com-o-site-do-fornecedor"
OTHER = "outro-segredo-de-32-bytes-ou-mais-xxxxxxxx"


def verify_token(token: object, secret: object = SECRET, **policy: object):  # type: ignore[no-untyped-def]
    return _verify(token, TokenPolicy(secret, **policy))  # type: ignore[arg-type]


def test_token_signed_by_the_vendor_is_accepted() -> None:
    check = verify_token(sign_token(SECRET, sub="42", name="Maria"), SECRET)
    assert check.ok and check.subject == "id:42" and check.display_name == "Maria"
    by_email = verify_token(sign_token(SECRET, email="Ana@example.com"), SECRET)
    assert by_email.ok and by_email.subject == "email:ana@example.com"


@pytest.mark.parametrize(
    "token, reason",
    [
        (None, "missing"),
        ("", "missing"),
        (12345, "malformed"),
        ("a.b", "malformed"),
        ("x" * 5000, "malformed"),
        (sign_token(SECRET, sub="1", ttl_seconds=-10), "expired"),
        (sign_token(OTHER, sub="1"), "bad_signature"),
        (jwt.encode({"sub": "1", "exp": int(time.time()) + 60}, None, algorithm="none"), "bad_signature"),
        (jwt.encode({"sub": "1"}, SECRET, algorithm="HS256"), "malformed"),  # no exp
        (sign_token(SECRET, name="Sem id"), "no_subject"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(token: object, reason: str) -> None:
    check = verify_token(token, SECRET)
    assert not check.ok and check.reason == reason


def test_without_a_secret_every_token_is_refused() -> None:
    assert verify_token(sign_token(SECRET, sub="1"), None).reason == "no_secret"


def test_jwt_policy_issuer_audience_and_lifetime() -> None:
    """iss/aud checked when configured (the same check in every process); lifetime capped."""
    now = time.time()
    good = sign_token(SECRET, sub="1", issuer="https://loja.example", audience="atende")
    assert verify_token(good, issuer="https://loja.example", audience="atende").ok
    assert verify_token(good, issuer="https://outra.example").reason == "bad_issuer"
    assert verify_token(good, audience="outro").reason == "bad_audience"
    # a token minted for some audience is not accepted where none is configured
    assert verify_token(good).reason == "bad_audience"
    week = sign_token(SECRET, sub="1", ttl_seconds=7 * 24 * 3600)
    assert verify_token(week).reason == "too_long_lived"
    assert verify_token(week, max_lifetime_s=8 * 24 * 3600).ok
    no_iat = jwt.encode({"sub": "1", "exp": int(now) + 60}, SECRET, algorithm="HS256")
    assert verify_token(no_iat).reason == "too_long_lived"
    future_iat = jwt.encode({"sub": "1", "iat": int(now) + 3600, "exp": int(now) + 7200}, SECRET, algorithm="HS256")
    assert verify_token(future_iat).reason == "too_long_lived"
    bool_exp = jwt.encode({"sub": "1", "iat": int(now), "exp": True}, SECRET, algorithm="HS256")
    assert verify_token(bool_exp).reason == "malformed"


def test_short_secrets_and_bad_lifetimes_stop_the_server() -> None:
    with pytest.raises(TokenConfigError, match="32"):
        TokenPolicy.from_env({"WEBCHAT_JWT_SECRET": "curto"})
    with pytest.raises(ConfigError, match="32"):
        WebsiteSettings.from_sources({}, {"WEBCHAT_JWT_SECRET": "x" * 31})
    with pytest.raises(TokenConfigError):
        TokenPolicy.from_env({"WEBCHAT_JWT_SECRET": SECRET, "WEBCHAT_JWT_MAX_LIFETIME_HOURS": "0"})
    policy = TokenPolicy.from_env({"WEBCHAT_JWT_SECRET": SECRET, "WEBCHAT_JWT_ISSUER": "i",
                                   "WEBCHAT_JWT_AUDIENCE": "a", "WEBCHAT_JWT_MAX_LIFETIME_HOURS": "2"})
    assert (policy.issuer, policy.audience, policy.max_lifetime_s) == ("i", "a", 7200)


def test_origins_list_never_accepts_a_wildcard() -> None:
    assert parse_origins("https://www.Example.com, http://localhost:8080/") == (
        "https://www.example.com",
        "http://localhost:8080",
    )
    for bad in ("*", "https://*.example.com", "ftp://x.com", "https://x.com/path", "example.com"):
        with pytest.raises(ConfigError):
            parse_origins(bad)
    with pytest.raises(ConfigError):
        WebsiteSettings.from_sources({}, {"WEBCHAT_ALLOWED_ORIGINS": "*"})


def test_origin_check_explicit_list_and_development_default() -> None:
    prod = WebsiteSettings.from_sources({}, {"WEBCHAT_ALLOWED_ORIGINS": "https://www.example.com"})
    assert prod.origin_allowed("https://www.example.com")
    assert not prod.origin_allowed("https://evil.example")
    assert not prod.origin_allowed("http://localhost:8080")
    dev = WebsiteSettings.from_sources({}, {})
    assert dev.allowed_origins == ()
    assert dev.origin_allowed("http://localhost:8080") and dev.origin_allowed("http://127.0.0.1:1234")
    assert not dev.origin_allowed("https://evil.example")
    assert not dev.origin_allowed("http://localhost.evil.example")


def test_settings_read_from_credentials_then_environment() -> None:
    env = {"WEBCHAT_JWT_SECRET": "env-secret-of-at-least-32-bytes-xxxxx", "WEBCHAT_MAX_MESSAGE_CHARS": "500"}
    settings = WebsiteSettings.from_sources({"rate_burst": 3}, env)
    assert settings.jwt_secret == "env-secret-of-at-least-32-bytes-xxxxx"
    assert settings.max_message_chars == 500 and settings.rate_burst == 3
    assert settings.session_persistence is True and settings.socketio_path == "/socket.io"
    with pytest.raises(ConfigError):
        WebsiteSettings.from_sources({"max_message_chars": 0}, {})
    with pytest.raises(ConfigError):
        WebsiteSettings.from_sources({"socketio_path": "socket.io"}, {})


@pytest.mark.parametrize(
    "typed, forwarded",
    [
        ("/request_human", "request_human"),
        ("  //greet{\"sub\": \"1\"}", "greet{\"sub\": \"1\"}"),
        ("\\/x", "x"),
        ("preciso de ajuda / suporte", "preciso de ajuda / suporte"),
    ],
)
def test_typed_text_can_never_start_with_a_slash(typed: str, forwarded: str) -> None:
    assert neutralise_typed_text(typed) == forwarded


def test_metadata_parsing_is_forgiving() -> None:
    assert parse_metadata('{"auth_token": "x"}') == {"auth_token": "x"}
    assert parse_metadata("not json") == {} and parse_metadata(["a"]) == {}
    assert parse_metadata(None) == {}


def test_token_bucket_burst_then_refill() -> None:
    bucket = TokenBucket(5, 1.0)
    t0 = bucket.updated
    assert [bucket.take(t0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert bucket.take(t0 + 1.01) and not bucket.take(t0 + 1.02)


def test_replay_returns_only_messages_after_the_last_seen_id() -> None:
    store = SessionStore(WebsiteSettings.from_sources({}, {}))
    state = store.get("sessao-abcdef12")
    sent = [state.record_sent(store.epoch, {"text": f"m{i}"}) for i in range(3)]
    assert [m["text"] for m in state.replay_after(store.epoch, sent[0]["mid"])] == ["m1", "m2"]
    assert state.replay_after(store.epoch, sent[2]["mid"]) == []
    assert state.replay_after(store.epoch, "outraepoca-1") == []
    assert state.remember_client_id("c1") and not state.remember_client_id("c1")


def test_only_offered_or_configured_payloads_are_allowed() -> None:
    store = SessionStore(WebsiteSettings.from_sources({"allowed_payloads": ["/request_human"]}, {}))
    state = store.get("sessao-abcdef12")
    assert store.payload_allowed("sessao-abcdef12", "/request_human")
    assert not store.payload_allowed("sessao-abcdef12", "/comprar")
    state.offer_payloads(["/comprar"])
    assert store.payload_allowed("sessao-abcdef12", "/comprar")
    assert not store.payload_allowed("outra-sessao-1", "/comprar")
