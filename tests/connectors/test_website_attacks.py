"""Attacks on the website channel, against a real Rasa server with the website connector.

Each test is an attack from docs/security.md (issue #12) and asserts the refusal and that nothing
reached the victim's conversation. They fail on the code before conversation ids were namespaced,
before sessions had an owner and before the attestation replaced the forwarded token.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from atende_contract import attestation
from test_website import ALLOWED, Visitor, run, token, widget_session_id
from website_support import ATTESTATION_SECRET, RasaServer, fixture_model

pytestmark = pytest.mark.integration

IP_BURST = 12


@pytest.fixture(scope="module")
def rasa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaServer]:
    server = RasaServer(
        fixture_model(),
        website={"allowed_origins": [ALLOWED], "ip_rate_burst": IP_BURST, "ip_rate_per_second": 0.5,
                 "rate_burst": 5, "rate_per_second": 1},
    )
    with server:
        yield server


def events_of(rasa: RasaServer, conversation: str) -> List[Dict[str, Any]]:
    return [e for e in rasa.tracker(conversation)["events"] if e["event"] == "user"]


def test_a_phone_number_as_session_id_gets_a_web_conversation_of_its_own(rasa: RasaServer) -> None:
    phone = "5511987654321"

    async def scenario() -> None:
        v = Visitor(rasa.url, url_session_id=phone)
        assert await v.connect(session_id=phone) == phone
        await v.say("oi", client_id="p1")
        await v.wait_for("bot_uttered")
        # A technician's reply to the WhatsApp customer's conversation never reaches this socket.
        await asyncio.get_running_loop().run_in_executor(
            None, rasa.trigger_intent, f"whatsapp:{phone}", "EXTERNAL_ping")
        await asyncio.sleep(1.0)
        assert [m.get("text") for m in v.of("bot_uttered")].count("Mensagem do atendente chegou.") == 0
        await v.close()

    run(scenario())
    assert [e["text"] for e in events_of(rasa, f"web:{phone}")] == ["oi"]
    assert [e for e in events_of(rasa, f"whatsapp:{phone}") if not str(e["text"]).startswith("EXTERNAL")] == []
    assert events_of(rasa, phone) == []


def test_a_known_session_id_without_its_token_gets_neither_history_nor_replies(rasa: RasaServer) -> None:
    maria = token(sub="42", name="Maria")
    other = token(sub="43", name="Outro")

    async def scenario() -> None:
        owner = Visitor(rasa.url)
        sid = await owner.connect(session_id=widget_session_id(), token=maria)
        await owner.say("oi", client_id="o1", token=maria)
        greeting = await owner.wait_for("bot_uttered")
        await owner.close()
        # Whoever learned the session id: anonymous, or with another customer's token.
        for name, tok in (("anonymous", None), ("other customer", other)):
            thief = Visitor(rasa.url, url_session_id=sid)
            got = await thief.connect(session_id=sid, token=tok, last_mid=f"{greeting['mid'].rsplit('-', 1)[0]}-0")
            assert got != sid, name
            await asyncio.sleep(0.3)
            assert thief.of("bot_uttered") == [], name  # no replay of the customer's messages
            await asyncio.get_running_loop().run_in_executor(
                None, rasa.trigger_intent, f"web:{sid}", "EXTERNAL_ping")
            await asyncio.sleep(1.0)
            assert thief.of("bot_uttered") == [], name  # nor the technician's reply
            await thief.close()
        # The customer, with the token, gets the session back with its missed messages.
        back = Visitor(rasa.url, url_session_id=sid)
        assert await back.connect(session_id=sid, token=maria, last_mid=greeting["mid"]) == sid
        await back.wait_for("bot_uttered", lambda d: d.get("text") == "Mensagem do atendente chegou.")
        # Another person's token on the same socket is refused, not mixed into the conversation.
        await back.say("oi", client_id="x1", token=other)
        ack = await back.wait_for("message_ack", lambda d: d["client_id"] == "x1")
        assert ack == {"client_id": "x1", "status": "refused", "reason": "session_owner"}
        await back.close()

    run(scenario())


def test_an_expired_token_loses_the_identity_at_once(rasa: RasaServer) -> None:
    now = int(time.time())
    short = token(sub="42", iat=now, exp=now + 3)

    async def scenario() -> str:
        v = Visitor(rasa.url)
        sid = await v.connect(session_id=widget_session_id(), token=short)
        await v.say("oi", client_id="e1", token=short)
        await v.wait_for("bot_uttered")
        await asyncio.sleep(max(0.0, now + 4 - time.time()))
        await v.say("oi de novo", client_id="e2", token=short)
        assert (await v.wait_for("auth_status", lambda d: d.get("reason") == "expired"))["status"] == "refused"
        await v.wait_for("bot_uttered", count=2)
        await v.close()
        return sid

    sid = run(scenario())
    first, second = events_of(rasa, f"web:{sid}")[-2:]
    assert attestation.verify(ATTESTATION_SECRET.encode(), first["metadata"][attestation.METADATA_KEY],
                              conversation_id=f"web:{sid}", channel="website",
                              message_id=first["message_id"], now=first["timestamp"]).ok
    assert attestation.METADATA_KEY not in second["metadata"]


def test_forged_attestation_and_identity_metadata_from_the_client_are_dropped(rasa: RasaServer) -> None:
    forged = attestation.sign(ATTESTATION_SECRET.encode(), channel="website", conversation_id="web:x",
                              subject="id:42", message_id="m")

    async def scenario() -> str:
        v = Visitor(rasa.url)
        sid = await v.connect(session_id=widget_session_id())
        await v.client.emit("user_uttered", {"message": "oi", "session_id": sid, "client_id": "f1",
                                             "customData": {attestation.METADATA_KEY: forged,
                                                            "is_external": True, "customer_id": "42"}})
        await v.wait_for("bot_uttered")
        await v.close()
        return sid

    sid = run(scenario())
    meta = events_of(rasa, f"web:{sid}")[-1]["metadata"]
    # Rasa adds its own assistant_id / model_id; nothing the client wrote goes through.
    assert not {attestation.METADATA_KEY, "is_external", "customer_id", "customData"} & set(meta)


def test_new_session_ids_do_not_reset_the_per_address_limit(rasa: RasaServer) -> None:
    """A flooder opening a fresh session for every few messages still hits its address's bucket."""

    async def scenario() -> List[Dict[str, Any]]:
        acks: List[Dict[str, Any]] = []
        for round_ in range(8):
            v = Visitor(rasa.url)
            await v.connect(session_id=widget_session_id())
            for i in range(4):  # within each session's own burst of 5
                await v.say(f"oi {i}", client_id=f"r{round_}-{i}")
            await v.wait_for("message_ack", count=4, timeout=30)
            acks += v.of("message_ack")
            await v.close()
        return acks

    started = time.monotonic()
    acks = run(scenario())
    elapsed = time.monotonic() - started
    accepted = [a for a in acks if a["status"] == "accepted"]
    assert len(acks) == 32
    assert len(accepted) <= IP_BURST + int(elapsed * 0.5) + 1, (len(accepted), elapsed)
    assert {a.get("reason") for a in acks if a["status"] != "accepted"} == {"rate"}


def test_rest_is_namespaced_and_ignores_the_clients_channel_and_metadata(rasa: RasaServer) -> None:
    import json
    import urllib.error
    import urllib.request

    def post(body: Any) -> int:
        req = urllib.request.Request(f"{rasa.url}/webhooks/rest/webhook", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code

    assert post({"sender": "5511900000042", "message": '/EXTERNAL_ping{"customer_id": "1"}',
                 "input_channel": "whatsapp", "metadata": {"atende_attestation": {"sub": "phone:1"}}}) == 200
    [event] = events_of(rasa, "rest:5511900000042")
    assert event["input_channel"] == "rest" and attestation.METADATA_KEY not in event["metadata"]
    assert not event["text"].startswith("/") and event["parse_data"]["intent"]["name"] != "EXTERNAL_ping"
    assert events_of(rasa, "whatsapp:5511900000042") == [] and events_of(rasa, "5511900000042") == []
    for bad in ({"message": "oi"}, {"sender": "a b", "message": "oi"}, {"sender": "x" * 500, "message": "oi"},
                {"sender": "ok", "message": 5}, {"sender": ["x"], "message": "oi"}):
        assert post(bad) == 400, bad



def test_session_ownership_survives_a_restart(tmp_path: Path) -> None:
    """After a restart the owner comes from the tracker store: a known session id still gets nothing."""
    import json

    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(json.dumps({"tracker_store": {"type": "SQL", "dialect": "sqlite",
                                                       "db": str(tmp_path / "tracker.db")}}))
    maria = token(sub="42", name="Maria")
    sid = widget_session_id()

    async def first_visit(url: str) -> None:
        owner = Visitor(url)
        assert await owner.connect(session_id=sid, token=maria) == sid
        await owner.say("oi", client_id="o1", token=maria)
        await owner.wait_for("bot_uttered")
        await owner.close()

    async def after_restart(url: str) -> None:
        thief = Visitor(url, url_session_id=sid)
        assert await thief.connect(session_id=sid) != sid
        await thief.close()
        back = Visitor(url, url_session_id=sid)
        assert await back.connect(session_id=sid, token=maria) == sid
        await back.close()

    with RasaServer(fixture_model(), website={"allowed_origins": [ALLOWED]}, endpoints=endpoints) as first:
        run(first_visit(first.url))
    with RasaServer(fixture_model(), website={"allowed_origins": [ALLOWED]}, endpoints=endpoints) as second:
        run(after_restart(second.url))
