"""Fixtures of the console tests: the fixed data set and a loopback HTTP server in Rasa's place."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa

from atende_contract import tables
from helpdesk.config import reset_settings
from helpdesk.db import dispose_engines, get_engine, session_scope

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


# ---- the connector's WhatsApp tables (bot env), as the console reads them --------------------------
# Declared with the columns of atende_contract.tables (the console reads no others), as the bot env
# creates them in production; tests/connectors/test_contract_tables.py pins them against the
# connector's own definition.
CONNECTOR_TABLES = sa.MetaData()
WA_INBOX = sa.Table(
    tables.WHATSAPP_INBOX, CONNECTOR_TABLES, sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender", sa.String(128)), sa.Column("kind", sa.String(16)), sa.Column("state", sa.String(16)),
    sa.Column("text", sa.Text), sa.Column("data", sa.Text), sa.Column("reason", sa.Text),
    sa.Column("received_at", sa.Float))
WA_OUTBOX = sa.Table(
    tables.WHATSAPP_OUTBOX, CONNECTOR_TABLES, sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("recipient", sa.String(128)), sa.Column("body", sa.Text), sa.Column("send_state", sa.String(16)),
    sa.Column("status", sa.String(16)), sa.Column("error_code", sa.Integer), sa.Column("error_title", sa.Text),
    sa.Column("needs_template", sa.Boolean), sa.Column("created_at", sa.Float))


@pytest.fixture()
def connector_tables() -> Iterator[sa.MetaData]:
    """whatsapp_inbox and whatsapp_outbox created, empty, in the test's database, dropped after it.

    Request it after the fixture that sets the database (`data`, `db_url` or `ids`), so it
    creates them there and drops them before that database goes away."""
    engine = get_engine()
    CONNECTOR_TABLES.create_all(engine)
    try:
        yield CONNECTOR_TABLES
    finally:
        CONNECTOR_TABLES.drop_all(engine)
