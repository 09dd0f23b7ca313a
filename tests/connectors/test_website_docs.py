"""``/docs/``: the documentation pages Atende publishes, served beside the widget (bot env).

A real Sanic HTTP server on a loopback port, with the website channel registered by Rasa's own
``register()`` (what ``rasa run`` does with credentials.yml), so the route is the one production
serves; no model is needed for it. Requests go out byte for byte (http.client does not normalise
``..`` or percent-escapes), as an attacker would send them.

Run: PYTHONPATH=$PWD .venv-bot/bin/pytest -q -p no:cacheprovider --confcutdir tests/connectors \
    tests/connectors/test_website_docs.py
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

import pytest

REPO = Path(__file__).resolve().parents[2]

SERVER = """
import sys
from sanic import Sanic
from rasa.core.channels.channel import register
from connectors.website.channel import WebsiteInput

app = Sanic("atende_docs_test")
register([WebsiteInput.from_credentials({"allowed_origins": [], "widget_dir": sys.argv[2]})], app,
         route="/webhooks/")
app.run(host="127.0.0.1", port=int(sys.argv[1]), access_log=False, workers=1)
"""


def _publish_module():
    spec = importlib.util.spec_from_file_location("publish_for_test", REPO / "knowledge" / "publish.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


publish = _publish_module()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, url_host: str, port: int) -> None:
        self.host, self.port = url_host, port

    def request(self, method: str, path: str) -> Tuple[int, Dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)  # the path exactly as written
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index folder with published pages, a secret beside it and every trap the resolver refuses."""
    index = tmp_path_factory.mktemp("knowledge")
    root = index / "published"
    page, _ = publish.render_markdown_page("# Caixa\n\n## Abrir o caixa\n\nPressione F2.\n", "Caixa do PDV")
    (root / "erp-demo" / "pdv").mkdir(parents=True)
    (root / "erp-demo" / "pdv" / "caixa.html").write_text(page, encoding="utf-8")
    (root / "erp-demo" / "pdv" / "Guia NF-e.html").write_text(page, encoding="utf-8")
    (root / "erp-demo" / ".oculto.html").write_text("oculto", encoding="utf-8")
    (root / "erp-demo" / "pdv" / "notas.md").write_text("notas", encoding="utf-8")
    (index / "secret.html").write_text("segredo", encoding="utf-8")
    (index / "meta.json").write_text('{"segredo": 1}', encoding="utf-8")
    if hasattr(os, "symlink"):
        (root / "erp-demo" / "fora.html").symlink_to(index / "secret.html")
        (root / "atalho").symlink_to(root / "erp-demo" / "pdv", target_is_directory=True)
    return index


@pytest.fixture(scope="module")
def server(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    widget = tmp_path_factory.mktemp("widget")
    (widget / "widget.js").write_text("/* widget */\n")
    port = _free_port()
    log = tmp_path_factory.mktemp("log") / "server.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), KNOWLEDGE_INDEX_DIR=str(tree), SANIC_REGISTER="false",
               RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("WEBCHAT_SOCKET_REDIS_URL", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(widget)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=str(REPO))
    srv = Server("127.0.0.1", port)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                srv.request("GET", "/webhooks/website/")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text(errors="replace")[-3000:])
                time.sleep(0.3)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _assert_strict_headers(headers: Dict[str, str]) -> None:
    csp = headers.get("content-security-policy", "")
    assert csp == publish.CSP, csp
    assert csp.startswith("default-src 'none';") and "script-src" not in csp and "'unsafe" not in csp
    assert f"style-src '{publish.STYLE_HASH}'" in csp
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") == "no-referrer"


def test_a_published_page_is_served_with_a_strict_policy(server: Server) -> None:
    status, headers, body = server.request("GET", "/docs/erp-demo/pdv/caixa.html")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    _assert_strict_headers(headers)
    assert b'<h2 id="abrir-o-caixa">Abrir o caixa</h2>' in body and b"<script" not in body
    # percent-encoded names (the citations encode spaces and accents), a query is ignored
    assert server.request("GET", "/docs/erp-demo/pdv/Guia%20NF-e.html")[0] == 200
    assert server.request("GET", "/docs/erp-demo/pdv/caixa.html?x=1")[0] == 200
    status, headers, body = server.request("HEAD", "/docs/erp-demo/pdv/caixa.html")
    assert status == 200 and body == b""
    _assert_strict_headers(headers)


REFUSED = [
    "/docs/../secret.html",
    "/docs/../../etc/passwd",
    "/docs/erp-demo/../../secret.html",
    "/docs/%2e%2e/secret.html",
    "/docs/%2E%2E/secret.html",
    "/docs/erp-demo/%2e%2e/%2e%2e/secret.html",
    "/docs/%2e%2e%2fsecret.html",
    "/docs/..%2fsecret.html",
    "/docs/..%5csecret.html",
    "/docs/%252e%252e/secret.html",
    "/docs/%2fetc%2fpasswd",
    "/docs//etc/passwd",
    "/docs/./erp-demo/pdv/caixa.html",
    "/docs/erp-demo//pdv/caixa.html",
    "/docs/erp-demo/.oculto.html",
    "/docs/erp-demo/%2eoculto.html",
    "/docs/erp-demo/pdv/notas.md",
    "/docs/erp-demo/pdv",
    "/docs/erp-demo/pdv/",
    "/docs/",
    "/docs/erp-demo/pdv/nada.html",
    "/docs/erp-demo/pdv/caixa.html%00.md",
    "/docs/caixa%00.html",
    "/docs/%ff.html",
    "/docs/meta.json",
    "/docs/%2e%2e/meta.json",
]


@pytest.mark.parametrize("path", REFUSED)
def test_anything_refused_is_a_plain_404_with_the_same_headers(server: Server, path: str) -> None:
    status, headers, body = server.request("GET", path)
    assert status == 404, (path, body[:200])
    _assert_strict_headers(headers)
    assert b"segredo" not in body and b"<" not in body


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
def test_symlinks_are_refused_inside_and_out_of_the_folder(server: Server) -> None:
    for path in ("/docs/erp-demo/fora.html", "/docs/atalho/caixa.html"):
        status, headers, body = server.request("GET", path)
        assert status == 404 and b"segredo" not in body, path
        _assert_strict_headers(headers)


def test_only_reads_are_answered_and_the_widget_is_still_served(server: Server) -> None:
    assert server.request("POST", "/docs/erp-demo/pdv/caixa.html")[0] == 405
    assert server.request("DELETE", "/docs/erp-demo/pdv/caixa.html")[0] == 405
    status, _, body = server.request("GET", "/webhooks/website/widget.js")
    assert status == 200 and b"/* widget */" in body
