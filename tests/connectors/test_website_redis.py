"""Two real Rasa servers sharing a real Redis (bot env): replies reach a socket on either replica.

Replicas A and B run the website channel with ``socket_redis_url`` on Redis at 127.0.0.1:6379
(database 15, a channel of this test run only). A visitor's socket lives on A; a technician's
reply (``trigger_intent``) is produced on B, as behind the proxy for a stock client pinned by
address. A third server points at a Redis that does not answer: it still serves its own sockets.

Run: .venv-bot/bin/pytest tests/connectors/test_website_redis.py
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
import urllib.request
from typing import Any, Iterator, List, Tuple

import pytest
import socketio

from test_website import ALLOWED, Visitor, run
from website_support import RasaServer, fixture_model, free_port

pytestmark = pytest.mark.integration

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PING = "Mensagem do atendente chegou."


def redis_answers() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[RasaServer, RasaServer]]:
    if not redis_answers():
        pytest.skip(f"needs Redis at {REDIS_HOST}:{REDIS_PORT}")
    shared = {"allowed_origins": [ALLOWED],
              "socket_redis_url": f"redis://{REDIS_HOST}:{REDIS_PORT}/15",
              "socket_redis_channel": f"atende-test-{secrets.token_hex(4)}"}
    # One tracker store for both, as in production: B finds the conversation's latest channel.
    workdir = tmp_path_factory.mktemp("replicas")
    endpoints = workdir / "endpoints.yml"
    endpoints.write_text(json.dumps({"tracker_store": {
        "type": "SQL", "dialect": "sqlite", "db": str(workdir / "trackers.db")}}))
    model = fixture_model()
    with RasaServer(model, website=shared, endpoints=endpoints) as a, \
            RasaServer(model, website=shared, endpoints=endpoints) as b:
        yield a, b


@pytest.fixture(scope="module")
def lonely() -> Iterator[RasaServer]:
    """A server whose Redis is down (nothing listens on the port)."""
    website = {"allowed_origins": [ALLOWED],
               "socket_redis_url": f"redis://127.0.0.1:{free_port()}/15"}
    with RasaServer(fixture_model(), website=website) as server:
        yield server


async def trigger(server: RasaServer, conversation: str) -> None:
    await asyncio.get_running_loop().run_in_executor(None, server.trigger_intent, conversation,
                                                     "EXTERNAL_ping")


async def greeted(visitor: Visitor, client_id: str) -> None:
    await visitor.say("oi", client_id=client_id)
    await visitor.wait_for("bot_uttered", lambda d: d.get("text", "").startswith("Olá"))


def pings(visitor: Visitor) -> List[Any]:
    return [d for d in visitor.of("bot_uttered") if d.get("text") == PING]


def test_a_reply_produced_on_b_reaches_the_widget_on_a_stamped_and_replayable(
        replicas: Tuple[RasaServer, RasaServer]) -> None:
    a, b = replicas

    async def scenario() -> None:
        v = Visitor(a.url)
        sid = await v.connect()
        await greeted(v, "a1")  # the visitor wrote first (on A): its latest channel is the website
        await trigger(b, f"web:{sid}")
        first = await v.wait_for("bot_uttered", lambda d: d.get("text") == PING)
        assert first["mid"], first  # stamped by B, the replica that produced it
        await asyncio.sleep(0.5)
        assert len(pings(v)) == 1  # once: not again by A
        await v.close()
        # While the visitor is offline, B sends another; reconnecting to B (the conversation's
        # replica, where the widget's session_id pins it) replays it after the last mid seen.
        await trigger(b, f"web:{sid}")
        again = Visitor(b.url)
        assert await again.connect(session_id=sid, last_mid=first["mid"]) == sid
        replay = await again.wait_for("bot_uttered")
        assert replay["text"] == PING and replay["mid"] != first["mid"]
        await asyncio.sleep(0.5)
        assert [d["text"] for d in again.of("bot_uttered")] == [PING]
        await again.close()

    run(scenario())


def test_a_stock_client_on_a_gets_bs_reply_in_rasas_shape(replicas: Tuple[RasaServer, RasaServer]) -> None:
    a, b = replicas

    async def scenario() -> None:
        got: List[Any] = []
        confirmed: List[str] = []
        client = socketio.AsyncClient(reconnection=False)
        client.on("bot_uttered", lambda data: got.append(data))
        client.on("session_confirm", lambda s: confirmed.append(s))
        await client.connect(a.url, headers={"Origin": ALLOWED}, transports=["polling"])
        await client.emit("session_request", {"session_id": None})  # Rasa's protocol: no last_mid
        for _ in range(200):
            if confirmed:
                break
            await asyncio.sleep(0.05)
        await client.emit("user_uttered", {"message": "oi", "session_id": confirmed[0]})
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.05)
        await trigger(b, f"web:{confirmed[0]}")
        for _ in range(200):
            if len(got) > 1:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        try:
            await asyncio.wait_for(client.disconnect(), 1.0)
        except asyncio.TimeoutError:
            pass
        assert got[1:] == [{"text": PING}]  # once, without Atende's fields (no mid)

    run(scenario())


def test_other_sessions_and_forged_room_names_get_nothing(replicas: Tuple[RasaServer, RasaServer]) -> None:
    """B's replies go to their session's sockets only: a conversation id that names another
    socket's socket.io sid (its private room) or another room's name delivers nothing."""
    a, b = replicas

    async def scenario() -> None:
        v = Visitor(a.url)
        own = await v.connect()
        await greeted(v, "f1")
        other = Visitor(a.url)
        await other.connect()
        socket_sid = v.client.get_sid()
        await trigger(b, f"web:{socket_sid}")
        await trigger(b, socket_sid)  # a bare (legacy) conversation id
        for forged in (f"session:{own}", f"rasa:{own}", f"web:session:{own}", f"web:rasa:{own}"):
            try:
                await trigger(b, forged)
            except Exception:
                pass  # refused by Rasa is fine too: what matters is what the sockets get
        await trigger(b, f"web:{own}")
        await v.wait_for("bot_uttered", lambda d: d.get("text") == PING)
        await asyncio.sleep(1.0)
        assert len(pings(v)) == 1 and other.of("bot_uttered") == []
        await v.close()
        await other.close()

    run(scenario())


def test_with_redis_down_a_replica_still_serves_its_own_sockets(lonely: RasaServer) -> None:
    async def scenario() -> None:
        v = Visitor(lonely.url)
        sid = await v.connect()
        await greeted(v, "down-1")
        assert (await v.wait_for("message_ack"))["status"] == "accepted"
        await trigger(lonely, f"web:{sid}")
        await v.wait_for("bot_uttered", lambda d: d.get("text") == PING)
        await v.close()

    run(scenario())
    with urllib.request.urlopen(f"{lonely.url}/status", timeout=10) as resp:
        assert resp.status == 200  # alive
    assert "cannot publish to Redis" in lonely.log_tail(200000)


# ------------------------------------------------------------------ configuration (no server)
def test_the_shared_manager_is_off_unless_configured_and_a_bad_url_does_not_start() -> None:
    from connectors.website.relay import SharedRooms, shared_manager
    from connectors.website.settings import ConfigError, WebsiteSettings

    off = WebsiteSettings.from_sources({}, environ={})  # `make run`: one process
    assert off.socket_redis_url is None and shared_manager(off) is None
    assert WebsiteSettings.from_sources({}, environ={"WEBCHAT_SOCKET_REDIS_URL": " "}).socket_redis_url is None
    on = WebsiteSettings.from_sources({}, environ={"WEBCHAT_SOCKET_REDIS_URL": "redis://redis:6379/0",
                                                   "WEBCHAT_SOCKET_REDIS_CHANNEL": "loja-1"})
    manager = shared_manager(on)
    assert isinstance(manager, SharedRooms) and manager.channel == "loja-1"
    assert manager.redis_url == "redis://redis:6379/0"
    for bad in ("http://redis:6379/0", "redis:6379", "javascript:alert(1)", 6379):
        with pytest.raises(ConfigError, match="socket_redis_url"):
            WebsiteSettings.from_sources({"socket_redis_url": bad}, environ={})


def test_a_silent_redis_delays_one_emit_by_the_bound_and_then_none() -> None:
    """A Redis that accepts connections and never answers (a hung server, on loopback): the first
    emit waits at most the publish bound, the next ones are not delayed, nothing raises; once the
    retry window is over, a real Redis gets the publishes again."""
    from connectors.website import relay

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]

    async def scenario() -> Tuple[float, float, int]:
        manager = relay.SharedRooms(f"redis://127.0.0.1:{port}/15", "atende-test-silent")
        sio = socketio.AsyncServer(async_mode="sanic", client_manager=manager)
        started = time.monotonic()
        await sio.emit("bot_uttered", {"text": "oi"}, room="session:abcdefgh12")
        first = time.monotonic() - started
        started = time.monotonic()
        for _ in range(20):
            await sio.emit("bot_uttered", {"text": "oi"}, room="session:abcdefgh12")
        rest = time.monotonic() - started
        return first, rest, manager.publish_failures

    try:
        first, rest, failures = asyncio.run(scenario())
    finally:
        silent.close()
    assert relay.PUBLISH_TIMEOUT_S - 0.5 <= first <= relay.PUBLISH_TIMEOUT_S + 1.0, first
    assert rest < 0.5 and failures == 21, (rest, failures)


def test_an_emit_to_a_session_room_is_published_on_the_shared_channel() -> None:
    if not redis_answers():
        pytest.skip(f"needs Redis at {REDIS_HOST}:{REDIS_PORT}")
    import redis.asyncio as aioredis

    from connectors.website import relay

    channel = f"atende-test-{secrets.token_hex(4)}"

    async def scenario() -> List[Any]:
        listener = aioredis.Redis.from_url(f"redis://{REDIS_HOST}:{REDIS_PORT}/15")
        pubsub = listener.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel)
        sio = socketio.AsyncServer(async_mode="sanic", client_manager=relay.SharedRooms(
            f"redis://{REDIS_HOST}:{REDIS_PORT}/15", channel))
        await sio.emit("bot_uttered", {"text": "oi", "mid": "e-1"}, room="session:abcdefgh12")
        got = []
        for _ in range(50):
            message = await pubsub.get_message(timeout=0.1)
            if message:
                got.append(json.loads(message["data"]))
                break
        await pubsub.unsubscribe(channel)
        await listener.close()
        return got

    got = asyncio.run(scenario())
    assert [(m["method"], m["event"], m["room"], m["data"]) for m in got] == [
        ("emit", "bot_uttered", "session:abcdefgh12", [{"text": "oi", "mid": "e-1"}])]
