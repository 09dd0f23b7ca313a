"""The website chat through the `make run-prod` proxy: nginx in front of TWO real Rasa replicas.

One production topology (ops/run_prod.py `Topology`, replicas=2: PostgreSQL and Redis as it
decides, the action server, the WhatsApp gateway, nginx from ops/prod_nginx.py) serves every test
of this module, with the project's model and the demo documentation indexed. The vendor's pages
come from a loopback HTTP server on another port, the one allowed origin; Debian's Chromium loads
them:

- the stock rasa-webchat 1.0.1 (long-polling, then the upgrade): greeting, an answer with its
  sources, a quick reply clicked and answered, and every technician's reply, with or without a
  session id in its URL (the replicas share socket.io emits through Redis);
- Atende's widget with WebSockets blocked in the page (long-polling only): history survives a
  reload, nothing twice, a technician's reply through the proxy reaches the polling socket;
- a plain socket.io-client 4.x, polling upgraded to a WebSocket.

Sticky routing, proven on the proxy's access log (its `upstream=` field; each browser context
has its own user agent, the access log's last field): every request of one visitor reached one
replica, visitors spread over both, and a console reply (`/conversations/web:<id>/`) reaches
the replica that holds the visitor's socket. Why it matters: one visitor's engine.io session
sent straight to the other replica is refused with 400. A foreign origin is refused through the
proxy on both transports.
Run: .venv/bin/pytest tests/browser/test_prod_proxy.py
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from prod_proxy_support import PageServer, Proxy, Visitor, raw_upgrade
from test_stock_clients import BLOCK_WEBSOCKETS
from widget_harness import chromium, ensure_widget_built

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(1200)]

GREETING = "Olá! Sou a assistente virtual"
QUESTION = "como faço para emitir uma nota fiscal eletronica?"
DID_IT_HELP = "Isso resolveu?"
SORRY = "Poxa, sinto muito"
TIMEOUT_MS = 90000


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def site() -> Iterator[PageServer]:
    server = PageServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxy(site: PageServer, model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    from ops import procs
    from ops.run_prod import ProdConfig, Topology

    ensure_widget_built()
    database = f"atende_proxy_{secrets.token_hex(4)}"
    env = {"WEBCHAT_ALLOWED_ORIGINS": site.origin, "OPENAI_API_KEY": "",
           "RASA_JWT_SECRET": secrets.token_urlsafe(32), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    topo = Topology(ProdConfig(replicas=2, proxy_port=procs.free_port(), console_port=procs.free_port(),
                               workdir=tmp_path_factory.mktemp("prod"), database=database, console=False,
                               env=env, quiet=True, model=model))
    started = time.monotonic()
    topo.start()
    print(f"\ntopology with 2 replicas ready in {time.monotonic() - started:.0f}s")
    try:
        assert urlsplit(topo.proxy_url).port != urlsplit(site.origin).port
        yield Proxy(topo, site.origin)
    finally:
        external = topo.pg is not None and topo.pg.external
        topo.stop()
        if external:
            topo.pg.psql(f'drop database if exists "{database}" with (force)')


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def visitor(browser: Any, request: pytest.FixtureRequest) -> Iterator[Visitor]:
    v = Visitor(browser, request.node.name[:40].replace("[", "-").replace("]", ""))
    yield v
    v.close()


# ---------------------------------------------------------------- the stock clients
@pytest.mark.parametrize("pin", ["", "session-in-url"])
def test_rasa_webchat_through_the_proxy(visitor: Visitor, site: PageServer, proxy: Proxy, pin: str) -> None:
    """As is, rasa-webchat puts no session id in its URL: the proxy pins it by the client address,
    and a technician's reply (routed by the conversation id) may be produced on the other replica;
    the replicas share socket.io emits through Redis, so every reply reaches it: through the proxy,
    and straight from each replica (one of them does not hold the socket). With the page's own id
    in `socketUrl` (docs/website.md) the proxy also routes the reply to the socket's replica."""
    page = visitor.page
    page.goto(f"{site.origin}/webchat.html?" + urlencode({"rasa": proxy.url, "pin": pin}))
    bot = page.locator(".rw-response")
    bot.filter(has_text=GREETING).first.wait_for(timeout=TIMEOUT_MS)

    page.locator(".rw-new-message").fill(QUESTION)
    page.locator(".rw-new-message").press("Enter")
    bot.filter(has_text=DID_IT_HELP).first.wait_for(timeout=TIMEOUT_MS)
    # the answer lists its sources (a `Fontes:` list under the text, for stock clients)
    answer = bot.filter(has_text="Fontes:").first.inner_text()
    assert re.search(r"Fontes:\s+1 .+ — https?://\S+/docs/erp-demo/nfe/", answer), answer  # published pages
    replies = page.locator(".rw-reply")
    assert replies.all_inner_texts() == ["Sim", "Não"]
    replies.filter(has_text="Não").click()
    bot.filter(has_text=SORRY).first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    texts = bot.all_inner_texts()
    assert sum(GREETING in t for t in texts) == 1 and sum(SORRY in t for t in texts) == 1

    session = page.evaluate("() => JSON.parse(localStorage.getItem('chat_session') || 'null')?.session_id")
    assert session, "rasa-webchat kept no session id"
    # the clicked button went through as its payload
    assert proxy.user_texts(session) == ["/greet", QUESTION, "/deny"]
    if pin:
        assert session == page.evaluate("() => localStorage.getItem('atende-session-id')")
    replies_sent = ["Liberei o acesso ao módulo fiscal."]
    proxy.agent_reply(session, replies_sent[0])
    bot.filter(has_text=f"Carla: {replies_sent[0]}").first.wait_for(timeout=TIMEOUT_MS)
    for n, replica in enumerate(proxy.replicas, 1):
        replies_sent.append(f"Resposta {n}, enviada pela réplica {n}.")
        proxy.agent_reply(session, replies_sent[-1], via=replica)
        bot.filter(has_text=f"Carla: {replies_sent[-1]}").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    texts = bot.all_inner_texts()
    assert [sum(f"Carla: {r}" in t for t in texts) for r in replies_sent] == [1, 1, 1], texts
    assert visitor.traffic.errors == [] and visitor.traffic.cors_errors() == [], visitor.traffic.console
    assert visitor.traffic.polling(), "rasa-webchat starts with long-polling"
    assert any("bot_uttered" in f for f in visitor.traffic.ws_frames), "no answer over the upgraded WebSocket"
    visitor.close()
    owner = proxy.pinned_replica(visitor.agent, websockets=1)
    if pin:
        assert proxy.upstreams(f"/conversations/web:{session}/trigger_intent") == {owner}


def test_plain_socketio_client_polling_then_upgrade(visitor: Visitor, site: PageServer, proxy: Proxy) -> None:
    page = visitor.page
    session = secrets.token_urlsafe(24)
    page.goto(f"{site.origin}/sio.html?" + urlencode(
        {"rasa": proxy.url, "transports": "polling,websocket", "upgrade": "1", "session": session}))
    page.wait_for_function("() => window.__chat.confirmed && window.__chat.upgraded === 'websocket'",
                           timeout=TIMEOUT_MS)
    assert page.evaluate("() => window.__chat.session") == session
    page.locator("#message").fill("oi")
    page.locator("#message").press("Enter")
    log = page.locator("#log li.bot")
    log.filter(has_text=GREETING).first.wait_for(timeout=TIMEOUT_MS)
    page.locator("#message").fill(QUESTION)
    page.locator("#message").press("Enter")
    log.filter(has_text=DID_IT_HELP).first.wait_for(timeout=TIMEOUT_MS)
    answer = log.filter(has_text="Fontes:").first.inner_text()
    assert re.search(r"Fontes:\s+\[1\] .+ — https?://\S+/docs/erp-demo/nfe/", answer), answer
    replies = page.locator("#replies .reply")
    assert replies.all_inner_texts() == ["Sim", "Não"]
    replies.filter(has_text="Não").click()
    log.filter(has_text=SORRY).first.wait_for(timeout=TIMEOUT_MS)

    assert proxy.user_texts(session) == ["oi", QUESTION, "/deny"]
    state = page.evaluate("() => window.__chat")
    assert state["errors"] == [] and visitor.traffic.errors == [] and visitor.traffic.cors_errors() == []
    assert state["transport"] == "websocket" and visitor.traffic.polling()
    assert any("bot_uttered" in f for f in visitor.traffic.ws_frames)
    visitor.close()
    proxy.pinned_replica(visitor.agent, websockets=1)


# ---------------------------------------------------------------- Atende's widget, polling only
def test_widget_over_polling_only_through_the_proxy(visitor: Visitor, site: PageServer, proxy: Proxy) -> None:
    from ops.procs import free_port

    page = visitor.page
    page.add_init_script(BLOCK_WEBSOCKETS % free_port())  # every socket.io WebSocket fails
    page.goto(f"{site.origin}/widget.html?" + urlencode({"rasa": proxy.url}))
    page.wait_for_function("() => window.AtendeChat && window.AtendeChat.__instance", timeout=TIMEOUT_MS)
    root = page.locator("#atende-chat-widget")
    dialog = root.locator("[role=dialog]")
    root.locator(".launcher").click()
    dialog.get_by_role("button", name="Concordo e quero conversar").click()
    bot = dialog.locator(".msg.bot, .msg.notice")
    bot.filter(has_text=GREETING).first.wait_for(timeout=TIMEOUT_MS)
    dialog.locator("textarea").fill(QUESTION)
    dialog.locator("textarea").press("Enter")
    bot.filter(has_text=DID_IT_HELP).first.wait_for(timeout=TIMEOUT_MS)
    assert dialog.locator(".sources li a").count() >= 1  # the answer's sources, listed under it
    dialog.locator(".replies .reply").filter(has_text="Não").click()
    bot.filter(has_text=SORRY).first.wait_for(timeout=TIMEOUT_MS)

    transport = "() => window.AtendeChat.__instance.socket.io.engine.transport.name"
    assert page.evaluate(transport) == "polling"
    session = str(page.evaluate("() => window.AtendeChat.__instance.store.state.sessionId"))
    # a technician's reply from the console, routed by the conversation id: it reaches the
    # replica that holds this visitor's polling socket
    proxy.agent_reply(session, "Liberei o acesso ao módulo fiscal.")
    bot.filter(has_text="Carla: Liberei o acesso ao módulo fiscal.").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(800)
    before_bot = dialog.locator(".msg.bot, .msg.notice").all_inner_texts()
    before_user = dialog.locator(".msg.user").all_inner_texts()
    assert before_user == [QUESTION, "Não"]

    # Why stickiness matters: this visitor's engine.io session exists only on its replica.
    engine = str(page.evaluate("() => window.AtendeChat.__instance.socket.io.engine.id"))
    owner = proxy.pinned_replica(visitor.agent)
    assert proxy.upstreams(f"/conversations/web:{session}/trigger_intent") == {owner}
    other = next(r for r in proxy.replicas if r != owner)
    poll = {"EIO": "4", "transport": "polling", "sid": engine}
    hdrs = {"Origin": site.origin, "Content-Type": "text/plain;charset=UTF-8"}
    wrong = requests.post(f"http://{other}/socket.io/", params=poll, data="3", headers=hdrs, timeout=10)
    assert wrong.status_code == 400, (wrong.status_code, wrong.text)
    right = requests.post(f"http://{owner}/socket.io/", params=poll, data="3", headers=hdrs, timeout=10)  # a pong
    assert right.status_code == 200 and right.text == "OK", (right.status_code, right.text)

    # Reload (still no WebSocket): same session, same history, nothing twice.
    page.reload()
    page.wait_for_function("() => window.AtendeChat && window.AtendeChat.__instance.confirmed", timeout=TIMEOUT_MS)
    if not dialog.is_visible():
        root.locator(".launcher").click()
    page.wait_for_timeout(1500)
    assert str(page.evaluate("() => window.AtendeChat.__instance.store.state.sessionId")) == session
    assert page.evaluate(transport) == "polling"
    assert dialog.locator(".msg.bot, .msg.notice").all_inner_texts() == before_bot
    assert dialog.locator(".msg.user").all_inner_texts() == before_user
    assert sum("Carla: Liberei" in t for t in before_bot) == 1 and sum(DID_IT_HELP in t for t in before_bot) == 1
    assert proxy.user_texts(session) == ["/greet", QUESTION, "/deny"]

    requests_seen = visitor.traffic.requests
    assert requests_seen and all("transport=polling" in u for u in requests_seen), requests_seen
    assert visitor.traffic.ws_frames == [] and visitor.traffic.errors == []
    visitor.close()
    assert proxy.pinned_replica(visitor.agent) == owner  # the reload too


# ---------------------------------------------------------------- sticky routing, two replicas
def test_visitors_are_pinned_and_spread_over_both_replicas(browser: Any, site: PageServer, proxy: Proxy) -> None:
    """socket.io-client visitors (polling, then the upgrade), each with its session id in the URL,
    until both replicas hold some: every request of each one reached its replica, and a
    technician's reply through the proxy reached each of them."""
    owners: Dict[str, str] = {}
    for i in range(16):
        v = Visitor(browser, f"spread{i}")
        try:
            session = secrets.token_urlsafe(24)
            v.page.goto(f"{site.origin}/sio.html?" + urlencode(
                {"rasa": proxy.url, "transports": "polling,websocket", "upgrade": "1", "session": session}))
            v.page.wait_for_function("() => window.__chat.confirmed && window.__chat.upgraded === 'websocket'",
                                     timeout=TIMEOUT_MS)
            v.page.locator("#message").fill("oi")
            v.page.locator("#message").press("Enter")
            log = v.page.locator("#log li.bot")
            log.filter(has_text=GREETING).first.wait_for(timeout=TIMEOUT_MS)
            proxy.agent_reply(session, f"Resposta para o visitante {i}.")
            log.filter(has_text=f"Carla: Resposta para o visitante {i}.").first.wait_for(timeout=TIMEOUT_MS)
        finally:
            v.close()
        owners[v.agent] = proxy.pinned_replica(v.agent, websockets=1)
        assert proxy.upstreams(f"/conversations/web:{session}/trigger_intent") == {owners[v.agent]}
        if len(owners) >= 4 and len(set(owners.values())) == 2:
            break
    spread = Counter(owners.values())
    assert set(spread) == set(proxy.replicas), f"all {len(owners)} visitors on one replica: {dict(spread)}"


def test_a_polling_request_on_the_other_replica_gets_400(proxy: Proxy) -> None:
    """An engine.io session lives on the replica that opened it: the same request that the proxy
    routes to it succeeds, and sent to the other replica it is refused (unknown session)."""
    agent = f"AtendeProxyTest/raw-{secrets.token_hex(3)}"
    hdrs = {"Origin": proxy.origin, "User-Agent": agent}
    session = secrets.token_urlsafe(24)
    handshake = requests.get(f"{proxy.url}/socket.io/", params={"EIO": "4", "transport": "polling",
                                                               "session_id": session}, headers=hdrs, timeout=10)
    assert handshake.status_code == 200, handshake.text
    assert handshake.headers.get("Access-Control-Allow-Origin") == proxy.origin
    sid = json.loads(handshake.text[1:])["sid"]
    owner = proxy.pinned_replica(agent)
    other = next(r for r in proxy.replicas if r != owner)
    poll = {"EIO": "4", "transport": "polling", "sid": sid}
    post = dict(hdrs, **{"Content-Type": "text/plain;charset=UTF-8"})
    for method in ("GET", "POST"):
        wrong = requests.request(method, f"http://{other}/socket.io/", params=poll, headers=post,
                                 data="40" if method == "POST" else None, timeout=10)
        assert wrong.status_code == 400, (method, wrong.status_code, wrong.text)
    # through the proxy (same session id, so the same replica): connect, then poll the answer
    joined = requests.post(f"{proxy.url}/socket.io/", params=dict(poll, session_id=session), data="40",
                           headers=post, timeout=10)
    assert (joined.status_code, joined.text) == (200, "OK")
    answer = requests.get(f"{proxy.url}/socket.io/", params=dict(poll, session_id=session), headers=hdrs, timeout=30)
    assert answer.status_code == 200 and answer.text.startswith("40"), answer.text
    assert proxy.pinned_replica(agent) == owner


# ---------------------------------------------------------------- foreign origins
def test_a_foreign_origin_is_refused_through_the_proxy(browser: Any, proxy: Proxy) -> None:
    foreign = "https://evil.example"
    polling = requests.get(f"{proxy.url}/socket.io/", params={"EIO": "4", "transport": "polling"},
                           headers={"Origin": foreign}, timeout=10)
    assert polling.status_code == 400 and "not an accepted origin" in polling.text, polling.text
    assert "Access-Control-Allow-Origin" not in polling.headers
    preflight = requests.options(f"{proxy.url}/socket.io/", params={"EIO": "4", "transport": "polling"},
                                 headers={"Origin": foreign, "Access-Control-Request-Method": "POST"}, timeout=10)
    assert preflight.status_code == 400 and "Access-Control-Allow-Origin" not in preflight.headers
    status, head = raw_upgrade(proxy, foreign)
    assert status == 400 and "access-control-allow-origin" not in head.lower(), head
    # the allowed origin: one header on the handshake, and the proxy forwards the upgrade
    ok = requests.get(f"{proxy.url}/socket.io/", params={"EIO": "4", "transport": "polling"},
                      headers={"Origin": proxy.origin}, timeout=10)
    assert ok.status_code == 200 and ok.headers.get("Access-Control-Allow-Origin") == proxy.origin
    assert ok.raw.headers.getlist("Access-Control-Allow-Origin") == [proxy.origin]
    status, head = raw_upgrade(proxy, proxy.origin)
    assert status == 101, head

    # a page on another origin, in the browser: no session on either transport
    other = PageServer()
    v = Visitor(browser, "foreign")
    try:
        for transports in ("polling", "websocket"):
            v.page.goto(f"{other.origin}/sio.html?" + urlencode(
                {"rasa": proxy.url, "transports": transports, "upgrade": "0", "session": secrets.token_urlsafe(24)}))
            v.page.wait_for_function("() => window.__chat.errors.length > 0", timeout=30000)
            assert not v.page.evaluate("() => window.__chat.confirmed")
        assert v.traffic.ws_frames == []
    finally:
        v.close()
        other.close()
    hits = proxy.socketio_hits(v.agent)
    assert hits and all(h.status == 400 for h in hits), hits  # refused by the replica, passed on as is
