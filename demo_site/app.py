"""A tiny page of the vendor's site with the Atende widget, and the endpoint that signs its token.

    python -m demo_site --port 8080 --rasa-url http://localhost:5005

- ``GET /``: the page; a switch chooses an anonymous visitor or a logged-in demo customer.
- ``GET /demo/token?customer=<id>``: a JWT (HS256, ``WEBCHAT_JWT_SECRET``) for that customer, as
  the vendor's real site would sign it after its own login. ``&forged=1`` signs it with a wrong
  secret (to show the refusal).
- ``GET /privacidade``: the privacy notice linked from the widget's consent message.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List, Optional
from urllib.parse import parse_qs, urlsplit

import jwt

from demo_site.customers import DemoCustomer, load_customers

logger = logging.getLogger("demo_site")
PAGE = Path(__file__).with_name("page.html")
TOKEN_TTL_SECONDS = 3600


@dataclass(frozen=True)
class DemoSettings:
    rasa_url: str
    jwt_secret: Optional[str]
    init_payload: str
    customers: List[DemoCustomer]


def sign(settings: DemoSettings, customer: DemoCustomer, forged: bool = False) -> str:
    now = int(time.time())
    claims = {"sub": customer.id, "email": customer.email, "name": customer.name,
              "iat": now, "exp": now + TOKEN_TTL_SECONDS}
    secret = "segredo-errado-do-falsificador" if forged else settings.jwt_secret
    return jwt.encode(claims, secret, algorithm="HS256")


def render_page(settings: DemoSettings) -> bytes:
    def js(value: object) -> str:
        return json.dumps(value).replace("<", "\\u003c")

    options = "\n".join(
        f'<option value="{html.escape(c.id)}">Cliente: {html.escape(c.name)} '
        f"({html.escape(c.company)})</option>"
        for c in settings.customers
    )
    page = PAGE.read_text(encoding="utf-8")
    return (
        page.replace("{{CUSTOMER_OPTIONS}}", options)
        .replace("{{RASA_URL_JS}}", js(settings.rasa_url.rstrip("/")))
        .replace("{{INIT_PAYLOAD_JS}}", js(settings.init_payload))
        .encode("utf-8")
    )


def make_handler(settings: DemoSettings) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "AtendeDemo/1.0"

        def log_message(self, fmt: str, *args: object) -> None:
            logger.info("%s " + fmt, self.address_string(), *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: object) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/":
                self._send(HTTPStatus.OK, render_page(settings), "text/html; charset=utf-8")
            elif url.path == "/demo/token":
                self._token(query)
            elif url.path == "/favicon.ico":
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            elif url.path == "/demo/customers":
                self._json(HTTPStatus.OK, [c.__dict__ for c in settings.customers])
            elif url.path == "/privacidade":
                body = (
                    "<!doctype html><meta charset=utf-8><title>Privacidade</title>"
                    "<h1>Política de privacidade (demonstração)</h1><p>As conversas do chat são "
                    "usadas apenas para o atendimento e guardadas conforme a LGPD.</p>"
                )
                self._send(HTTPStatus.OK, body.encode(), "text/html; charset=utf-8")
            else:
                self._json(HTTPStatus.NOT_FOUND, {"erro": "página não encontrada"})

        def _token(self, query: dict) -> None:
            if not settings.jwt_secret:
                self._json(HTTPStatus.SERVICE_UNAVAILABLE,
                           {"erro": "WEBCHAT_JWT_SECRET não configurado no servidor da demonstração"})
                return
            wanted = (query.get("customer") or [""])[0]
            customer = next((c for c in settings.customers if c.id == wanted), None)
            if customer is None:
                self._json(HTTPStatus.BAD_REQUEST, {"erro": "cliente de demonstração desconhecido"})
                return
            forged = (query.get("forged") or ["0"])[0] == "1"
            self._json(HTTPStatus.OK, {"token": sign(settings, customer, forged), "name": customer.name})

    return Handler


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo_site", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rasa-url", default=os.environ.get("RASA_URL", "http://localhost:5005"))
    parser.add_argument("--init-payload", default=os.environ.get("WEBCHAT_INIT_PAYLOAD", "/greet"),
                        help="payload the widget sends when a conversation starts ('' for none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = DemoSettings(
        rasa_url=args.rasa_url,
        jwt_secret=os.environ.get("WEBCHAT_JWT_SECRET") or None,
        init_payload=args.init_payload,
        customers=load_customers(),
    )
    if not settings.jwt_secret:
        logger.warning("WEBCHAT_JWT_SECRET is not set: only the anonymous visitor works")
    server = ThreadingHTTPServer((args.host, args.port), make_handler(settings))
    print(f"Demo site: http://{args.host}:{server.server_port}/ (chat server {settings.rasa_url})",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
