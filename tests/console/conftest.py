"""Fixtures of the console tests: the fixed data set and a loopback HTTP server in Rasa's place."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlparse

import pytest

from helpdesk.config import reset_settings
from helpdesk.db import dispose_engines, session_scope

from . import dataset


JWT_SECRET = "console-tests-rasa-jwt-secret-0123456789"


def bearer_claims(authorization: str, secret: str = JWT_SECRET) -> dict[str, Any]:
    """The claims of the bearer JWT the console sent to Rasa (checked with the shared secret)."""
    import jwt

    scheme, _, token = authorization.partition(" ")
    assert scheme == "Bearer"
    return jwt.decode(token, secret, algorithms=["HS256"])


@pytest.fixture()
def data(db_url: str) -> dataset.Ids:
    with session_scope() as s:
        return dataset.build(s)


@dataclass
class RasaRecorder:
    """A real HTTP server on loopback that records `trigger_intent` calls (Rasa's conversation API)."""

    status: int = 200
    calls: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)  # the Authorization header of each call
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "RasaRecorder":
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                recorder.calls.append({"path": parsed.path, "query": parse_qs(parsed.query), "body": body})
                recorder.authorizations.append(self.headers.get("Authorization") or "")
                payload = json.dumps({"tracker": {"sender_id": parsed.path.split("/")[2]}, "messages": []}).encode()
                self.send_response(recorder.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture()
def rasa(monkeypatch: pytest.MonkeyPatch) -> Iterator[RasaRecorder]:
    recorder = RasaRecorder().start()
    monkeypatch.setenv("RASA_URL", recorder.url)
    monkeypatch.setenv("RASA_JWT_SECRET", JWT_SECRET)
    reset_settings()
    try:
        yield recorder
    finally:
        recorder.stop()
        reset_settings()


@pytest.fixture()
def ids(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dataset.Ids]:
    """The fixed data set on SQLite (AppTest runs the console in this process)."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CONSOLE_SESSION_TTL_MINUTES", "30")
    reset_settings()
    with session_scope() as s:
        built = dataset.build(s)
    yield built
    dispose_engines()
    reset_settings()
