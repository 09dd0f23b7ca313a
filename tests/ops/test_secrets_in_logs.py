"""No secret reaches a log: full journeys over the real processes, then every log is searched.

The stack (tests/support/stack.py) starts the Rasa server and the action server the way `make
run` does (ops/procs.py), plus the WhatsApp gateway, the console and the demo site. Then:

- WhatsApp: Meta's verification GET (the verify token in the query string) and a signed customer
  conversation through the gateway, up to a ticket (the access token goes to the fake Graph API
  with every reply);
- the console's agent reply to that customer through Rasa's HTTP API with a bearer JWT
  (helpdesk/services/rasa_client.py), and refusals for a query-string token and for no token;
- the website: a socket.io visitor with a token issued by the vendor's site (the demo site).

After the processes stopped (everything flushed), no log file of the stack contains any secret
value (RASA_JWT_SECRET, ATENDE_ATTESTATION_SECRET, WEBCHAT_JWT_SECRET, WHATSAPP_APP_SECRET,
WHATSAPP_VERIFY_TOKEN, WHATSAPP_ACCESS_TOKEN), the website token or a console token (nor their
signatures).
"""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from sqlalchemy import create_engine, text

from helpdesk.services import rasa_client
from ops import procs
from tests.support.sockets import close_now_async
from tests.support.stack import (
    RASA_JWT_SECRET, SECRET_VARS, WEBCHAT_SECRET, Stack, signed_whatsapp_text, start_stack,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def _customer_phone(stack: Stack) -> tuple[int, str, str]:
    engine = create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text(
                "select c.id, c.responsible_name, ct.value from customers c join contacts ct on ct.customer_id = c.id "
                "where ct.kind = 'phone' order by ct.id limit 1")).one()
    finally:
        engine.dispose()
    return int(row[0]), str(row[1]), str(row[2])


def _whatsapp(gateway_url: str, stack: Stack, wa_id: str, body: str) -> None:
    signed_whatsapp_text(gateway_url, stack, wa_id, body)


def _ticket_conversation(stack: Stack, phone: str, after_id: int = 0) -> tuple[int, str] | None:
    """The newest ticket of this phone's conversation with an id above ``after_id`` (the demo's
    closed tickets are in that conversation too)."""
    engine = create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("select id, conversation_id from tickets where conversation_id like :p "
                                    "and id > :after order by id desc limit 1"),
                               {"p": f"%{phone}%", "after": after_id}).first()
    finally:
        engine.dispose()
    return (int(row[0]), str(row[1])) if row else None


def _whatsapp_journey(stack: Stack, gateway_url: str) -> tuple[str, str]:
    """A customer asks for a technician over WhatsApp; returns (phone, conversation id of the ticket)."""
    verify = requests.get(f"{gateway_url}/webhooks/whatsapp/webhook", timeout=30, params={
        "hub.mode": "subscribe", "hub.verify_token": stack.env["WHATSAPP_VERIFY_TOKEN"], "hub.challenge": "31337"})
    assert verify.status_code == 200 and verify.text == "31337"
    _, _, phone = _customer_phone(stack)
    before = _ticket_conversation(stack, phone)
    after_id = before[0] if before else 0
    _whatsapp(gateway_url, stack, phone, "oi")
    assert stack.graph.wait_texts(phone, 1, 90)
    _whatsapp(gateway_url, stack, phone, "quero falar com um atendente")
    deadline, answered = time.time() + 180, 1
    while time.time() < deadline:
        found = _ticket_conversation(stack, phone, after_id)
        if found is not None:
            return phone, found[1]
        texts = stack.graph.texts_to(phone)
        if len(texts) > answered:  # a form step was asked: answer it
            answered = len(texts)
            last = texts[-1]
            reply = ("a impressora do caixa nao imprime o cupom" if "Descreva" in last else
                     "não sei" if "módulo" in last else "erro" if "tipo de atendimento" in last else None)
            if reply:
                _whatsapp(gateway_url, stack, phone, reply)
        time.sleep(0.5)
    raise AssertionError(f"no ticket for {phone}: {stack.graph.texts_to(phone)}")


def _console_reply(stack: Stack, phone: str, conversation_id: str, issued: list[str]) -> None:
    client = rasa_client.RasaClient(stack.rasa_url, jwt_secret=RASA_JWT_SECRET)
    before = len(stack.graph.texts_to(phone))
    client.agent_reply(conversation_id, agent_text="Vou acessar sua máquina agora.", agent_name="Bruno")
    relayed = stack.graph.wait_texts(phone, before + 1, 60)[before:]
    assert any("Vou acessar sua máquina agora." in t for t in relayed), relayed
    url = f"{stack.rasa_url}/conversations/{conversation_id}/trigger_intent"
    body = {"name": "EXTERNAL_agent_reply", "entities": {"agent_text": "x", "agent_name": "y"}}
    # no token, a guessed query-string token, a token signed with another key: refused
    assert requests.post(url, json=body, timeout=30).status_code == 401
    assert requests.post(url, params={"token": "guess"}, json=body, timeout=30).status_code == 401
    forged = rasa_client.api_token("not-the-secret-" + "x" * 32)
    assert requests.post(url, json=body, headers={"Authorization": f"Bearer {forged}"}, timeout=30).status_code == 401
    # a `user` role reaches only its own conversation
    user = jwt.encode({"user": {"username": "someone", "role": "user"}, "exp": int(time.time()) + 60},
                      RASA_JWT_SECRET, algorithm="HS256")
    assert requests.post(url, json=body, headers={"Authorization": f"Bearer {user}"}, timeout=30).status_code == 403
    assert issued, "the console client signed no token"


async def _website_visit(stack: Stack, token: str) -> None:
    import socketio

    replies: list[Any] = []
    confirmed: list[Any] = []
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("bot_uttered", lambda data=None: replies.append(data))
    sio.on("session_confirm", lambda data=None: confirmed.append(data))
    await sio.connect(stack.rasa_url, headers={"Origin": "http://localhost:8080"}, transports=["polling"])
    try:
        await sio.emit("session_request", {"customData": {"auth_token": token}})
        deadline = time.monotonic() + 30
        while not confirmed and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert confirmed, "no session_confirm"
        session_id = confirmed[0]["session_id"] if isinstance(confirmed[0], dict) else confirmed[0]
        await sio.emit("user_uttered", {"message": "oi", "session_id": session_id, "client_id": "m1",
                                        "customData": {"auth_token": token}})
        deadline = time.monotonic() + 90
        while not replies and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert replies, "the website visitor got no answer"
    finally:
        await close_now_async(sio)  # the polling client would wait ~25 s for its pending long-poll


def _log_files(workdir: Path) -> list[Path]:
    return sorted(p for p in workdir.rglob("*") if p.is_file() and (p.suffix == ".log" or "log" in p.parent.name))


def test_no_secret_in_any_log_after_the_journeys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    issued: list[str] = []
    signer = rasa_client.api_token

    def recording(secret: str, **kw: Any) -> str:
        token = signer(secret, **kw)
        issued.append(token)
        return token

    monkeypatch.setattr(rasa_client, "api_token", recording)
    workdir = tmp_path / "stack"
    stack = start_stack(workdir)
    try:
        gateway_port = procs.free_port()
        gateway = procs.whatsapp_gateway(gateway_port, [f"{stack.rasa_url}/webhooks/whatsapp/wake"], env=stack.env,
                                         log=workdir / "whatsapp_gateway.log")
        stack.extra.append(gateway.start())
        gateway.wait_ready(120)
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        console = procs.console(procs.free_port(), env=stack.env, log=workdir / "console.log")
        demo_port = procs.free_port()
        demo = procs.demo_site(demo_port, stack.rasa_url, env=stack.env, log=workdir / "demo_site.log")
        stack.extra += [console.start(), demo.start()]
        console.wait_ready(120)
        demo.wait_ready(60)

        phone, conversation_id = _whatsapp_journey(stack, gateway_url)
        _console_reply(stack, phone, conversation_id, issued)

        demo_url = f"http://127.0.0.1:{demo_port}"
        customers = requests.get(f"{demo_url}/demo/customers", timeout=30).json()
        issued_web = requests.get(f"{demo_url}/demo/token", params={"customer": customers[0]["id"]}, timeout=30)
        assert issued_web.status_code == 200, issued_web.text
        web_token = issued_web.json()["token"]
        jwt.decode(web_token, WEBCHAT_SECRET, algorithms=["HS256"], options={"verify_aud": False})
        asyncio.run(_website_visit(stack, web_token))
    finally:
        stack.stop()

    secrets = {name: stack.env[name] for name in SECRET_VARS if stack.env.get(name)}
    assert set(secrets) == set(SECRET_VARS)
    for i, token in enumerate([web_token, *issued]):
        secrets[f"token {i}"] = token
        secrets[f"token {i} signature"] = token.rsplit(".", 1)[1]
    logs = _log_files(workdir)
    assert {p.name for p in logs} >= {"rasa.log", "actions.log", "whatsapp_gateway.log", "console.log",
                                      "demo_site.log"}, logs
    leaks = []
    for path in logs:
        content = path.read_text(encoding="utf-8", errors="replace")
        for what, value in secrets.items():
            for line in content.splitlines():
                if value in line:
                    leaks.append(f"{what} in {path.name}: {re.sub(re.escape(value), '<' + what + '>', line)[:300]}")
    assert not leaks, "\n".join(leaks)
