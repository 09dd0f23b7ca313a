"""Several replicas sharing one database: each inbox row reaches Rasa once, each reply is sent once,
per-sender order is kept, and a dead replica's senders are taken over after its lease expires.

In-process tests run two ``Worker`` objects (two stores, two lease owners) over the same SQLite
file or PostgreSQL database (TEST_POSTGRES_URL), with a recording assistant standing in for Rasa
and the fake Graph API on loopback. The last test runs two real ``rasa run`` processes (tiny model)
and kills one with SIGKILL mid-work.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import sqlite3
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from pg_scratch import scratch_database
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whatsapp_rasa import RasaServer, text_notification, tiny_model  # noqa: E402

from fake_graph import FakeGraph  # noqa: E402

from connectors.whatsapp.parse import InboundItem  # noqa: E402
from connectors.whatsapp.store import Store, make_engine  # noqa: E402
from connectors.whatsapp.settings import WhatsAppSettings  # noqa: E402
from connectors.whatsapp.worker import Worker  # noqa: E402

pytestmark = pytest.mark.timeout(300)
LEASE_S = 1.5


@pytest.fixture()
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as g:
        yield g


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wa.db'}"
        return
    with scratch_database("wa_rep") as url:
        yield url


# ---- store level ------------------------------------------------------------------------------

def test_lease_is_exclusive_renewed_and_taken_over_after_expiry(db_url: str) -> None:
    engine = make_engine(db_url)
    a = Store(engine, unconfirmed_grace_s=60, lease_s=0.6, owner="host:1:a")
    b = Store(engine, unconfirmed_grace_s=60, lease_s=0.6, owner="host:2:b")
    a.create_tables()
    a.insert_items([InboundItem("w1", "message", "55", "rasa", text="oi", metadata={})])
    assert a.claim("55") and not b.claim("55") and a.claim("55")  # ours again: a renewal
    assert b.addresses_with_work() == set() and a.addresses_with_work() == {"55"}
    row = a.next_pending("55")
    assert row is not None and not b.begin_attempt(row.id) and a.begin_attempt(row.id)
    # a send in flight on A: B's start-up recovery leaves it alone while A's lease lives
    from connectors.whatsapp.outbound import render
    a.queue("w1", "55", render({"text": "um"}))
    out = a.pending_outbox("55")[0]
    assert not b.mark_sending(out.id, True) and a.mark_sending(out.id, True)
    assert b.recover_at_start() == 0
    time.sleep(0.3)
    assert a.renew_all() == {"55"}
    time.sleep(0.4)  # 0.7 s after the claim, 0.4 s after the renewal: still A's
    assert not b.claim("55")
    time.sleep(0.4)  # A "died": no renewal, the lease expired
    assert b.addresses_with_work() == {"55"}
    assert b.claim("55") and not a.claim("55")
    assert not a.begin_attempt(row.id) and a.renew_all() == set()
    with engine.connect() as c:  # the takeover turned A's in-flight send into "unconfirmed"
        assert c.execute(sa.text("select send_state from whatsapp_outbox")).scalar() == "unconfirmed"
    assert b.mark_sending(out.id) is True and b.mark_sending(out.id) is False  # one claim per row
    b.release("55")
    assert a.claim("55")
    engine.dispose()


# ---- two Worker objects over one database -----------------------------------------------------

class Recorder:
    """Stands in for Rasa: records each hand-over and answers ``eco: <text>``."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str, str]] = []  # (replica, sender, message id)
        self.tracker: Dict[str, List[Tuple[str, str]]] = {}  # sender -> [(message id, reply)]

    def handler(self, replica: str) -> Any:
        async def handle(msg: Any) -> None:
            # Rasa sees the conversation id ``whatsapp:<wa_id>``; record the wa_id.
            assert msg.sender_id.startswith("whatsapp:") and msg.input_channel == "whatsapp"
            self.calls.append((replica, msg.sender_id.split(":", 1)[1], msg.message_id))
            await asyncio.sleep(random.uniform(0, 0.01))
            reply = f"eco: {msg.text}"
            self.tracker.setdefault(msg.sender_id, []).append((msg.message_id, reply))
            await msg.output_channel.send_text_message(msg.sender_id, reply)
        return handle

    def app(self) -> Any:
        recorder = self

        class Tracker:
            def __init__(self, sender: str) -> None:
                from rasa.shared.core.events import BotUttered, UserUttered
                self.events: List[Any] = []
                for mid, reply in recorder.tracker.get(sender, []):
                    self.events += [UserUttered("x", message_id=mid), BotUttered(reply)]

        class TrackerStore:
            async def retrieve(self, sender: str) -> Any:
                return Tracker(sender) if sender in recorder.tracker else None

        agent = SimpleNamespace(is_ready=lambda: True, tracker_store=TrackerStore())
        return SimpleNamespace(ctx=SimpleNamespace(agent=agent))


def _settings(graph: FakeGraph, url: str) -> WhatsAppSettings:
    return WhatsAppSettings(app_secret="s", access_token="test-token", phone_number_id="1122334455667",
                            graph_url=graph.base_url, database_url=url, retry_base_s=0.05, retry_max_s=0.2,
                            graph_timeout_s=2.0, lease_s=LEASE_S, resend_grace_s=0.5, sqlite_synchronous="NORMAL")


def _item(sender: str, mid: str, text: str) -> InboundItem:
    return InboundItem(mid, "message", sender, "rasa", text=text, metadata={"whatsapp": {"message_id": mid}})


def _texts(graph: FakeGraph, to: str) -> List[str]:
    return [r.body["text"]["body"] for r in graph.sent() if r.body.get("to") == to]


async def _wait(cond: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cond():
        await asyncio.sleep(0.05)


def test_two_replicas_handle_each_message_once_in_order(graph: FakeGraph, db_url: str) -> None:
    senders = [f"55119100000{i:02d}" for i in range(8)]
    per_sender = 6

    async def scenario() -> None:
        rec = Recorder()
        # Two senders at a time per replica: one replica alone cannot take every sender, so both
        # do work whatever the machine's speed (the last assertion below depends on it).
        settings = dataclasses.replace(_settings(graph, db_url), concurrency=2)
        a, b = Worker(settings), Worker(settings)
        a.start(rec.app(), rec.handler("a"))
        b.start(rec.app(), rec.handler("b"))
        try:
            # interleaved deliveries: message k of each sender lands on replica A or B at random
            rng = random.Random(7)
            for k in range(per_sender):
                for s in senders:
                    rt = rng.choice((a, b))
                    await rt.ingest([_item(s, f"wamid.{s}.{k}", f"m{k}")])
                    rt.wake.set()
                await asyncio.sleep(0.02)
            total = len(senders) * per_sender
            await _wait(lambda: len(graph.sent()) >= total, 60)
            await asyncio.sleep(LEASE_S + 1.5)  # any duplicate would show up here
        finally:
            await a.stop()
            await b.stop()
        mids = [m for _, _, m in rec.calls]
        assert len(mids) == total and len(set(mids)) == total, "a message reached Rasa twice"
        for s in senders:
            assert [m for _, snd, m in rec.calls if snd == s] == [f"wamid.{s}.{k}" for k in range(per_sender)]
            assert _texts(graph, s) == [f"eco: m{k}" for k in range(per_sender)]  # once each, in order
        assert {r for r, _, _ in rec.calls} == {"a", "b"}  # both replicas did work
        assert len(graph.sent()) == total
        engine = make_engine(db_url)
        with engine.connect() as c:
            assert c.execute(sa.text("select count(*) from whatsapp_inbox where state != 'done'")).scalar() == 0
            assert c.execute(sa.text(
                "select count(*) from whatsapp_outbox where send_state != 'accepted'")).scalar() == 0
            assert c.execute(sa.text("select count(*) from whatsapp_leases")).scalar() == 0  # released
        engine.dispose()

    asyncio.run(scenario())


def test_abandoned_replica_is_taken_over_after_lease_expiry(graph: FakeGraph, db_url: str) -> None:
    """Replica A dies (no release, no renewal) holding senders mid-work: one message handed to Rasa
    but not finished, one reply sent but not recorded, one still pending. B finishes all of them
    after the lease expires, without a second Rasa turn and without a duplicate reply."""
    from connectors.whatsapp.outbound import render
    s_rasa, s_send, s_wait = "5511920000001", "5511920000002", "5511920000003"

    async def scenario() -> None:
        rec = Recorder()
        dead = Store(make_engine(db_url), lease_s=LEASE_S, owner="dead-host:1:x")
        dead.create_tables()
        dead.insert_items([_item(s_rasa, "wamid.r1", "r1"), _item(s_send, "wamid.s1", "s1"),
                           _item(s_wait, "wamid.w1", "w1")])
        for s in (s_rasa, s_send, s_wait):
            assert dead.claim(s)
        # s_rasa: Rasa saved the turn, the inbox row is still pending
        row = dead.next_pending(s_rasa)
        assert row is not None and dead.begin_attempt(row.id)
        rec.tracker[f"whatsapp:{s_rasa}"] = [("wamid.r1", "eco: r1")]  # Rasa keys it by conversation id
        # s_send: the reply was queued and is being sent (it never reaches Meta here)
        row = dead.next_pending(s_send)
        assert row is not None and dead.begin_attempt(row.id)
        assert dead.finish(row.id, "done", None, ("wamid.s1", s_send, render({"text": "eco: s1"})))
        assert dead.mark_sending(dead.pending_outbox(s_send)[0].id, True)
        died_at = time.time()

        b = Worker(_settings(graph, db_url))
        b.start(rec.app(), rec.handler("b"))
        try:
            await asyncio.sleep(LEASE_S * 0.6)
            assert graph.sent() == [] and rec.calls == []  # A's leases are still live: hands off
            await _wait(lambda: len(graph.sent()) >= 3, 30)
            await asyncio.sleep(1.0)
        finally:
            await b.stop()
        assert time.time() - died_at >= LEASE_S
        assert rec.calls == [("b", s_wait, "wamid.w1")]  # r1 came from the tracker, not a new turn
        assert _texts(graph, s_rasa) == ["eco: r1"]
        assert _texts(graph, s_wait) == ["eco: w1"]
        # s1 was caught mid-send: resent once after the grace period (no status from Meta came)
        assert _texts(graph, s_send) == ["eco: s1"], [(r.body.get("to"), r.body.get("type")) for r in graph.sent()]
        dead.engine.dispose()

    asyncio.run(scenario())


# ---- two real Rasa servers, one killed ----------------------------------------------------------

def _user_events(srv: RasaServer, sender: str) -> List[str]:
    _, tracker = srv.get(f"/conversations/whatsapp:{sender}/tracker")
    return [e.get("message_id") for e in tracker["events"] if e["event"] == "user"]


def test_two_rasa_servers_and_a_kill9(graph: FakeGraph, tmp_path: Path) -> None:
    """Interleaved deliveries to two `rasa run` replicas over one SQLite database; replica A is then
    killed with SIGKILL right after taking a second wave: B completes everything, once each."""
    model = tiny_model()
    db = tmp_path / "atende.db"
    # A holds each message up to 10 s while deliveries keep coming (acknowledgements first), so the
    # second wave is claimed by A but not yet handled when A is killed
    a = RasaServer(tmp_path, graph.base_url, db, extra_env={
        "WHATSAPP_ACK_PRIORITY_S": "10", "WHATSAPP_MAX_DEFER_S": "10"}).start(model)
    # B confirms sends through Meta's statuses (echoed by the fake Graph API, as Meta does) and
    # resends an unconfirmed one after 3 s: if A was killed in the middle of a send, B resends it
    # only when Graph never accepted it, whatever the machine's speed.
    b = RasaServer(tmp_path, graph.base_url, db, extra_env={"WHATSAPP_RESEND_GRACE_S": "3"}).start(model)
    graph.echo_statuses(b.webhook, b.app_secret)
    senders = [f"55119300000{i:02d}" for i in range(6)]
    try:
        for k in range(2):
            for i, to in enumerate(senders):
                srv = (a, b)[(i + k) % 2]
                body = json.dumps(text_notification(to, f"wamid.rep{i}.{k}", "sim")).encode()
                assert srv.post(body)[0] == 200
        deadline = time.time() + 60
        while time.time() < deadline and len(graph.sent()) < 2 * len(senders):
            time.sleep(0.05)
        # second wave, all to A, which dies right after acknowledging it
        for i, to in enumerate(senders):
            assert a.post(json.dumps(text_notification(to, f"wamid.rep{i}.2", "sim")).encode())[0] == 200
        a.kill9()
        killed_at, sent_at_kill = time.time(), len(graph.sent())
        # A died with (at least part of) the second wave in its hands: the takeover is exercised
        assert 2 * len(senders) <= sent_at_kill < 3 * len(senders)
        deadline = time.time() + 90
        while time.time() < deadline and len(graph.sent()) < 3 * len(senders):
            time.sleep(0.05)
        assert len(graph.sent()) == 3 * len(senders)
        took = max(r.at for r in graph.sent()) - killed_at
        assert took >= 1.0  # B waited for A's leases (3 s, renewed every second) to expire
        print(f"second wave completed by B {took:.1f} s after the kill")
        time.sleep(4)  # a lease period and more: any duplicate would show up here
        for i, to in enumerate(senders):
            got = [r.body["text"]["body"] for r in graph.sent() if r.body.get("to") == to]
            assert got == ["Confirmado, obrigado!"] * 3, (to, got)
            assert _user_events(b, to) == [f"wamid.rep{i}.{k}" for k in range(3)]  # once each, in order
        with sqlite3.connect(db) as c:
            assert c.execute("select count(*) from whatsapp_inbox where state != 'done'").fetchone() == (0,)
            assert c.execute("select count(*) from whatsapp_outbox where send_state != 'accepted'").fetchone() == (0,)
    finally:
        a.kill9()
        b.stop()
