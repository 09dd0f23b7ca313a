"""Stock socket.io clients against the real website connector, from another origin (app env).

- botfront's ``rasa-webchat`` 1.0.1 (the widget Rasa users already run), unchanged, speaking
  Rasa's protocol: greeting (init payload), an answer with a link and its sources, quick replies
  clicked; with its default transports (long-polling, then the upgrade to a WebSocket) and with
  WebSockets blocked in the page (polling only);
- a plain ``socket.io-client`` 4.x in the browser: polling only, WebSocket only, and polling
  upgraded to a WebSocket.

Both come from npm into ``tests/browser/stock_clients/node_modules`` (``npm ci``, offline from
the cache when it can). The pages are served by a loopback HTTP server on another port than
Rasa's, so every request is cross-origin and goes through the connector's CORS.
Run: .venv/bin/pytest tests/browser/test_stock_clients.py
"""

from __future__ import annotations

import fcntl
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from widget_harness import CHROMIUM, chromium
from website_support import RasaServer, fixture_model

pytestmark = [pytest.mark.browser, pytest.mark.integration]

if not Path(CHROMIUM).exists():
    pytest.skip(f"Chromium not found at {CHROMIUM} (make test installs Debian's chromium)",
                allow_module_level=True)

HERE = Path(__file__).resolve().parent
CLIENTS = HERE / "stock_clients"
GREETING = "Olá! Sou o assistente de testes."
ATTENDANT = "Vou chamar um atendente humano."


def install_clients() -> Dict[str, Path]:
    """``npm ci`` in tests/browser/stock_clients (offline first) unless already installed."""
    files = {
        "rasa-webchat.js": CLIENTS / "node_modules" / "rasa-webchat" / "lib" / "index.js",
        "socket.io.min.js": CLIENTS / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js",
    }
    lock = CLIENTS / "package-lock.json"
    stamp = CLIENTS / "node_modules" / ".lock-installed"
    # one npm ci at a time (not in the folder itself: npm ci empties node_modules)
    with open(Path(tempfile.gettempdir()) / "atende-stock-clients.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        current = stamp.exists() and stamp.read_text() == lock.read_text()
        if not (current and all(p.exists() for p in files.values())):
            _npm_ci(stamp, lock)
    return files


def _npm_ci(stamp: Path, lock: Path) -> None:
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to install the stock clients (tests/browser/stock_clients)")
    base = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    done = subprocess.run(base + ["--prefer-offline"], cwd=CLIENTS, capture_output=True, text=True)
    if done.returncode != 0:  # a cache without these packages: from the registry
        done = subprocess.run(base, cwd=CLIENTS, capture_output=True, text=True)
    assert done.returncode == 0, f"npm ci failed in {CLIENTS}:\n{done.stderr[-3000:]}"
    stamp.write_text(lock.read_text())


WEBCHAT_PAGE = """<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>Loja (rasa-webchat)</title></head>
<body><h1>Loja de exemplo</h1><div id="webchat"></div>
<script src="/vendor/rasa-webchat.js"></script>
<script>
  const q = new URLSearchParams(location.search);
  window.WebChat.default({
    socketUrl: q.get("rasa"),
    socketPath: "/socket.io/",
    initPayload: "/saudacao",
    customData: { language: "pt" },
    title: "Atendimento",
    embedded: true,
    params: { storage: "session" },
  }, document.getElementById("webchat"));
</script></body></html>
"""

# Rasa's socket.io protocol as its docs describe it, with nothing of Atende's extensions.
SIO_PAGE = """<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>Loja (socket.io-client)</title></head>
<body><ul id="log"></ul><div id="replies"></div>
<form id="composer"><input id="message" autocomplete="off"><button>Enviar</button></form>
<script src="/vendor/socket.io.min.js"></script>
<script>
  const q = new URLSearchParams(location.search);
  const state = window.__chat = { session: null, transport: null, upgraded: null, errors: [] };
  const socket = io(q.get("rasa"), {
    transports: q.get("transports").split(","),
    upgrade: q.get("upgrade") !== "0",
  });
  socket.io.on("open", () => {
    state.transport = socket.io.engine.transport.name;
    socket.io.engine.on("upgrade", (t) => { state.upgraded = t.name; state.transport = t.name; });
  });
  socket.on("connect_error", (e) => state.errors.push(String(e && e.message)));
  socket.on("connect", () => socket.emit("session_request", { session_id: state.session }));
  socket.on("session_confirm", (id) => { state.session = id; });
  const say = (text) => socket.emit("user_uttered", { message: text, session_id: state.session });
  socket.on("bot_uttered", (m) => {
    const li = document.createElement("li");
    li.className = "bot";
    li.textContent = m.text || "";
    document.getElementById("log").appendChild(li);
    const box = document.getElementById("replies");
    box.textContent = "";
    for (const r of m.quick_replies || []) {
      const b = document.createElement("button");
      b.className = "reply";
      b.textContent = r.title;
      b.onclick = () => say(r.payload);
      box.appendChild(b);
    }
  });
  document.getElementById("composer").onsubmit = (e) => {
    e.preventDefault();
    const input = document.getElementById("message");
    say(input.value);
    input.value = "";
  };
</script></body></html>
"""

# WebSockets that cannot open, as behind a proxy that refuses the upgrade: every socket.io
# WebSocket goes to a closed loopback port, so the browser reports a real connection error.
BLOCK_WEBSOCKETS = """
((closedPort) => {
  const Native = window.WebSocket;
  class Blocked extends Native {
    constructor(url, protocols) {
      const target = String(url).includes("/socket.io/") ? `ws://127.0.0.1:${closedPort}/blocked` : url;
      super(target, protocols);
    }
  }
  window.WebSocket = Blocked;
})(%d);
"""


class PageServer:
    """The vendor's site: a loopback HTTP server on its own port (another origin than Rasa)."""

    def __init__(self, files: Dict[str, Path]) -> None:
        pages = {"/webchat.html": WEBCHAT_PAGE.encode(), "/sio.html": SIO_PAGE.encode()}
        vendor = {f"/vendor/{name}": path for name, path in files.items()}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = urlsplit(self.path).path
                if path in pages:
                    body, kind = pages[path], "text/html; charset=utf-8"
                elif path in vendor:
                    body, kind = vendor[path].read_bytes(), "application/javascript; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "PageServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def site() -> Iterator[PageServer]:
    with PageServer(install_clients()) as server:
        yield server


@pytest.fixture(scope="module")
def rasa(site: PageServer) -> Iterator[RasaServer]:
    # An explicit origin list, as in production: only the vendor's site may connect.
    website = {"allowed_origins": [site.origin], "allowed_payloads": ["/request_human", "/saudacao"]}
    with RasaServer(fixture_model(), website=website) as server:
        assert urlsplit(server.url).port != urlsplit(site.origin).port  # another origin
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


class Traffic:
    """The page's socket.io traffic: HTTP requests, CORS failures, WebSocket frames."""

    def __init__(self, page: Any) -> None:
        self.requests: List[str] = []
        self.failed: List[Tuple[str, str]] = []
        self.ws_frames: List[str] = []
        self.console: List[str] = []
        self.errors: List[str] = []
        page.on("request", lambda r: self.requests.append(r.url) if "/socket.io/" in r.url else None)
        page.on("requestfailed", lambda r: self.failed.append((r.url, r.failure or "")))
        page.on("console", lambda m: self.console.append(m.text))
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("websocket", self._websocket)

    def _websocket(self, ws: Any) -> None:
        if "/socket.io/" not in ws.url:
            return
        ws.on("framereceived", lambda payload: self.ws_frames.append(
            payload if isinstance(payload, str) else payload.decode("utf-8", "replace")))

    def polling(self) -> List[str]:
        return [u for u in self.requests if parse_qs(urlsplit(u).query).get("transport") == ["polling"]]

    def cors_errors(self) -> List[str]:
        return [m for m in self.console if "CORS" in m or "Access-Control" in m]


def user_intents(rasa: RasaServer, session_id: str) -> List[str]:
    events = rasa.tracker(f"web:{session_id}")["events"]
    return [e["parse_data"]["intent"]["name"] for e in events if e["event"] == "user"]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="pt-BR")
    yield context.new_page()
    context.close()


# ---------------------------------------------------------------- rasa-webchat 1.0.1
@pytest.mark.parametrize("mode", ["polling-upgrade", "polling-only"])
def test_rasa_webchat_from_npm_works_unchanged(
    page: Any, site: PageServer, rasa: RasaServer, mode: str
) -> None:
    from ops.procs import free_port

    if mode == "polling-only":
        page.add_init_script(BLOCK_WEBSOCKETS % free_port())
    traffic = Traffic(page)
    page.goto(f"{site.origin}/webchat.html?" + urlencode({"rasa": rasa.url}))

    bot = page.locator(".rw-response")
    bot.filter(has_text=GREETING).first.wait_for(timeout=20000)  # the init payload's answer

    page.locator(".rw-new-message").fill("quanto custa")
    page.locator(".rw-new-message").press("Enter")
    answer = bot.filter(has_text="custa R$ 99").first
    answer.wait_for(timeout=20000)
    assert answer.locator("strong").inner_text() == "Básico"  # markdown rendered
    hrefs = answer.locator("a").evaluate_all("(as) => as.map((a) => [a.textContent, a.href])")
    assert ["a tabela de preços", "https://example.com/precos"] in hrefs
    assert ["Tabela de preços", "https://example.com/precos"] in hrefs  # its sources
    replies = page.locator(".rw-reply")
    assert replies.all_inner_texts() == ["Quero contratar", "Falar com vendas"]

    replies.filter(has_text="Falar com vendas").click()
    bot.filter(has_text=ATTENDANT).first.wait_for(timeout=20000)
    page.wait_for_timeout(500)
    texts = bot.all_inner_texts()
    assert sum(GREETING in t for t in texts) == 1 and sum(ATTENDANT in t for t in texts) == 1

    session = page.evaluate(
        "() => JSON.parse(sessionStorage.getItem('chat_session') || 'null')?.session_id"
    )
    assert session, "rasa-webchat kept no session id"
    # the clicked button went through as its payload; nothing typed became a command
    assert user_intents(rasa, session) == ["saudacao", "preco", "request_human"]

    assert traffic.errors == [] and traffic.cors_errors() == [], traffic.console
    assert traffic.polling(), "rasa-webchat starts with long-polling"
    bot_frames = [f for f in traffic.ws_frames if "bot_uttered" in f]
    if mode == "polling-upgrade":
        assert bot_frames, "no bot message came over the upgraded WebSocket"
    else:
        assert traffic.ws_frames == []


# ---------------------------------------------------------------- socket.io-client 4.x
@pytest.mark.parametrize("transports,upgrade,final", [
    ("polling", "0", "polling"),
    ("websocket", "1", "websocket"),
    ("polling,websocket", "1", "websocket"),
])
def test_plain_socketio_client_over_each_transport(
    page: Any, site: PageServer, rasa: RasaServer, transports: str, upgrade: str, final: str
) -> None:
    traffic = Traffic(page)
    query = urlencode({"rasa": rasa.url, "transports": transports, "upgrade": upgrade})
    page.goto(f"{site.origin}/sio.html?{query}")
    page.wait_for_function("() => window.__chat.session", timeout=20000)
    page.wait_for_function(f"() => window.__chat.transport === {json.dumps(final)}", timeout=20000)

    page.locator("#message").fill("oi")
    page.locator("#message").press("Enter")
    log = page.locator("#log li.bot")
    log.filter(has_text=GREETING).first.wait_for(timeout=20000)
    page.locator("#message").fill("quanto custa")
    page.locator("#message").press("Enter")
    log.filter(has_text="custa R$ 99").first.wait_for(timeout=20000)
    replies = page.locator("#replies .reply")
    assert replies.all_inner_texts() == ["Quero contratar", "Falar com vendas"]
    replies.first.click()
    log.filter(has_text=GREETING).nth(1).wait_for(timeout=20000)

    session = page.evaluate("() => window.__chat.session")
    assert user_intents(rasa, session) == ["saudacao", "preco", "saudacao"]
    state = page.evaluate("() => window.__chat")
    assert state["errors"] == [] and traffic.errors == [] and traffic.cors_errors() == []
    assert state["transport"] == final
    if transports == "polling":
        assert traffic.ws_frames == [] and traffic.polling()
    elif transports == "websocket":
        assert traffic.polling() == [] and any("bot_uttered" in f for f in traffic.ws_frames)
    else:
        assert traffic.polling() and state["upgraded"] == "websocket"


def test_a_foreign_origin_page_cannot_connect(browser: Any, rasa: RasaServer) -> None:
    """The same page from a port Rasa does not allow: refused on both transports."""
    files = install_clients()
    with PageServer(files) as other:
        context = browser.new_context()
        try:
            page = context.new_page()
            traffic = Traffic(page)
            for transports in ("polling", "websocket"):
                query = urlencode({"rasa": rasa.url, "transports": transports, "upgrade": "0"})
                page.goto(f"{other.origin}/sio.html?{query}")
                page.wait_for_function("() => window.__chat.errors.length > 0", timeout=20000)
                assert page.evaluate("() => window.__chat.session") is None
            assert traffic.ws_frames == []
        finally:
            context.close()
