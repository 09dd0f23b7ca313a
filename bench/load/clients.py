"""Simulated customers: website visitors over socket.io and WhatsApp users over signed webhooks.

Each client plays journeys one after the other, one new conversation per journey, waiting for the
bot's reply before the next turn, like a person. Every turn is recorded with its start, its
latency and its outcome; every turn the server accepted is recorded per conversation, so the
database can be checked afterwards.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

WEB_JOURNEYS: dict[str, list[str]] = {
    "web-question": ["oi", "como emito uma nota no nfe?", "sim", "não, obrigado"],
    "web-prospect": ["olá", "quero conhecer os produtos de vocês", "continuar como visitante", "tchau"],
    "web-status": ["bom dia", "qual o status do meu chamado?", "obrigado"],
}
WHATSAPP_JOURNEYS: dict[str, list[str]] = {
    "wa-question": ["oi", "como faz sangria no pdv?", "sim", "tchau"],
    "wa-problem": ["boa tarde", "meu pdv nao abre, aparece erro de licença"],
    "wa-catalog": ["olá", "vocês tem sistema para restaurante?", "obrigado"],
}


HANDOFF_MARK = "Um técnico vai continuar"  # the bot handed the conversation to a person: it stays quiet


def handed_off(texts: list[str]) -> bool:
    return any(HANDOFF_MARK.lower() in t.lower() for t in texts)


@dataclass
class Turn:
    channel: str
    journey: str
    conversation: str
    text: str
    started: float               # time.monotonic()
    latency: float | None = None  # seconds to the first reply
    error: str | None = None


@dataclass
class Conversation:
    channel: str
    sender_id: str
    accepted: list[str] = field(default_factory=list)   # texts (web) or message ids (WhatsApp)


@dataclass
class Results:
    turns: list[Turn] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    fault_durations: dict[str, float] = field(default_factory=dict)  # seconds each fault action took


@dataclass
class LoadSpec:
    proxy_url: str
    deadline: float              # time.monotonic() after which no new turn starts
    max_turns: int               # per client
    reply_timeout: float = 30.0
    think_s: tuple[float, float] = (0.3, 1.2)
    origin: str = "http://loadtest.localhost"
    whatsapp_secret: str = ""
    phone_number_id: str = ""


async def web_visitor(idx: int, spec: LoadSpec, results: Results, rng: random.Random) -> None:
    """One person on the website, journey after journey, each in a new chat session."""
    done = 0
    while done < spec.max_turns and time.monotonic() < spec.deadline:
        name = rng.choice(list(WEB_JOURNEYS))
        session_id = f"load{idx:03d}{uuid.uuid4().hex[:20]}"
        conv = Conversation("website", session_id)
        results.conversations.append(conv)
        done += await _web_conversation(name, session_id, conv, spec, results, rng, spec.max_turns - done)


async def _web_conversation(name: str, session_id: str, conv: Conversation, spec: LoadSpec, results: Results,
                            rng: random.Random, budget: int) -> int:
    sio = socketio.AsyncClient(reconnection=True, reconnection_attempts=0, reconnection_delay=0.3,
                               reconnection_delay_max=2.0, randomization_factor=0.2)
    replies: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
    acks: dict[str, asyncio.Future[str]] = {}
    confirmed = asyncio.Event()
    last_mid: dict[str, Any] = {"mid": None}

    @sio.on("connect")
    async def _connect() -> None:
        await sio.emit("session_request", {"session_id": session_id, "last_mid": last_mid["mid"]})

    @sio.on("session_confirm")
    async def _confirm(_data: Any) -> None:
        confirmed.set()

    @sio.on("disconnect")
    async def _disconnect(*_: Any) -> None:
        confirmed.clear()

    @sio.on("bot_uttered")
    async def _bot(msg: Any) -> None:
        if isinstance(msg, dict) and msg.get("mid"):
            last_mid["mid"] = msg["mid"]
        text = str(msg.get("text") or "") if isinstance(msg, dict) else ""
        replies.put_nowait((time.monotonic(), text))

    @sio.on("message_ack")
    async def _ack(data: Any) -> None:
        fut = acks.get(str((data or {}).get("client_id")))
        if fut is not None and not fut.done():
            fut.set_result(str(data.get("status")))

    turns = 0
    try:
        await sio.connect(f"{spec.proxy_url}?session_id={session_id}", socketio_path="/socket.io",
                          transports=["websocket"], headers={"Origin": spec.origin}, wait_timeout=20)
        for text in WEB_JOURNEYS[name]:
            if turns >= budget or time.monotonic() >= spec.deadline:
                break
            turn = Turn("website", name, session_id, text, time.monotonic())
            results.turns.append(turn)
            turns += 1
            try:
                await asyncio.wait_for(confirmed.wait(), spec.reply_timeout)
            except asyncio.TimeoutError:
                turn.error = "not connected"
                break
            while not replies.empty():
                replies.get_nowait()
            client_id = uuid.uuid4().hex[:16]
            acks[client_id] = asyncio.get_running_loop().create_future()
            turn.started = time.monotonic()
            try:
                await sio.emit("user_uttered", {"message": text, "session_id": session_id, "client_id": client_id})
                status = await asyncio.wait_for(acks[client_id], 10)
            except (asyncio.TimeoutError, socketio.exceptions.SocketIOError) as exc:
                turn.error = f"no ack ({type(exc).__name__})"
                break
            if status not in ("accepted", "duplicate"):
                turn.error = f"refused: {status}"
                break
            if status == "accepted":
                conv.accepted.append(text)
            try:
                first, text0 = await asyncio.wait_for(replies.get(), spec.reply_timeout)
                turn.latency = first - turn.started
            except asyncio.TimeoutError:
                turn.error = "no reply"
                break
            await asyncio.sleep(0.25)  # the rest of the bot's messages for this turn
            texts = [text0]
            while not replies.empty():
                texts.append(replies.get_nowait()[1])
            if handed_off(texts):
                break  # a technician takes over: the customer waits for a person
            await asyncio.sleep(rng.uniform(*spec.think_s))
    except Exception as exc:  # connection refused, proxy down: one error, next conversation
        err = Turn("website", name, session_id, "<connect>", time.monotonic(), error=f"{type(exc).__name__}: {exc}")
        results.turns.append(err)
        turns += 1
        await asyncio.sleep(1.0)
    finally:
        try:
            await sio.disconnect()
        except Exception:
            pass
    return turns


def whatsapp_payload(sender: str, text: str, message_id: str, phone_number_id: str) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Cliente Carga"}, "wa_id": sender}],
            "messages": [{"from": sender, "id": message_id, "timestamp": str(int(time.time())),
                          "type": "text", "text": {"body": text}}],
        }}]}]}


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def whatsapp_customer(idx: int, spec: LoadSpec, results: Results, rng: random.Random,
                            replies_for: Any) -> None:
    """One person on WhatsApp; `replies_for(sender)` lists the texts the Graph API got for them."""
    done = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        while done < spec.max_turns and time.monotonic() < spec.deadline:
            name = rng.choice(list(WHATSAPP_JOURNEYS))
            sender = f"55119{idx:03d}{rng.randrange(10**5):05d}"
            conv = Conversation("whatsapp", sender)
            results.conversations.append(conv)
            for text in WHATSAPP_JOURNEYS[name]:
                if done >= spec.max_turns or time.monotonic() >= spec.deadline:
                    break
                done += 1
                message_id = f"wamid.LOAD{uuid.uuid4().hex.upper()}"
                body = json.dumps(whatsapp_payload(sender, text, message_id, spec.phone_number_id)).encode()
                headers = {"content-type": "application/json", "x-hub-signature-256": sign(body, spec.whatsapp_secret)}
                turn = Turn("whatsapp", name, sender, text, time.monotonic())
                results.turns.append(turn)
                seen = len(replies_for(sender))
                accepted = False
                # Meta retries a webhook that did not get a 200; so does this client, for 20 s.
                while time.monotonic() - turn.started < 20:
                    try:
                        async with http.post(f"{spec.proxy_url}/webhooks/whatsapp/webhook", data=body,
                                             headers=headers) as resp:
                            if resp.status == 200:
                                accepted = True
                                break
                            turn.error = f"HTTP {resp.status}"
                    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                        turn.error = type(exc).__name__
                    await asyncio.sleep(0.5)
                if not accepted:
                    turn.error = f"webhook not accepted ({turn.error})"
                    break
                turn.error = None
                conv.accepted.append(message_id)
                deadline = turn.started + spec.reply_timeout
                while time.monotonic() < deadline and len(replies_for(sender)) <= seen:
                    await asyncio.sleep(0.05)
                if len(replies_for(sender)) <= seen:
                    turn.error = "no reply"
                    break
                turn.latency = time.monotonic() - turn.started
                await asyncio.sleep(0.3)
                if handed_off(replies_for(sender)[seen:]):
                    break  # a technician takes over: the customer waits for a person
                await asyncio.sleep(0.3 + rng.uniform(*spec.think_s))
