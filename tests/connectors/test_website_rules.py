"""Pure rules of the website chat (connectors/website/): token checks, settings, origins, text
hygiene, limits, sessions, sockets, replay and message shapes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jwt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (bot env)

from atende_contract.webtoken import TokenConfigError, TokenPolicy, sign_token
from atende_contract.webtoken import verify_token as _verify
from connectors.website.cors import OriginsError, parse_origins
from connectors.website.history import ReplayBuffer
from connectors.website.limits import AddressLimits, TokenBucket, client_address
from connectors.website.messages import neutralise_typed_text
from connectors.website.metadata import parse_metadata
from connectors.website.sessions import (
    UNKNOWN_OWNER,
    BadSessionId,
    SessionStore,
    session_id_in_url,
    stored_owner,
)
from connectors.website.settings import ConfigError, WebsiteSettings
from connectors.website.shapes import rasa_shaped, website_shaped
from connectors.website.sockets import SocketRegistry

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
        with pytest.raises(OriginsError):
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
    sent = [state.history.record({"text": f"m{i}"}) for i in range(3)]
    assert [m["text"] for m in state.history.after(sent[0]["mid"])] == ["m1", "m2"]
    assert state.history.after(sent[2]["mid"]) == []
    assert state.history.after("outraepoca-1") == []
    assert state.remember_client_id("c1") and not state.remember_client_id("c1")


def test_only_offered_or_configured_payloads_are_allowed() -> None:
    store = SessionStore(WebsiteSettings.from_sources({"allowed_payloads": ["/request_human"]}, {}))
    state = store.get("sessao-abcdef12")
    assert store.payload_allowed("sessao-abcdef12", "/request_human")
    assert not store.payload_allowed("sessao-abcdef12", "/comprar")
    state.offer_payloads(["/comprar"])
    assert store.payload_allowed("sessao-abcdef12", "/comprar")
    assert not store.payload_allowed("outra-sessao-1", "/comprar")


@pytest.mark.parametrize(
    "last_mid",
    [None, 7, "", "-", "sem-numero", "epoca-²", "epoca-" + "9" * 5000, "epoca--1", ["epoca-1"]],
)
def test_a_malformed_replay_cursor_replays_nothing_and_raises_nothing(last_mid: object) -> None:
    buffer = ReplayBuffer("epoca", 10)
    buffer.record({"text": "m1"})
    assert buffer.after(last_mid) == []
    assert [m["text"] for m in buffer.after("epoca-0")] == ["m1"]


def test_the_replay_buffer_keeps_only_its_last_messages_and_stamps_unique_ids() -> None:
    buffer = ReplayBuffer("epoca", 3)
    mids = [buffer.record({"text": f"m{i}"})["mid"] for i in range(5)]
    assert len(set(mids)) == 5 and mids[0] == "epoca-1"
    assert [m["text"] for m in buffer.after("epoca-0")] == ["m2", "m3", "m4"]


@pytest.mark.parametrize("key", ["rate_per_second", "ip_rate_per_second"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "rápido", None])
def test_bad_rates_stop_the_server(key: str, value: object) -> None:
    with pytest.raises(ConfigError):
        WebsiteSettings.from_sources({key: value}, {})


@pytest.mark.parametrize(
    "query, expected",
    [("", None), ("EIO=4&transport=polling", None), ("session_id=abcdefgh12", "abcdefgh12")],
)
def test_the_session_id_of_a_connection_url(query: str, expected: object) -> None:
    assert session_id_in_url({"QUERY_STRING": query}) == expected


@pytest.mark.parametrize(
    "query",
    ["session_id=", "session_id=curto", "session_id=abcdefgh12&session_id=abcdefgh13",
     "session_id=%2E%2E%2Fetc%2Fpasswd", "session_id=" + "a" * 65, "session_id=a%C3%A7%C3%A3o-inv%C3%A1lida"],
)
def test_a_malformed_session_id_in_the_url_is_refused(query: str) -> None:
    with pytest.raises(BadSessionId):
        session_id_in_url({"QUERY_STRING": query})


def test_socket_registry_forgets_a_socket_entirely() -> None:
    sockets = SocketRegistry()
    sockets.address["s1"] = "10.0.0.1"
    sockets.session["s1"] = "sessao-abcdef12"
    sockets.url_session["s1"] = "sessao-abcdef12"
    sockets.mark_plain("s1", "sessao-abcdef12")
    sockets.mark_plain("s2", "sessao-abcdef12")
    assert sockets.plain_sockets("sessao-abcdef12") == ["s1", "s2"]
    sockets.mark_plain("s2", "outra-sessao-1")  # a stock client that asked for another session
    assert sockets.plain_sockets("sessao-abcdef12") == ["s1"]
    assert sockets.forget("s1") == "10.0.0.1"
    assert not sockets.is_plain("s1") and sockets.plain_sockets("sessao-abcdef12") == []
    assert (sockets.address, sockets.session, sockets.url_session) == ({}, {}, {})
    assert sockets.forget("nunca-visto") is None


def test_address_limits_count_sockets_and_release_them() -> None:
    limits = AddressLimits(WebsiteSettings.from_sources({"max_sockets_per_ip": 2}, {}))
    assert limits.open_socket("10.0.0.1") and limits.open_socket("10.0.0.1")
    assert not limits.open_socket("10.0.0.1") and limits.open_socket("10.0.0.2")
    limits.close_socket("10.0.0.1")
    assert limits.open_socket("10.0.0.1")
    for _ in range(5):
        limits.close_socket("10.0.0.2")  # closing more than opened never goes below zero
    assert "10.0.0.2" not in limits.sockets


def test_the_client_address_behind_trusted_proxies_only() -> None:
    header = {"REMOTE_ADDR": "10.0.0.9", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.5"}
    assert client_address(header, ()) == "10.0.0.9"  # an untrusted peer's header is ignored
    assert client_address(header, ("10.0.0.9",)) == "203.0.113.5"
    assert client_address(header, ("10.0.0.9", "203.0.113.5")) == "6.6.6.6"
    assert client_address({"REMOTE_ADDR": "10.0.0.9"}, ("10.0.0.9",)) == "10.0.0.9"


def test_a_bot_message_in_the_widgets_shape() -> None:
    assert website_shaped({}) == {} and website_shaped({"buttons": [{"title": "x"}]}) == {}
    shaped = website_shaped({
        "text": "Olá", "buttons": [{"title": "Sim", "payload": "/sim"}, "lixo", {"title": "sem payload"}],
        "custom": {"sources": [{"title": "Manual", "url": "https://docs.example/a"}]},
        "image": "https://img.example/x.png",
    })
    assert shaped == {
        "text": "Olá",
        "quick_replies": [{"content_type": "text", "title": "Sim", "payload": "/sim"}],
        "custom": {"sources": [{"title": "Manual", "url": "https://docs.example/a"}]},
        "attachment": {"type": "image", "payload": {"src": "https://img.example/x.png"}},
    }


def test_a_bot_message_in_rasas_own_shapes_for_stock_clients() -> None:
    stamped = {
        "text": "Veja:", "mid": "e-1", "notice": True,
        "custom": {"sources": [{"title": "Manual [v2]", "url": "https://docs.example/a"},
                               {"title": "Sem link", "url": "javascript:alert(1)"}, "lixo"],
                   "extra": 1},
        "attachment": {"type": "image", "payload": {"src": "https://img.example/x.png"}},
    }
    assert rasa_shaped(stamped) == [
        # brackets cannot break the markdown link; a non-http(s) url gives the bare title
        {"text": "Veja:\n\nFontes:\n- [Manual  v2](https://docs.example/a)\n- Sem link"},
        {"attachment": {"type": "image", "payload": {"src": "https://img.example/x.png"}}},
        {"extra": 1},
    ]
    already = {"text": "Resposta\n\nFontes:\n- manual", "custom": {"sources": [{"title": "M", "url": "https://x.example"}]}}
    assert rasa_shaped(already) == [{"text": "Resposta\n\nFontes:\n- manual"}]


async def _owner_of(store: object, conversation_id: str) -> object:
    return await stored_owner(store, conversation_id)


def test_the_owner_of_a_stored_conversation_fails_closed() -> None:
    import asyncio

    from rasa.core.tracker_store import InMemoryTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from atende_contract.attestation import METADATA_KEY

    store = InMemoryTrackerStore(Domain.empty())
    cases = {
        "web:atestada1": ([{"sub": "id:42"}, None], "id:42"),  # the last attested message wins
        "web:semsujeito": ([{"sub": 42}], UNKNOWN_OWNER),
        "web:anonima01": ([None], None),
    }
    for conversation, (proofs, _) in cases.items():
        tracker = DialogueStateTracker(conversation, [])
        for proof in proofs:
            tracker.update(UserUttered("oi", metadata={METADATA_KEY: proof} if proof else {}))
        asyncio.run(store.save(tracker))
    for conversation, (_, owner) in cases.items():
        assert asyncio.run(_owner_of(store, conversation)) == owner, conversation
    assert asyncio.run(_owner_of(store, "web:nuncavista")) is None
    assert asyncio.run(_owner_of(None, "web:atestada1")) is None

    class Unreadable(InMemoryTrackerStore):
        async def retrieve(self, sender_id: str) -> None:  # type: ignore[override]
            raise OSError("database down")

    assert asyncio.run(_owner_of(Unreadable(Domain.empty()), "web:atestada1")) == UNKNOWN_OWNER
