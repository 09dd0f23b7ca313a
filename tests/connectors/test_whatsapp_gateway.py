"""The WhatsApp gateway (`python -m connectors.whatsapp.gateway`) as a real process: the same answers as
the Rasa channel for bad input, and the whole path signed webhook -> gateway -> Rasa -> fake Graph
API, including a delivery acknowledged while Rasa is down."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whatsapp_rasa import Gateway, RasaServer, notification, text_notification, tiny_model  # noqa: E402

from fake_graph import FakeGraph  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as g:
        yield g


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway alone (nobody to wake): what it stores is what the inbox holds."""
    wd = tmp_path_factory.mktemp("wa-gw")
    gw = Gateway(wd, wd / "atende.db").start()
    yield gw
    gw.stop()


def rows(db: Path, sql: str = "select item_id, state from whatsapp_inbox order by id") -> List[Any]:
    with sqlite3.connect(db, timeout=30) as c:
        return c.execute(sql).fetchall()


def test_verify_handshake(gateway: Gateway) -> None:
    ok = gateway.get("/webhooks/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=42")
    assert ok == (200, 42)
    assert gateway.get("/webhooks/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=no&hub.challenge=1")[0] == 403
    assert gateway.get("/webhooks/whatsapp/webhook?hub.mode=subscribe")[0] == 400


def test_bad_input_gets_its_status_and_changes_nothing(gateway: Gateway) -> None:
    good = json.dumps(text_notification("5511911112222", "wamid.gw.good", "oi")).encode()
    assert gateway.post(good) == (200, {"status": "ok", "items": 1, "new": 1})
    before = rows(gateway.db_path)
    assert before == [("wamid.gw.good", "pending")]

    assert gateway.post(b"{not json")[0] == 400
    status, body = gateway.post(json.dumps({"object": "page", "entry": []}).encode())
    assert status == 400 and "not a WhatsApp notification" in body["error"]
    unknown_type = notification("messages", {"contacts": [{"wa_id": "5511911112222"}], "messages": [{
        "from": "5511911112222", "id": "wamid.gw.bad", "timestamp": "1", "type": "hologram"}]})
    assert gateway.post(json.dumps(unknown_type).encode())[0] == 400
    huge = json.dumps(text_notification("5511911112222", "wamid.gw.huge", "x" * (3 * 1024 * 1024))).encode()
    assert gateway.post(huge)[0] == 413
    assert gateway.post(good, signature=None)[0] == 401
    assert gateway.post(good, secret="another-secret")[0] == 403
    assert gateway.post(good, signature="sha256=" + "0" * 64)[0] == 403
    # a replay (Meta retries) is acknowledged and stores nothing new
    assert gateway.post(good) == (200, {"status": "ok", "items": 1, "new": 0})
    assert rows(gateway.db_path) == before


def test_without_app_secret_nothing_is_accepted(tmp_path: Path) -> None:
    gw = Gateway(tmp_path, tmp_path / "atende.db", app_secret=None).start()
    try:
        body = json.dumps(text_notification("5511933334444", "wamid.gw.nosecret", "oi")).encode()
        assert gw.post(body, secret="app-secret")[0] == 503
        assert gw.post(body, signature=None)[0] == 503
        assert gw.get("/webhooks/whatsapp/")[1]["enabled"] is False
        assert rows(tmp_path / "atende.db") == []
    finally:
        gw.stop()


def test_whole_path_through_the_gateway(graph: FakeGraph, tmp_path: Path) -> None:
    """Signed webhook -> gateway (stores, 200, wakes Rasa) -> Rasa -> reply at the fake Graph API;
    Meta's status for the reply also comes in through the gateway and lands on the outbox row."""
    graph.reset()
    db = tmp_path / "atende.db"
    rasa = RasaServer(tmp_path / "rasa", graph.base_url, db)
    gw = Gateway(tmp_path / "gw", db, [f"{rasa.url}/webhooks/whatsapp/wake"]).start()
    rasa.start(tiny_model())
    try:
        to = "5511955556666"
        assert gw.post(json.dumps(text_notification(to, "wamid.gw.path1", "oi")).encode())[0] == 200
        assert graph.wait_texts(to, 1) == ["Olá! Sou o assistente de teste. Posso ajudar?"]
        assert gw.get("/health")[1]["wakes_sent"] >= 1  # Rasa was told, not left to its poll
        out = [r for r in graph.sent() if r.body.get("to") == to][0]
        status = notification("messages", {"statuses": [{"id": out.wamid, "status": "delivered", "timestamp": "1",
                                                         "recipient_id": to}]})
        assert gw.post(json.dumps(status).encode())[0] == 200
        deadline = time.time() + 20
        while time.time() < deadline and rows(db, "select status from whatsapp_outbox") != [("delivered",)]:
            time.sleep(0.1)
        assert rows(db, "select status from whatsapp_outbox") == [("delivered",)]
        _, tracker = rasa.get(f"/conversations/whatsapp:{to}/tracker")
        users = [e for e in tracker["events"] if e["event"] == "user"]
        assert [(u["input_channel"], u["message_id"]) for u in users] == [("whatsapp", "wamid.gw.path1")]
        assert graph.violations() == []
    finally:
        gw.stop()
        rasa.stop()


def test_delivery_while_rasa_is_down_is_answered_once_rasa_is_up(graph: FakeGraph, tmp_path: Path) -> None:
    graph.reset()
    db = tmp_path / "atende.db"
    model = tiny_model()
    rasa = RasaServer(tmp_path / "rasa", graph.base_url, db)
    gw = Gateway(tmp_path / "gw", db, [f"{rasa.url}/webhooks/whatsapp/wake"]).start()
    rasa.start(model)
    first, second = "5511977778888", "5511977779999"
    try:
        assert gw.post(json.dumps(text_notification(first, "wamid.gw.down1", "sim")).encode())[0] == 200
        assert graph.wait_texts(first, 1) == ["Confirmado, obrigado!"]
        rasa.kill9()
        # Rasa is dead: the gateway still acknowledges (and keeps) the delivery and its replay
        body = json.dumps(text_notification(second, "wamid.gw.down2", "sim")).encode()
        assert gw.post(body) == (200, {"status": "ok", "items": 1, "new": 1})
        assert gw.post(body) == (200, {"status": "ok", "items": 1, "new": 0})
        time.sleep(1)
        assert graph.texts_to(second) == []
        rasa = RasaServer(tmp_path / "rasa", graph.base_url, db, port=rasa.port).start(model)
        assert graph.wait_texts(second, 1) == ["Confirmado, obrigado!"]
        time.sleep(1.5)
        assert graph.texts_to(first) == ["Confirmado, obrigado!"]
        assert graph.texts_to(second) == ["Confirmado, obrigado!"]
        assert rows(db) == [("wamid.gw.down1", "done"), ("wamid.gw.down2", "done")]
    finally:
        gw.stop()
        rasa.stop()


def test_send_confirmed_while_rasa_was_down_is_never_resent(graph: FakeGraph, tmp_path: Path) -> None:
    """Rasa dies right after Meta accepted a reply (before recording it); Meta's "sent" status
    quoting the outbox row reaches the gateway while Rasa is down. After the restart the status is
    applied before the outbox is flushed, so the reply is not sent again even with no grace."""
    graph.reset()
    db = tmp_path / "atende.db"
    model = tiny_model()
    rasa = RasaServer(tmp_path / "rasa", graph.base_url, db, fault="exit_after_send")
    gw = Gateway(tmp_path / "gw", db, [f"{rasa.url}/webhooks/whatsapp/wake"]).start()
    rasa.start(model)
    to = "5511944443333"
    try:
        assert gw.post(json.dumps(text_notification(to, "wamid.gw.conf1", "sim")).encode())[0] == 200
        assert rasa.proc is not None
        rasa.proc.wait(30)  # os._exit right after the API accepted the reply
        sent = [r for r in graph.sent() if r.body.get("to") == to]
        assert len(sent) == 1
        assert rows(db, "select send_state from whatsapp_outbox") == [("sending",)]
        status = notification("messages", {"statuses": [{
            "id": sent[0].wamid, "status": "sent", "timestamp": "1", "recipient_id": to,
            "biz_opaque_callback_data": sent[0].body["biz_opaque_callback_data"]}]})
        assert gw.post(json.dumps(status).encode())[0] == 200  # Rasa is down: the gateway keeps it
        rasa = RasaServer(tmp_path / "rasa", graph.base_url, db, port=rasa.port,
                          extra_env={"WHATSAPP_RESEND_GRACE_S": "0"}).start(model)
        deadline = time.time() + 20
        while time.time() < deadline and rows(db, "select send_state, status from whatsapp_outbox") != [
                ("accepted", "sent")]:
            time.sleep(0.1)
        time.sleep(2)  # a resend would show up here
        assert rows(db, "select send_state, status from whatsapp_outbox") == [("accepted", "sent")]
        assert graph.texts_to(to) == ["Confirmado, obrigado!"]
    finally:
        gw.stop()
        rasa.stop()
