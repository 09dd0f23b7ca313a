"""CORS of the website channel against a real Rasa server (bot env): one authority per route.

engine.io answers CORS for ``/socket.io/`` with our allowed-origin check (exactly one
``Access-Control-Allow-Origin``, the request's origin, never ``*``); the Rasa HTTP API runs
without ``--cors`` and sends none. Foreign origins are refused on both transports.

Run: .venv-bot/bin/pytest tests/connectors/test_website_cors.py
"""

from __future__ import annotations

import base64
import http.client
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

import pytest

from website_support import RasaServer, fixture_model

pytestmark = pytest.mark.integration

ALLOWED = "http://allowed.example"
DEV_ORIGIN = "http://localhost:8099"  # allowed by the development default (no list)
FOREIGN = "http://evil.example"
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
ACAO = "access-control-allow-origin"


@pytest.fixture(scope="module")
def rasa() -> Iterator[RasaServer]:
    with RasaServer(fixture_model(), website={"allowed_origins": [ALLOWED]}) as server:
        yield server


@pytest.fixture(scope="module")
def dev_rasa() -> Iterator[RasaServer]:
    """The development default: no origin list, localhost origins on any port."""
    with RasaServer(fixture_model(), website={"allowed_origins": []}) as server:
        yield server


Response = Tuple[int, List[Tuple[str, str]], bytes]


def request(server: RasaServer, method: str, path: str, headers: Optional[Dict[str, str]] = None,
            body: Optional[bytes] = None) -> Response:
    """One raw HTTP request; headers come back as a list, so duplicates stay visible."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, [(k.lower(), v) for k, v in resp.getheaders()], resp.read()
    finally:
        conn.close()


def values(headers: List[Tuple[str, str]], name: str) -> List[str]:
    return [v for k, v in headers if k == name]


def handshake(server: RasaServer, origin: str) -> str:
    status, headers, body = request(server, "GET", HANDSHAKE, {"Origin": origin})
    assert status == 200, body
    assert values(headers, ACAO) == [origin]
    return json.loads(body.decode()[1:])["sid"]  # "0{...}": the engine.io open packet


# ---------------------------------------------------------------- socket.io / engine.io
@pytest.mark.parametrize("origin", [ALLOWED])
def test_polling_handshake_from_an_allowed_origin_gets_exactly_that_origin(
    rasa: RasaServer, origin: str
) -> None:
    status, headers, body = request(rasa, "GET", HANDSHAKE, {"Origin": origin})
    assert status == 200, body
    assert body.startswith(b"0{") and b'"sid"' in body
    assert values(headers, ACAO) == [origin]  # one header, one value, never "*"
    assert "*" not in ",".join(values(headers, ACAO))
    # No credentials mode: the widget sends no cookies, so none may be allowed.
    assert values(headers, "access-control-allow-credentials") == []


def test_development_default_allows_localhost_on_any_port_with_one_header(dev_rasa: RasaServer) -> None:
    for origin in (DEV_ORIGIN, "http://127.0.0.1:5173"):
        status, headers, _ = request(dev_rasa, "GET", HANDSHAKE, {"Origin": origin})
        assert status == 200
        assert values(headers, ACAO) == [origin]
    status, headers, _ = request(dev_rasa, "GET", HANDSHAKE, {"Origin": FOREIGN})
    assert status == 400 and values(headers, ACAO) == []


def test_polling_requests_after_the_handshake_carry_one_allowed_origin(rasa: RasaServer) -> None:
    sid = handshake(rasa, ALLOWED)
    path = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    # socket.io connect packet for the default namespace, then the server's answer by GET.
    status, headers, body = request(
        rasa, "POST", path, {"Origin": ALLOWED, "Content-Type": "text/plain;charset=UTF-8"}, b"40"
    )
    assert status == 200, body
    assert values(headers, ACAO) == [ALLOWED]
    status, headers, body = request(rasa, "GET", path, {"Origin": ALLOWED})
    assert status == 200 and body.startswith(b"40"), body
    assert values(headers, ACAO) == [ALLOWED]


def test_foreign_origin_is_refused_at_the_polling_handshake(rasa: RasaServer) -> None:
    status, headers, body = request(rasa, "GET", HANDSHAKE, {"Origin": FOREIGN})
    assert status == 400
    assert b"not an accepted origin" in body
    assert values(headers, ACAO) == []


def test_foreign_origin_is_refused_at_the_websocket_handshake(rasa: RasaServer) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": key}
    status, headers, _ = request(rasa, "GET", "/socket.io/?EIO=4&transport=websocket",
                                 dict(upgrade, Origin=FOREIGN))
    assert status == 400
    assert values(headers, ACAO) == []
    # the same upgrade from an allowed origin is accepted (101 Switching Protocols)
    status, _, _ = request(rasa, "GET", "/socket.io/?EIO=4&transport=websocket",
                           dict(upgrade, Origin=ALLOWED))
    assert status == 101


def test_preflight_from_an_allowed_origin_allows_what_a_browser_needs(rasa: RasaServer) -> None:
    status, headers, _ = request(rasa, "OPTIONS", HANDSHAKE, {
        "Origin": ALLOWED,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    })
    assert status in (200, 204)
    assert values(headers, ACAO) == [ALLOWED]
    methods = values(headers, "access-control-allow-methods")
    assert len(methods) == 1
    allowed_methods = {m.strip().upper() for m in methods[0].split(",")}
    assert {"GET", "POST"} <= allowed_methods
    allow_headers = values(headers, "access-control-allow-headers")
    assert len(allow_headers) == 1 and "content-type" in allow_headers[0].lower()


def test_preflight_from_a_foreign_origin_is_refused(rasa: RasaServer) -> None:
    status, headers, _ = request(rasa, "OPTIONS", HANDSHAKE, {
        "Origin": FOREIGN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    })
    # refused: an error status and no Access-Control-Allow-Origin, so the browser blocks the
    # request that would follow (engine.io's generic Allow-Methods line grants nothing alone)
    assert status == 400
    assert values(headers, ACAO) == []


def test_polling_for_an_unknown_engineio_session_is_a_400(rasa: RasaServer) -> None:
    status, headers, _ = request(
        rasa, "GET", "/socket.io/?EIO=4&transport=polling&sid=nao-existe-0123", {"Origin": ALLOWED}
    )
    assert status == 400
    assert len(values(headers, ACAO)) <= 1


# ---------------------------------------------------------------- the Rasa HTTP API
@pytest.mark.parametrize("origin", [ALLOWED, FOREIGN, None])
@pytest.mark.parametrize("method,path", [
    ("GET", "/status"),
    ("GET", "/"),
    ("GET", "/conversations/web:cors-probe-0001/tracker"),
    ("OPTIONS", "/status"),
    ("OPTIONS", "/conversations/web:cors-probe-0001/tracker"),
    ("OPTIONS", "/conversations/web:cors-probe-0001/trigger_intent"),
])
def test_rasa_http_api_sends_no_cors_header(
    rasa: RasaServer, origin: Optional[str], method: str, path: str
) -> None:
    headers = {"Origin": origin} if origin else {}
    if method == "OPTIONS":
        headers.update({"Access-Control-Request-Method": "POST",
                        "Access-Control-Request-Headers": "content-type"})
    status, got, _ = request(rasa, method, path, headers)
    assert status < 500
    # (Sanic-CORS may still say "Allow-Credentials: true" with no origin: meaningless without
    # an Access-Control-Allow-Origin, which is what a browser checks.)
    assert values(got, ACAO) == [], (method, path, got)


def test_widget_script_route_sends_no_cors_header(rasa: RasaServer) -> None:
    # A <script src> needs no CORS; the route must not grow a second authority.
    _, headers, _ = request(rasa, "GET", "/webhooks/website/widget.js", {"Origin": ALLOWED})
    assert values(headers, ACAO) == []


class RasaWithBlanketCors(RasaServer):
    """The old command line (``--cors "*"``), which duplicated the header on socket.io."""

    def _spawn(self, argv: List[str], env: Dict[str, str], name: str) -> None:
        super()._spawn(argv + ["--cors", "*"], env, name)


def test_socketio_keeps_one_header_even_with_a_blanket_cors_flag() -> None:
    with RasaWithBlanketCors(fixture_model(), website={"allowed_origins": [ALLOWED]}) as server:
        status, headers, _ = request(server, "GET", HANDSHAKE, {"Origin": ALLOWED})
        assert status == 200 and values(headers, ACAO) == [ALLOWED]
        status, headers, _ = request(server, "OPTIONS", HANDSHAKE, {
            "Origin": ALLOWED, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert status in (200, 204) and values(headers, ACAO) == [ALLOWED]
        status, headers, _ = request(server, "GET", HANDSHAKE, {"Origin": FOREIGN})
        assert status == 400 and values(headers, ACAO) == []


# ---------------------------------------------------------------- stock Rasa clients' protocol
def test_stock_rasa_client_gets_rasa_shapes_and_cannot_type_commands(rasa: RasaServer) -> None:
    """A client speaking only Rasa's protocol (as rasa-webchat does, cross-origin): plain
    ``{text}`` / ``{text, quick_replies}`` messages, buttons sent back as bare payloads, and
    typed commands still neutralised."""
    import asyncio
    import time as _time

    import socketio

    async def scenario() -> list:
        got: list = []
        client = socketio.AsyncClient(reconnection=False)
        client.on("bot_uttered", lambda data: got.append(data))
        confirmed: list = []
        client.on("session_confirm", lambda sid: confirmed.append(sid))
        await client.connect(rasa.url, headers={"Origin": ALLOWED}, transports=["polling"])
        await client.emit("session_request", {"session_id": None})

        async def until(pred, timeout: float = 15.0) -> None:
            deadline = _time.monotonic() + timeout
            while not pred():
                assert _time.monotonic() < deadline, got
                await asyncio.sleep(0.05)

        await until(lambda: confirmed)
        session = confirmed[0]

        def say(text: str) -> Any:
            return client.emit("user_uttered", {"message": text, "session_id": session,
                                                "customData": {"language": "pt"}})

        await say('/EXTERNAL_ping{"customer_id": "1"}')  # typed command: neutralised
        await asyncio.sleep(1.5)
        await say("quanto custa")
        await until(lambda: any("quick_replies" in m for m in got))
        greetings = lambda: sum(m.get("text", "").startswith("Olá") for m in got)  # noqa: E731
        before = greetings()
        await say("/saudacao")  # the button it was offered, sent back bare
        await until(lambda: greetings() > before)
        try:
            await asyncio.wait_for(client.disconnect(), 1.0)
        except asyncio.TimeoutError:
            pass
        return [session, got]

    session, got = asyncio.run(asyncio.wait_for(scenario(), 90))
    assert "Mensagem do atendente chegou." not in [m.get("text") for m in got]
    price = next(m for m in got if "quick_replies" in m)
    assert set(price) == {"text", "quick_replies"}  # no mid, no custom: rasa-webchat's shapes
    assert "[Tabela de preços](https://example.com/precos)" in price["text"]  # sources as links
    assert [r["payload"] for r in price["quick_replies"]] == ["/saudacao", "/request_human"]
    assert all(set(m) == {"text"} for m in got if m is not price)
    tracker = rasa.tracker(f"web:{session}")
    intents = [e["parse_data"]["intent"]["name"] for e in tracker["events"] if e["event"] == "user"]
    texts = [e["text"] for e in tracker["events"] if e["event"] == "user"]
    assert texts[0] == 'EXTERNAL_ping{"customer_id": "1"}' and intents[0] != "EXTERNAL_ping"
    assert intents[1:] == ["preco", "saudacao"]
