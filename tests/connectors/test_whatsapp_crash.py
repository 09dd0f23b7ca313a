"""Crash tests: kill -9 the Rasa server inside each window; after a restart every reply goes out once."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whatsapp_rasa import RasaServer, free_port, notification, text_notification, tiny_model  # noqa: E402

from fake_graph import FakeGraph  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture()
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as g:
        yield g


def replies_to(graph: FakeGraph, to: str) -> List[Any]:
    return [r for r in graph.sent() if r.body.get("to") == to]


def wait_replies(graph: FakeGraph, to: str, n: int, timeout: float = 30) -> List[Any]:
    deadline = time.time() + timeout
    while time.time() < deadline and len(replies_to(graph, to)) < n:
        time.sleep(0.05)
    return replies_to(graph, to)


def user_events(srv: RasaServer, sender: str, message_id: str) -> int:
    _, tracker = srv.get(f"/conversations/whatsapp:{sender}/tracker")
    return len([e for e in tracker["events"] if e["event"] == "user" and e.get("message_id") == message_id])


def test_kill9_right_after_the_200(graph: FakeGraph, tmp_path: Path) -> None:
    model = tiny_model()
    db = tmp_path / "atende.db"
    # The kill may land mid-send: like Meta, the fake Graph API echoes a "sent" status for every
    # accepted send (to the restarted server), which confirms such a row; a send that never reached
    # Meta is resent after the (short) grace period. Either way: exactly one reply.
    port2 = free_port()
    graph.echo_statuses(f"http://127.0.0.1:{port2}/webhooks/whatsapp/webhook", "app-secret")
    srv = RasaServer(tmp_path, graph.base_url, db).start(model)
    senders = [f"55119000000{i:02d}" for i in range(6)]
    try:
        for i, to in enumerate(senders):
            assert srv.post(json.dumps(text_notification(to, f"wamid.crash{i}", "sim")).encode())[0] == 200
    finally:
        srv.kill9()  # right after the last 200
    srv2 = RasaServer(tmp_path, graph.base_url, db, port=port2,
                      extra_env={"WHATSAPP_RESEND_GRACE_S": "4"}).start(model)
    try:
        for to in senders:
            assert len(wait_replies(graph, to, 1)) >= 1
        time.sleep(5)  # past the grace period: any duplicate would show up here
        for i, to in enumerate(senders):
            assert [r.body["text"]["body"] for r in replies_to(graph, to)] == ["Confirmado, obrigado!"]
            assert user_events(srv2, to, f"wamid.crash{i}") == 1
        with sqlite3.connect(db) as c:
            assert c.execute("select count(*) from whatsapp_inbox where state != 'done'").fetchone() == (0,)
    finally:
        srv2.stop()


def test_crash_after_rasa_handled_before_the_inbox_row_is_done(graph: FakeGraph, tmp_path: Path) -> None:
    model = tiny_model()
    db = tmp_path / "atende.db"
    srv = RasaServer(tmp_path, graph.base_url, db, fault="exit_after_rasa").start(model)
    to, mid = "5511988887777", "wamid.window1"
    assert srv.post(json.dumps(text_notification(to, mid, "oi")).encode())[0] == 200
    assert srv.proc is not None
    srv.proc.wait(30)  # the process dies inside the window
    assert replies_to(graph, to) == []
    srv2 = RasaServer(tmp_path, graph.base_url, db).start(model)
    try:
        assert len(wait_replies(graph, to, 1)) == 1
        time.sleep(1.5)
        sent = replies_to(graph, to)
        assert len(sent) == 1 and sent[0].body["interactive"]["body"]["text"].startswith("Olá!")
        assert user_events(srv2, to, mid) == 1  # Rasa did not handle the message twice
        assert "already handled by Rasa" in srv2.log()
    finally:
        srv2.stop()


def test_crash_after_meta_accepted_before_it_was_recorded(graph: FakeGraph, tmp_path: Path) -> None:
    """A send caught by the crash is confirmed by Meta's status (biz_opaque_callback_data) and never
    resent; without any status it is resent after WHATSAPP_RESEND_GRACE_S (nothing is lost)."""
    model = tiny_model()
    db = tmp_path / "atende.db"
    env = {"WHATSAPP_RESEND_GRACE_S": "3"}
    confirmed, silent = "5511977776666", "5511966665555"
    srv = RasaServer(tmp_path, graph.base_url, db, extra_env=env, fault="exit_after_send").start(model)
    assert srv.post(json.dumps(text_notification(confirmed, "wamid.s1", "sim")).encode())[0] == 200
    assert srv.proc is not None
    srv.proc.wait(30)
    first = replies_to(graph, confirmed)
    assert len(first) == 1
    # (a long grace while the second process lives: the first row waits for its confirmation)
    srv2 = RasaServer(tmp_path, graph.base_url, db, extra_env={"WHATSAPP_RESEND_GRACE_S": "120"},
                      fault="exit_after_send").start(model)
    assert srv2.post(json.dumps(text_notification(silent, "wamid.s2", "não")).encode())[0] == 200
    assert srv2.proc is not None
    srv2.proc.wait(30)
    srv3 = RasaServer(tmp_path, graph.base_url, db, extra_env=env).start(model)
    try:
        status = notification("messages", {"statuses": [{
            "id": first[0].wamid, "status": "sent", "timestamp": "1", "recipient_id": confirmed,
            "biz_opaque_callback_data": first[0].body["biz_opaque_callback_data"]}]})
        assert srv3.post(json.dumps(status).encode())[0] == 200
        assert len(wait_replies(graph, silent, 2, timeout=20)) == 2  # resent after the grace period
        time.sleep(4)
        assert len(replies_to(graph, confirmed)) == 1
        with sqlite3.connect(db) as c:
            rows = c.execute("select recipient, send_state, status from whatsapp_outbox order by id").fetchall()
        assert rows == [(confirmed, "accepted", "sent"), (silent, "accepted", None)]
    finally:
        srv3.stop()
