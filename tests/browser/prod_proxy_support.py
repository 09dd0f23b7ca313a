"""Helpers of tests/browser/test_prod_proxy.py: the vendor's pages, the running topology as the
tests see it (URLs, replicas, the proxy's access log), browser visitors told apart by user agent,
and a raw WebSocket handshake.
"""

from __future__ import annotations

import base64
import http.server
import os
import re
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, List
from urllib.parse import urlsplit

import requests

from test_stock_clients import Traffic, install_clients

# The vendor's pages. `rasa` (query) is the proxy's URL; each page speaks to it cross-origin.
WEBCHAT_PAGE = r"""<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>Loja (rasa-webchat)</title></head>
<body><div id="webchat"></div>
<script src="/vendor/rasa-webchat.js"></script>
<script>
  const q = new URLSearchParams(location.search);
  let socketUrl = q.get("rasa");
  if (q.get("pin")) {  // docs/website.md, "Behind the proxy": the page keeps a session id for it
    let id = localStorage.getItem("atende-session-id");
    if (!id) {
      const bytes = crypto.getRandomValues(new Uint8Array(24));
      id = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
      localStorage.setItem("atende-session-id", id);
    }
    socketUrl += "/?session_id=" + id;
  }
  window.WebChat.default({
    socketUrl, socketPath: "/socket.io/", initPayload: "/greet",
    title: "Atendimento", embedded: true, params: { storage: "local" },
  }, document.getElementById("webchat"));
</script></body></html>
"""

# Rasa's protocol with a plain socket.io-client; `session` (query), when given, also goes into the
# socket.io URL as `session_id`, which is what the proxy pins a conversation on.
SIO_PAGE = """<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>Loja (socket.io-client)</title></head>
<body><ul id="log"></ul><div id="replies"></div>
<form id="composer"><input id="message" autocomplete="off"><button>Enviar</button></form>
<script src="/vendor/socket.io.min.js"></script>
<script>
  const q = new URLSearchParams(location.search);
  const state = window.__chat = { session: q.get("session"), transport: null, upgraded: null, errors: [] };
  const socket = io(q.get("rasa"), {
    transports: q.get("transports").split(","),
    upgrade: q.get("upgrade") !== "0",
    query: state.session ? { session_id: state.session } : {},
  });
  socket.io.on("open", () => {
    state.transport = socket.io.engine.transport.name;
    state.engine = socket.io.engine.id;
    socket.io.engine.on("upgrade", (t) => { state.upgraded = t.name; state.transport = t.name; });
  });
  socket.on("connect_error", (e) => state.errors.push(String(e && e.message)));
  socket.on("connect", () => socket.emit("session_request", { session_id: state.session }));
  socket.on("session_confirm", (id) => { state.session = id; state.confirmed = true; });
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
    say(document.getElementById("message").value);
    document.getElementById("message").value = "";
  };
</script></body></html>
"""

# Atende's widget, loaded from the proxy as a vendor embeds it.
WIDGET_PAGE = """<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>Loja (widget)</title></head>
<body><h1>Loja de exemplo</h1>
<script>
  const q = new URLSearchParams(location.search);
  window.AtendeChatConfig = { initPayload: "/greet" };
  const s = document.createElement("script");
  s.src = q.get("rasa") + "/webhooks/website/widget.js";
  document.body.appendChild(s);
</script></body></html>
"""


class PageServer:
    """The vendor's site on its own loopback port: another origin than the proxy's."""

    def __init__(self) -> None:
        files = install_clients()
        pages = {"/webchat.html": WEBCHAT_PAGE.encode(), "/sio.html": SIO_PAGE.encode(),
                 "/widget.html": WIDGET_PAGE.encode()}
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
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- the proxy's access log
LOG_LINE = re.compile(r'^\S+ \[[^\]]+\] "(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) \d+ \S+ '
                      r'upstream=(?P<upstream>.*?) status=(?P<ustatus>.*?) time=.*? "(?P<agent>[^"]*)"$')


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    status: int
    upstream: str
    agent: str


class Proxy:
    """The running topology as the tests see it: URLs, replicas, the proxy's access log."""

    def __init__(self, topo: Any, origin: str) -> None:
        self.topo = topo
        self.url = topo.proxy_url
        self.origin = origin
        self.replicas = [urlsplit(p.health_url).netloc for p in topo.rasa]  # "127.0.0.1:<port>"
        self.access_log = topo.workdir / "nginx" / "access.log"

    def hits(self, agent: str) -> List[Hit]:
        out = []
        for line in self.access_log.read_text(encoding="utf-8", errors="replace").splitlines():
            m = LOG_LINE.match(line)
            if m and m["agent"] == agent:
                out.append(Hit(m["method"], m["path"], int(m["status"]), m["upstream"], m["agent"]))
        return out

    def socketio_hits(self, agent: str, *, websockets: int = 0, timeout: float = 10.0) -> List[Hit]:
        """The visitor's socket.io requests, once `websockets` upgrades (101, logged when the
        WebSocket closes) are in the log."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [h for h in self.hits(agent) if h.path == "/socket.io/"]
            if sum(h.status == 101 for h in hits) >= websockets or time.monotonic() > deadline:
                return hits

    def pinned_replica(self, agent: str, *, websockets: int = 0) -> str:
        """Asserts that every socket.io request of this visitor reached one and the same replica."""
        hits = self.socketio_hits(agent, websockets=websockets)
        assert hits, f"no socket.io request of {agent!r} in the proxy's access log"
        assert sum(h.status == 101 for h in hits) >= websockets, hits
        upstreams = Counter(h.upstream for h in hits)
        assert len(upstreams) == 1, f"{agent}: requests spread over {dict(upstreams)}"
        (replica,) = upstreams
        assert replica in self.replicas, (replica, self.replicas)  # one server, no retry on another
        # 499: a long-poll still pending when the page closed (or reloaded); never 400/429/5xx
        assert all(h.status in (101, 200, 499) for h in hits), hits
        return replica

    def upstreams(self, path: str) -> set:
        """The replicas that served requests for `path` (the access log has paths, no queries)."""
        lines = self.access_log.read_text(encoding="utf-8", errors="replace").splitlines()
        return {m["upstream"] for m in map(LOG_LINE.match, lines) if m and m["path"] == path}

    def rasa_headers(self) -> Dict[str, str]:
        from helpdesk.services.rasa_client import api_token

        return {"Authorization": f"Bearer {api_token(self.topo.env['RASA_JWT_SECRET'])}"}

    def user_texts(self, session_id: str) -> List[str]:
        resp = requests.get(f"{self.url}/conversations/web:{session_id}/tracker", headers=self.rasa_headers(),
                            timeout=30)
        resp.raise_for_status()
        return [e["text"] for e in resp.json()["events"] if e["event"] == "user"
                and not str(e.get("text") or "").startswith("EXTERNAL")]

    def agent_reply(self, session_id: str, text: str, via: str = "") -> None:
        """What the console sends when a technician answers: through the proxy, by conversation id
        (or straight to the replica `via`, host:port, whichever holds the visitor's socket)."""
        from helpdesk.services.rasa_client import RasaClient

        url = f"http://{via}" if via else self.url
        RasaClient(url, self.topo.env["RASA_JWT_SECRET"], timeout_s=60).agent_reply(
            f"web:{session_id}", agent_text=text, agent_name="Carla")


class Visitor:
    """One browser (context) with a user agent of its own, so the access log tells it apart."""

    def __init__(self, browser: Any, name: str) -> None:
        self.agent = f"Mozilla/5.0 (X11; Linux x86_64) AtendeProxyTest/{name}-{secrets.token_hex(3)}"
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="pt-BR",
                                           user_agent=self.agent)
        self.page = self.context.new_page()
        self.traffic = Traffic(self.page)

    def close(self) -> None:
        self.context.close()


def raw_upgrade(proxy: Proxy, origin: str) -> tuple[int, str]:
    """A WebSocket handshake for socket.io through the proxy; returns (status, head)."""
    port = urlsplit(proxy.url).port or 80
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /socket.io/?EIO=4&transport=websocket&session_id={secrets.token_urlsafe(24)} HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
    text = head.decode("latin-1")
    return int(text.split(" ", 2)[1]), text
