"""Website connector against a real Rasa server (bot env): identity, origins, limits, protocol.

Run: .venv-bot/bin/pytest tests/connectors/test_website.py
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import jwt
import pytest
import socketio

from atende_contract import attestation
from website_support import ATTESTATION_SECRET, TEST_SECRET, RasaServer, fixture_model

pytestmark = pytest.mark.integration

ALLOWED = "http://allowed.example"


@pytest.fixture(scope="module")
def rasa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaServer]:
    widget_dir = tmp_path_factory.mktemp("widget")
    (widget_dir / "widget.js").write_text("console.log('atende widget');\n")
    server = RasaServer(
        fixture_model(),
        website={
            "allowed_origins": [ALLOWED, "http://localhost:8080"],
            "widget_dir": str(widget_dir),
            "allowed_payloads": ["/request_human"],
        },
    )
    with server:
        yield server


class Visitor:
    """A socket.io client speaking the widget's protocol, recording every event."""

    def __init__(self, url: str, origin: str = ALLOWED, url_session_id: Optional[str] = None) -> None:
        # url_session_id: put in the connection URL as ``?session_id=`` (as the widget does)
        self.url = url if url_session_id is None else f"{url}?session_id={url_session_id}"
        self.origin = origin
        self.events: List[Tuple[str, Any]] = []
        self.client = socketio.AsyncClient(reconnection=False)
        for name in ("session_confirm", "bot_uttered", "auth_status", "message_ack"):
            self.client.on(name, self._recorder(name))
        self.session_id: Optional[str] = None

    def _recorder(self, name: str) -> Callable[[Any], None]:
        def record(data: Any = None) -> None:
            self.events.append((name, data))

        return record

    async def open(self) -> None:
        await self.client.connect(self.url, headers={"Origin": self.origin}, transports=["polling"])

    async def connect(self, session_id: Optional[str] = None, token: Optional[str] = None,
                      last_mid: Optional[str] = None, omit_session_id: bool = False,
                      **custom: Any) -> str:
        await self.open()
        custom_data = dict(custom)
        if token is not None:
            custom_data["auth_token"] = token
        request: Dict[str, Any] = {"customData": custom_data, "last_mid": last_mid}
        if not omit_session_id:
            request["session_id"] = session_id
        await self.client.emit("session_request", request)
        confirm = await self.wait_for("session_confirm")
        self.session_id = confirm
        await self.wait_for("auth_status")
        return confirm

    async def say(self, text: str, client_id: Optional[str] = None, token: Optional[str] = None,
                  quick_reply: bool = False, **custom: Any) -> None:
        custom_data = dict(custom)
        if token is not None:
            custom_data["auth_token"] = token
        data: Dict[str, Any] = {"message": text, "session_id": self.session_id,
                                "customData": custom_data}
        if client_id:
            data["client_id"] = client_id
        if quick_reply:
            data["quick_reply"] = True
        await self.client.emit("user_uttered", data)

    def of(self, name: str) -> List[Any]:
        return [data for event, data in self.events if event == name]

    async def wait_for(self, name: str, pred: Callable[[Any], bool] = lambda d: True,
                       timeout: float = 15.0, count: int = 1) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [d for d in self.of(name) if pred(d)]
            if len(found) >= count:
                return found[count - 1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {name} event matching within {timeout}s; got {self.events}")

    async def close(self) -> None:
        # A polling client's disconnect waits for its pending long-poll; don't wait for it.
        try:
            await asyncio.wait_for(self.client.disconnect(), 1.0)
        except asyncio.TimeoutError:
            pass


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 90))


def token(**claims: Any) -> str:
    claims.setdefault("iat", int(time.time()))
    claims.setdefault("exp", int(time.time()) + 600)
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


def user_events(rasa: RasaServer, session_id: str) -> List[Dict[str, Any]]:
    """User events of a website session (its Rasa conversation is ``web:<session id>``)."""
    return [e for e in rasa.tracker(f"web:{session_id}")["events"] if e["event"] == "user"]


def bot_texts(visitor: Visitor) -> List[str]:
    return [d.get("text", "") for d in visitor.of("bot_uttered")]


# --------------------------------------------------------------------------- identity


def test_valid_token_is_attested_and_claimed_identity_is_stripped(rasa: RasaServer) -> None:
    good = token(sub="42", name="Maria Souza")

    async def scenario() -> None:
        v = Visitor(rasa.url)
        sid = await v.connect(token=good)
        assert v.of("auth_status")[-1] == {"status": "verified", "name": "Maria Souza"}
        await v.say("oi", client_id="m1", token=good, customer_id=7, email="intruso@example.com")
        await v.wait_for("bot_uttered")
        await v.close()
        user = user_events(rasa, sid)[-1]
        meta = user["metadata"]
        # The token stays at the connector; the action server gets a signed attestation of its
        # subject for this conversation and message.
        assert "auth_token" not in meta
        proof = attestation.verify(ATTESTATION_SECRET.encode(), meta[attestation.METADATA_KEY],
                                   conversation_id=f"web:{sid}", channel="website",
                                   message_id=user["message_id"])
        assert proof.ok and proof.identity.subject == "id:42"
        assert "customer_id" not in meta and "email" not in meta
        assert meta["website"] == {"client_id": "m1", "quick_reply": False}

    run(scenario())


@pytest.mark.parametrize(
    "bad, reason",
    [
        (token(sub="42", exp=int(time.time()) - 30), "expired"),
        (jwt.encode({"sub": "42", "exp": int(time.time()) + 600}, "outro-segredo", algorithm="HS256"),
         "bad_signature"),
        (jwt.encode({"sub": "42", "exp": int(time.time()) + 600}, None, algorithm="none"),
         "bad_signature"),
        (token(name="Sem sujeito"), "no_subject"),
        ("isto-nao-e-um-jwt", "malformed"),
    ],
    ids=["expired", "forged", "alg-none", "no-subject", "garbage"],
)
def test_bad_token_is_refused_and_visitor_continues_as_anonymous(
    rasa: RasaServer, bad: str, reason: str
) -> None:
    async def scenario() -> None:
        v = Visitor(rasa.url)
        sid = await v.connect(token=bad)
        assert v.of("auth_status")[-1] == {"status": "refused", "reason": reason}
        await v.say("oi", client_id="b1", token=bad, sub="42")
        # The visitor is told again and still gets an answer, as an anonymous visitor.
        await v.wait_for("auth_status", count=2)
        assert (await v.wait_for("bot_uttered"))["text"].startswith("Olá")
        await v.close()
        meta = user_events(rasa, sid)[-1]["metadata"]
        assert "auth_token" not in meta and "sub" not in meta
        assert attestation.METADATA_KEY not in meta

    run(scenario())


def test_absent_token_is_an_anonymous_prospect(rasa: RasaServer) -> None:
    async def scenario() -> None:
        v = Visitor(rasa.url)
        sid = await v.connect()
        assert v.of("auth_status") == [{"status": "anonymous"}]
        await v.say("quanto custa", client_id="p1")
        reply = await v.wait_for("bot_uttered")
        await v.close()
        # quick replies and sources travel in the same bot message
        assert [q["payload"] for q in reply["quick_replies"]] == ["/saudacao", "/request_human"]
        assert reply["custom"]["sources"][0]["url"] == "https://example.com/precos"
        assert reply["mid"]
        assert "auth_token" not in user_events(rasa, sid)[-1]["metadata"]

    run(scenario())


# --------------------------------------------------------------------------- origins


def test_foreign_origin_is_refused(rasa: RasaServer) -> None:
    async def scenario() -> None:
        v = Visitor(rasa.url, origin="http://evil.example")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await v.connect()
        assert v.events == []
        ok = Visitor(rasa.url, origin="http://localhost:8080")
        await ok.connect()
        await ok.close()

    run(scenario())
    req = urllib.request.Request(
        f"{rasa.url}/socket.io/?EIO=4&transport=polling", headers={"Origin": "http://evil.example"}
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400


# --------------------------------------------------------------------------- limits


def test_message_of_100000_chars_is_refused_with_a_ptbr_notice(rasa: RasaServer) -> None:
    async def scenario() -> None:
        v = Visitor(rasa.url)
        sid = await v.connect()
        await v.say("a" * 100_000, client_id="big")
        ack = await v.wait_for("message_ack", lambda d: d["client_id"] == "big")
        assert ack == {"client_id": "big", "status": "refused", "reason": "too_long"}
        notice = await v.wait_for("bot_uttered")
        assert "longa demais (100.000 caracteres)" in notice["text"]
        assert "2.000" in notice["text"]
        await v.say("oi", client_id="small")
        await v.wait_for("bot_uttered", lambda d: d["text"].startswith("Olá"))
        await v.close()
        texts = [e["text"] for e in user_events(rasa, sid)]
        assert texts == ["oi"]

    run(scenario())


def test_flood_of_100_messages_in_a_second_is_limited(rasa: RasaServer) -> None:
    async def scenario() -> None:
        v = Visitor(rasa.url)
        sid = await v.connect()
        bystander = Visitor(rasa.url)
        await bystander.connect()
        started = time.monotonic()
        for i in range(100):
            await v.say(f"oi {i}", client_id=f"f{i}")
            # spread over the second: Engine.IO long-polling refuses > 16 packets per request
            await asyncio.sleep(0.007)
        elapsed = time.monotonic() - started
        assert elapsed < 3.0
        await v.wait_for("message_ack", count=100, timeout=30)
        acks = v.of("message_ack")
        accepted = [a for a in acks if a["status"] == "accepted"]
        refused = [a for a in acks if a.get("reason") == "rate"]
        # burst of 5, refilled at 1 message/s
        assert 5 <= len(accepted) <= 5 + int(elapsed) + 2
        assert len(accepted) + len(refused) == 100
        await asyncio.sleep(1.5)
        notices = [t for t in bot_texts(v) if "rápido demais" in t]
        assert len(notices) == 1
        # Another visitor is unaffected; the flooder can talk again after a pause.
        await bystander.say("oi", client_id="b")
        await bystander.wait_for("bot_uttered")
        await asyncio.sleep(2.0)
        await v.say("quanto custa", client_id="after")
        await v.wait_for("message_ack", lambda d: d["client_id"] == "after" and d["status"] == "accepted")
        await v.close()
        await bystander.close()
        assert len(user_events(rasa, sid)) == len(accepted) + 1

    run(scenario())


def test_html_in_a_message_is_passed_as_plain_text(rasa: RasaServer) -> None:
    html = '<script>alert("x")</script><img src=x onerror=alert(1)> oi'

    async def scenario() -> None:
        v = Visitor(rasa.url)
        sid = await v.connect()
        await v.say(html, client_id="h1")
        await v.wait_for("message_ack", lambda d: d["status"] == "accepted")
        await v.wait_for("bot_uttered")
        await v.close()
        assert user_events(rasa, sid)[-1]["text"] == html

    run(scenario())


# --------------------------------------------------------------------------- commands and payloads


def test_typed_slash_commands_are_neutralised(rasa: RasaServer) -> None:
    async def scenario() -> None:
        v = Visitor(rasa.url)
        sid = await v.connect()
        await v.say('/EXTERNAL_ping{"customer_id": "1"}', client_id="s1")
        await v.wait_for("message_ack")
        await asyncio.sleep(1.5)
        # an unoffered payload flagged as quick reply is neutralised too
        await v.say("/EXTERNAL_ping", client_id="s2", quick_reply=True)
        await asyncio.sleep(1.5)
        await v.close()
        assert "Mensagem do atendente chegou." not in bot_texts(v)
        events = user_events(rasa, sid)
        assert [e["text"] for e in events] == ['EXTERNAL_ping{"customer_id": "1"}', "EXTERNAL_ping"]
        assert all(e["parse_data"]["intent"]["name"] != "EXTERNAL_ping" for e in events)
        assert all(not e["parse_data"]["entities"] for e in events)

    run(scenario())


def test_quick_replies_offered_by_the_bot_and_request_human_are_accepted(rasa: RasaServer) -> None:
    async def scenario() -> None:
        v = Visitor(rasa.url)
        sid = await v.connect()
        await v.say("/request_human", client_id="q0", quick_reply=True)
        await v.wait_for("bot_uttered", lambda d: d["text"] == "Vou chamar um atendente humano.")
        await v.say("quanto custa", client_id="q1")
        await v.wait_for("bot_uttered", lambda d: "quick_replies" in d)
        await v.say("/saudacao", client_id="q2", quick_reply=True)
        await v.wait_for("bot_uttered", lambda d: d["text"].startswith("Olá"))
        await v.close()
        intents = [e["parse_data"]["intent"]["name"] for e in user_events(rasa, sid)]
        assert intents == ["request_human", "preco", "saudacao"]

    run(scenario())


# --------------------------------------------------------------------------- sessions


def test_socket_cannot_speak_for_another_session(rasa: RasaServer) -> None:
    async def scenario() -> None:
        victim = Visitor(rasa.url)
        victim_sid = await victim.connect()
        attacker = Visitor(rasa.url)
        await attacker.connect()
        attacker.session_id = victim_sid
        await attacker.say("oi", client_id="x1")
        ack = await attacker.wait_for("message_ack")
        assert ack == {"client_id": "x1", "status": "refused", "reason": "no_session"}
        await asyncio.sleep(0.5)
        await victim.close()
        await attacker.close()
        assert user_events(rasa, victim_sid) == []

    run(scenario())


def widget_session_id() -> str:
    """What the widget makes on a first visit: 24 random bytes, base64url (32 chars)."""
    import base64
    import os

    return base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")


def test_client_proposed_id_starts_a_new_session_and_gets_agent_replies(rasa: RasaServer) -> None:
    proposed = widget_session_id()

    async def scenario() -> None:
        v = Visitor(rasa.url, url_session_id=proposed)
        assert await v.connect(session_id=proposed) == proposed
        await v.say("oi", client_id="n1")
        await v.wait_for("bot_uttered", lambda d: d["text"].startswith("Olá"))
        await asyncio.get_running_loop().run_in_executor(
            None, rasa.trigger_intent, f"web:{proposed}", "EXTERNAL_ping"
        )
        await v.wait_for("bot_uttered", lambda d: d["text"] == "Mensagem do atendente chegou.")
        await v.close()
        # A reload: the same id, in the URL and in session_request, resumes the conversation.
        again = Visitor(rasa.url, url_session_id=proposed)
        assert await again.connect(session_id=proposed) == proposed
        await again.close()
        # A client that names its session only in the URL gets that session.
        only_url = widget_session_id()
        third = Visitor(rasa.url, url_session_id=only_url)
        assert await third.connect(omit_session_id=True) == only_url
        await third.close()
        texts = [e["text"] for e in user_events(rasa, proposed)]
        assert [t for t in texts if not t.startswith("EXTERNAL")] == ["oi"]

    run(scenario())


@pytest.mark.parametrize(
    "bad",
    ["curto", "a" * 65, "../../etc/passwd", "id com espaço", "ação-inválida", "abc.defgh", 12345678],
    ids=["short", "long", "path", "space", "non-ascii", "dot", "number"],
)
def test_malformed_proposed_id_is_never_adopted(rasa: RasaServer, bad: Any) -> None:
    async def scenario() -> None:
        v = Visitor(rasa.url)
        confirmed = await v.connect(session_id=bad)
        assert confirmed != bad and re.fullmatch(r"[A-Za-z0-9_-]{8,64}", confirmed)
        await v.close()

    run(scenario())
    if isinstance(bad, str):
        # In the connection URL: the socket.io connection itself is refused, with the reason.
        assert socketio_connect_reply(rasa, urllib.parse.quote(bad)).startswith(
            '44{"message":"bad_session_id"}'
        )
        assert socketio_connect_reply(rasa, widget_session_id()).startswith("40{")


def test_refused_connections_do_not_use_up_the_address_socket_quota(rasa: RasaServer) -> None:
    """A connection refused for its URL is not counted: more of them than the per-address socket
    limit (30) still leave room for a good one."""
    for _ in range(32):
        assert socketio_connect_reply(rasa, "curto").startswith('44{"message":"bad_session_id"}')
    assert socketio_connect_reply(rasa, widget_session_id()).startswith("40{")


def socketio_connect_reply(rasa: RasaServer, session_id: str) -> str:
    """Engine.IO handshake + socket.io CONNECT over raw long-polling; the server's answer."""
    base = f"{rasa.url}/socket.io/?session_id={session_id}&EIO=4&transport=polling"
    headers = {"Origin": ALLOWED}
    with urllib.request.urlopen(urllib.request.Request(base, headers=headers), timeout=10) as r:
        handshake = json.loads(r.read().decode()[1:])
    url = f"{base}&sid={handshake['sid']}"
    post = urllib.request.Request(url, data=b"40", headers=headers, method="POST")
    urllib.request.urlopen(post, timeout=10).read()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return r.read().decode()


def test_session_id_in_the_url_grants_no_right_to_send(rasa: RasaServer) -> None:
    async def scenario() -> None:
        victim_id = widget_session_id()
        victim = Visitor(rasa.url, url_session_id=victim_id)
        assert await victim.connect(session_id=victim_id) == victim_id
        # Naming the victim's id in the URL, then confirmed for another session: still refused.
        attacker = Visitor(rasa.url, url_session_id=victim_id)
        own = widget_session_id()
        assert await attacker.connect(session_id=own) == own
        attacker.session_id = victim_id
        await attacker.say("oi", client_id="u1")
        ack = await attacker.wait_for("message_ack")
        assert ack == {"client_id": "u1", "status": "refused", "reason": "no_session"}
        # Naming it in the URL and never asking for a session: refused too.
        lurker = Visitor(rasa.url, url_session_id=victim_id)
        await lurker.open()
        lurker.session_id = victim_id
        await lurker.say("oi", client_id="u2")
        ack = await lurker.wait_for("message_ack")
        assert ack == {"client_id": "u2", "status": "refused", "reason": "no_session"}
        await asyncio.sleep(0.5)
        for v in (victim, attacker, lurker):
            await v.close()
        assert user_events(rasa, victim_id) == []
        assert user_events(rasa, own) == []

    run(scenario())


def test_reconnect_replays_missed_messages_and_drops_resends(rasa: RasaServer) -> None:
    async def scenario() -> None:
        first = Visitor(rasa.url)
        sid = await first.connect()
        await first.say("oi", client_id="r1")
        greeting = await first.wait_for("bot_uttered")
        await first.close()
        # While the visitor is offline, an agent message is sent to the conversation.
        await asyncio.get_running_loop().run_in_executor(
            None, rasa.trigger_intent, f"web:{sid}", "EXTERNAL_ping"
        )
        again = Visitor(rasa.url)
        assert await again.connect(session_id=sid, last_mid=greeting["mid"]) == sid
        replay = await again.wait_for("bot_uttered")
        assert replay["text"] == "Mensagem do atendente chegou." and replay["mid"] != greeting["mid"]
        # The widget resends a message whose ack it never saw: processed once only.
        await again.say("oi", client_id="r1")
        assert (await again.wait_for("message_ack"))["status"] == "duplicate"
        await asyncio.sleep(1.0)
        assert len(again.of("bot_uttered")) == 1
        await again.close()
        texts = [e["text"] for e in user_events(rasa, sid)]
        assert [t for t in texts if not t.startswith("EXTERNAL")] == ["oi"]

    run(scenario())


def test_trigger_intent_latest_reaches_the_visitors_socket(rasa: RasaServer) -> None:
    async def scenario() -> None:
        v = Visitor(rasa.url)
        sid = await v.connect()
        await v.say("oi", client_id="t1")
        await v.wait_for("bot_uttered")
        await asyncio.get_running_loop().run_in_executor(
            None, rasa.trigger_intent, f"web:{sid}", "EXTERNAL_ping"
        )
        await v.wait_for("bot_uttered", lambda d: d["text"] == "Mensagem do atendente chegou.")
        await v.close()

    run(scenario())


# --------------------------------------------------------------------------- widget files


def test_widget_script_is_served_by_the_rasa_server(rasa: RasaServer) -> None:
    with urllib.request.urlopen(f"{rasa.url}/webhooks/website/widget.js", timeout=10) as resp:
        body = resp.read().decode()
        assert resp.headers["Content-Type"].startswith("application/javascript")
    # the server's settings first, then the page's, then what the page may not override (the LLM named
    # by the consent card)
    first_line = body.split("\n", 1)[0]
    assert re.fullmatch(r'window\.__ATENDE_WEBCHAT__=Object\.assign\(\{socketPath:"/socket\.io",privacyUrl:(null|"[^"]*")\},'
                        r'window\.__ATENDE_WEBCHAT__\|\|\{\},\{llmProvider:(null|"[^"]*")\}\);', first_line), first_line
    assert "console.log('atende widget');" in body
    with urllib.request.urlopen(f"{rasa.url}/webhooks/website/", timeout=10) as resp:
        assert json.loads(resp.read()) == {"status": "ok"}
