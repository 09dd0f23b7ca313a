"""The proxy (ops/prod_nginx.py): valid for nginx, and routing conversations the way Rasa needs.

A real nginx from Debian (`nginx -t -c`, then started) in front of two small HTTP servers that
say who they are: one conversation always reaches one replica, whatever the path; a dead replica
hands its conversations to the other; WhatsApp webhooks are retried on the next replica. And the
public surface: no REST channel, no query string in any log, per-client limits that answer 429.
"""
from __future__ import annotations

import http.client
import http.server
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops import prod_nginx, prod_services, procs


def nginx_or_skip() -> None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (apt-get install nginx)")
        pytest.skip("nginx not installed (apt-get install nginx)")


# The routing tests send hundreds of requests from one address at once: not what the per-client
# limits are for (their own tests below use the real defaults).
UNLIMITED = {"chat_rate": 10000, "chat_burst": 10000, "webhook_rate": 10000, "webhook_burst": 10000}


def layout_for(tmp: Path, rasa: tuple[str, ...], console: str, port: int, console_port: int,
               whatsapp: tuple[str, ...] = (), **limits: int) -> prod_nginx.ProxyLayout:
    (tmp / "tmp").mkdir(parents=True, exist_ok=True)
    for d in (tmp, tmp / "tmp"):
        d.chmod(0o777)
    return prod_nginx.ProxyLayout(rasa=rasa, console=console, whatsapp=whatsapp, listen=f"127.0.0.1:{port}",
                                  console_listen=f"127.0.0.1:{console_port}", pid=str(tmp / "nginx.pid"),
                                  error_log=str(tmp / "error.log"), access_log=str(tmp / "access.log"),
                                  temp_dir=str(tmp / "tmp"), daemon=False, worker_processes="1",
                                  fail_timeout_s=30, **limits)


def test_committed_docker_config_is_the_rendered_one() -> None:
    assert prod_nginx.DOCKER_CONF.read_text(encoding="utf-8") == prod_nginx.render(prod_nginx.docker_layout()), \
        "docker/nginx.conf is stale: run `python -m ops.prod_nginx --docker`"


def test_nginx_accepts_both_configs(tmp_path: Path) -> None:
    nginx_or_skip()
    docker = prod_nginx.docker_layout()
    # the compose service names do not resolve here: same config, loopback addresses
    local = layout_for(tmp_path, tuple(a.replace("rasa1", "127.0.0.1").replace("rasa2", "127.0.0.2")
                                       for a in docker.rasa), "127.0.0.1:8501", procs.free_port(), procs.free_port(),
                       tuple(a.replace("whatsapp-gateway", "127.0.0.3") for a in docker.whatsapp))
    conf = prod_nginx.write(tmp_path / "nginx.conf", local)
    done = prod_services.nginx_test(conf)
    assert done.returncode == 0, done.stderr
    broken = tmp_path / "broken.conf"
    broken.write_text(conf.read_text().replace("hash $atende_conversation consistent;", "hash;"))
    assert prod_services.nginx_test(broken).returncode != 0


def test_render_refuses_no_replicas() -> None:
    with pytest.raises(ValueError):
        prod_nginx.render(prod_nginx.ProxyLayout(rasa=(), console="c:1"))


class Backend:
    """An HTTP server that answers its name and counts the requests it saw."""

    def __init__(self, name: str, delay_s: float = 0.0) -> None:
        self.name = name
        self.delay_s = delay_s
        self.seen: list[str] = []
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                backend.seen.append(f"{self.command} {self.path}")
                if backend.delay_s:
                    time.sleep(backend.delay_s)
                body = backend.name.encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def proxy(tmp_path: Path) -> Iterator[tuple[str, list[Backend], str]]:
    nginx_or_skip()
    backends = [Backend("rasa1"), Backend("rasa2")]
    console = Backend("console")
    port, console_port = procs.free_port(), procs.free_port()
    layout = layout_for(tmp_path, tuple(f"127.0.0.1:{b.port}" for b in backends), f"127.0.0.1:{console.port}",
                        port, console_port, **UNLIMITED)
    conf = prod_nginx.write(tmp_path / "nginx.conf", layout)
    proc = prod_services.nginx_proc(conf, port, tmp_path / "nginx.log").start()
    try:
        proc.wait_ready(20)
        yield f"http://127.0.0.1:{port}", backends, f"http://127.0.0.1:{console_port}"
    finally:
        proc.stop()
        for b in [*backends, console]:
            b.stop()


def get(url: str, data: bytes | None = None) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as resp:
        return resp.read().decode()


def test_a_conversation_stays_on_one_replica(proxy: tuple[str, list[Backend], str]) -> None:
    base, backends, console = proxy
    owners: dict[str, str] = {}
    for i in range(40):
        sid = f"visitor{i:04d}abcdef"
        first = get(f"{base}/socket.io/?EIO=4&transport=polling&session_id={sid}")
        for _ in range(3):
            assert get(f"{base}/socket.io/?EIO=4&transport=polling&session_id={sid}&sid=x{_}") == first
        # the console's hand-off call for the same conversation reaches the same replica
        assert get(f"{base}/conversations/{sid}/trigger_intent?token=t", b"{}") == first
        # ... also under its namespaced id (`web:<session id>`), as the console sends it, encoded or not
        assert get(f"{base}/conversations/web:{sid}/trigger_intent", b"{}") == first
        assert get(f"{base}/conversations/web%3A{sid}/tracker") == first
        owners[sid] = first
    spread = Counter(owners.values())
    assert set(spread) == {"rasa1", "rasa2"} and min(spread.values()) >= 8, spread
    assert get(f"{console}/_stcore/health") == "console"
    assert get(f"{base}/healthz").strip() == "ok"


def test_a_dead_replica_hands_its_conversations_over(proxy: tuple[str, list[Backend], str]) -> None:
    base, backends, _ = proxy
    owners = {f"conv{i:04d}xyzxyz": get(f"{base}/socket.io/?EIO=4&session_id=conv{i:04d}xyzxyz") for i in range(30)}
    backends[0].stop()
    for sid, owner in owners.items():
        assert get(f"{base}/socket.io/?EIO=4&session_id={sid}") == "rasa2"
    # WhatsApp webhooks (idempotent inbox) are retried on the live replica, POST included
    for _ in range(10):
        assert get(f"{base}/webhooks/whatsapp/webhook", b'{"object": "whatsapp_business_account"}') == "rasa2"
    moved = [sid for sid, owner in owners.items() if owner == "rasa2"]
    assert moved, "consistent hashing should have kept rasa2's conversations on rasa2"


def test_whatsapp_webhooks_go_to_the_gateway_with_the_replicas_as_backup(tmp_path: Path) -> None:
    nginx_or_skip()
    backends = [Backend("rasa1"), Backend("rasa2")]
    gateway, console = Backend("gateway"), Backend("console")
    port = procs.free_port()
    layout = layout_for(tmp_path, tuple(f"127.0.0.1:{b.port}" for b in backends), f"127.0.0.1:{console.port}",
                        port, procs.free_port(), whatsapp=(f"127.0.0.1:{gateway.port}",), **UNLIMITED)
    proc = prod_services.nginx_proc(prod_nginx.write(tmp_path / "nginx.conf", layout), port,
                                    tmp_path / "nginx.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        proc.wait_ready(20)
        for _ in range(10):
            assert get(f"{base}/webhooks/whatsapp/webhook", b'{"object": "whatsapp_business_account"}') == "gateway"
        assert get(f"{base}/webhooks/whatsapp/webhook?hub.mode=subscribe") == "gateway"
        assert get(f"{base}/socket.io/?EIO=4&session_id=abc") in ("rasa1", "rasa2")
        # the gateway's wake call is not reachable from outside
        with pytest.raises(urllib.error.HTTPError) as err:
            get(f"{base}/webhooks/whatsapp/wake", b"")
        assert err.value.code == 404
        assert not any("wake" in s for b in [*backends, gateway] for s in b.seen)
        # gateway down: the replicas (same webhook, same inbox) take the deliveries, POST included
        gateway.stop()
        for _ in range(6):
            assert get(f"{base}/webhooks/whatsapp/webhook", b'{"object": "whatsapp_business_account"}') in (
                "rasa1", "rasa2")
    finally:
        proc.stop()
        for b in [*backends, console]:
            b.stop()


# ---- the public surface: REST absent, no query strings in the logs, per-client limits ----------
class Nginx:
    """nginx in front of two replicas, a gateway and a console, with its log files in `tmp`."""

    def __init__(self, tmp: Path, delay_s: float = 0.0, **limits: int) -> None:
        self.tmp = tmp
        self.backends = [Backend("rasa1", delay_s), Backend("rasa2", delay_s)]
        self.gateway, self.console = Backend("gateway"), Backend("console")
        self.port = procs.free_port()
        layout = layout_for(tmp, tuple(f"127.0.0.1:{b.port}" for b in self.backends),
                            f"127.0.0.1:{self.console.port}", self.port, procs.free_port(),
                            whatsapp=(f"127.0.0.1:{self.gateway.port}",), **limits)
        self.proc = prod_services.nginx_proc(prod_nginx.write(tmp / "nginx.conf", layout), self.port,
                                             tmp / "nginx.log")
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Nginx":
        self.proc.start()
        try:
            self.proc.wait_ready(20)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.proc.stop()
        for b in [*self.backends, self.gateway, self.console]:
            try:
                b.stop()
            except OSError:
                pass

    def status(self, path: str, data: bytes | None = None) -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(self.base + path, data=data), timeout=20) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code

    def logs(self) -> str:
        return "".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in (self.tmp / "access.log", self.tmp / "error.log", self.tmp / "nginx.log") if p.exists())


def test_the_rest_channel_is_not_reachable(tmp_path: Path) -> None:
    nginx_or_skip()
    with Nginx(tmp_path) as nginx:
        body = b'{"sender": "5511987654321", "message": "oi", "input_channel": "whatsapp"}'
        for path in ("/webhooks/rest/webhook", "/webhooks/rest/webhook?stream=true", "/webhooks/rest/",
                     "/webhooks/rest", "/webhooks/%72est/webhook", "//webhooks/rest/webhook",
                     "/webhooks/./rest/webhook", "/webhooks/whatsapp/../rest/webhook"):
            assert nginx.status(path, body) == 404, path
            assert nginx.status(path) == 404, path
        # the rest of the public surface still works
        assert nginx.status("/webhooks/website/widget.js") == 200
        assert nginx.status("/socket.io/?EIO=4&transport=polling&session_id=abc") == 200
        seen = [s for b in [*nginx.backends, nginx.gateway] for s in b.seen]
    assert not any("rest" in s for s in seen), seen


def test_no_query_string_reaches_the_logs(tmp_path: Path) -> None:
    nginx_or_skip()
    query = "token=secret123&session_id=abc"
    paths = [f"/socket.io/?EIO=4&transport=polling&{query}", f"/webhooks/whatsapp/zapi?{query}",
             f"/webhooks/whatsapp/webhook?{query}", f"/webhooks/website/widget.js?{query}",
             f"/conversations/c1/trigger_intent?{query}", f"/webhooks/rest/webhook?{query}",
             f"/webhooks/whatsapp/wake?{query}", f"/nothing-here?{query}"]
    with Nginx(tmp_path) as nginx:
        for path in paths:
            assert nginx.status(path, b"{}") in (200, 404), path
        # upstream failures are where nginx writes the whole request line: none of it is logged
        for b in [*nginx.backends, nginx.gateway]:
            b.stop()
        for path in paths:
            assert nginx.status(path, b"{}") in (404, 502), path
    logs = nginx.logs()
    access = (tmp_path / "access.log").read_text(encoding="utf-8")
    assert '"POST /socket.io/ HTTP/1.1" 200' in access and '"POST /webhooks/whatsapp/zapi HTTP/1.1" 502' in access
    assert "upstream=127.0.0.1:" in access
    for needle in ("secret123", "abc", "token=", "session_id="):
        assert needle not in logs, f"{needle!r} in the nginx logs:\n{logs}"


def _statuses(nginx: Nginx, path: str, n: int) -> list[int]:
    """n requests in a row on one keep-alive connection, as one client would send them."""
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=20)
    out = []
    try:
        for _ in range(n):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            out.append(resp.status)
    finally:
        conn.close()
    return out


def test_a_burst_from_one_client_is_cut_with_429(tmp_path: Path) -> None:
    nginx_or_skip()
    layout = prod_nginx.ProxyLayout(rasa=("r:1",), console="c:1")
    with Nginx(tmp_path) as nginx:
        statuses = _statuses(nginx, "/webhooks/website/widget.js", 3 * layout.chat_burst)
        # the burst passes at once, then the excess is refused (at the sustained rate some pass)
        assert statuses[:layout.chat_burst] == [200] * layout.chat_burst
        assert set(statuses) == {200, 429}
        assert statuses.count(429) >= layout.chat_burst, statuses
        # a fresh session id does not reset the client's bucket: socket.io shares it
        assert nginx.status("/socket.io/?EIO=4&transport=polling&session_id=brand-new") == 429
        # webhooks have their own, larger budget (Meta's few addresses must not be cut by chat traffic)
        assert nginx.status("/webhooks/whatsapp/webhook", b"{}") == 200
        # the console's listener and the health check are not limited
        assert nginx.status("/healthz") == 200
        time.sleep(1.0)
        assert nginx.status("/webhooks/website/widget.js") == 200  # the bucket refills
    assert "limiting requests" not in nginx.logs()


def test_concurrent_requests_from_one_client_are_capped(tmp_path: Path) -> None:
    nginx_or_skip()
    with Nginx(tmp_path, delay_s=2.0, chat_conn=4) as nginx:
        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(pool.map(lambda i: nginx.status(f"/socket.io/?EIO=4&session_id=s{i}"), range(10)))
        assert sorted(statuses) == [200] * 4 + [429] * 6, statuses
        assert nginx.status("/socket.io/?EIO=4&session_id=later") == 200


def test_forwarded_headers_choose_neither_the_replica_nor_the_bucket(tmp_path: Path) -> None:
    """A socket.io client without `session_id` (rasa-webchat) is pinned by its address: headers it
    sends itself (X-Forwarded-For, X-Real-IP) move it neither to another replica nor to a fresh
    rate-limit bucket."""
    nginx_or_skip()
    with Nginx(tmp_path) as nginx:
        owners = set()
        for i in range(20):
            req = urllib.request.Request(f"{nginx.base}/socket.io/?EIO=4&transport=polling",
                                         headers={"X-Forwarded-For": f"10.1.{i}.7", "X-Real-IP": f"10.2.{i}.9"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                owners.add(resp.read().decode())
        assert len(owners) == 1, owners
        layout = prod_nginx.ProxyLayout(rasa=("r:1",), console="c:1")
        assert 429 in _statuses(nginx, "/socket.io/?EIO=4&transport=polling", 2 * layout.chat_burst)
        spoofed = urllib.request.Request(f"{nginx.base}/socket.io/?EIO=4&transport=polling",
                                         headers={"X-Forwarded-For": "203.0.113.50", "X-Real-IP": "203.0.113.51"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(spoofed, timeout=10)
        assert err.value.code == 429
