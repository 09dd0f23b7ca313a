"""WhatsApp Cloud API channel for Rasa 3.6 (bot env).

Register in credentials.yml as ``connectors.whatsapp.WhatsAppInput:`` (no keys needed: it reads the
WHATSAPP_* variables and DATABASE_URL). Webhook: ``GET/POST /webhooks/whatsapp/webhook``.

Flow: the POST checks size, signature and shape, stores every message / call event / status in the
durable inbox (one transaction, unique ids make replays no-ops) and answers 200. A background
worker takes the inbox rows in order per sender, hands each to Rasa with a collecting output
channel, then queues the replies in the outbox and marks the inbox row done in one transaction; the
outbox is then sent to the Graph API. See docs/whatsapp.md for the exactly-once argument.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Set, Text, TypeVar

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from atende_contract import attestation, channels
from connectors.wa_graph import GraphClient
from connectors.wa_outbound import Outgoing, render
from connectors.wa_store import CALLBACK_PREFIX, InboxRow, Store, make_engine
from connectors.wa_webhook import Ingestor, WhatsAppSettings, register_webhook
from connectors.wa_zapi import ZapiClient

__all__ = ["Runtime", "WhatsAppInput", "WhatsAppOutput", "WhatsAppSettings"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL_NAME = channels.WHATSAPP


def subject_of(sender: str) -> str:
    """The attested subject of a WhatsApp sender: a phone, a Z-API LID or a business-scoped user id."""
    if sender.isdigit():
        return f"phone:{sender}"
    if sender.endswith("@lid"):
        return f"lid:{sender}"
    return f"bsuid:{sender}"


def address(recipient: str) -> Dict[str, str]:
    """Where a Cloud API send goes: ``to`` = the phone when the conversation has one, else
    ``recipient`` = the business-scoped user id (a customer behind a username has no phone)."""
    return {"to": recipient} if recipient.isdigit() else {"recipient": recipient}


def attest(key: Optional[bytes], conversation: str, sender: str, message_id: str,
           user_id: Optional[str] = None, previous_phone: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """This turn's identity attestation: the sender of a delivery whose signature was verified.

    When Meta sent both the phone and the business-scoped user id of the sender, the user id is
    attested alongside (``alt``): that is how the action server links a BSUID to the customer
    found by phone, and recognises them later when only the BSUID comes (a username). After a
    number change (Meta's signed `user_changed_number`), the conversation's first number is
    attested alongside the new one (``phone:<previous>``), so the customer is found and relinked.
    """
    if key is None:
        return None
    alt = [f"bsuid:{user_id}"] if user_id and user_id != sender and sender.isdigit() else []
    if previous_phone and previous_phone.isdigit() and previous_phone != sender:
        alt.append(f"phone:{previous_phone}")
    return attestation.sign(key, channel=CHANNEL_NAME, conversation_id=conversation,
                            subject=subject_of(sender), message_id=message_id, alt=alt)


class Runtime:
    """Store, Graph client and the background worker, created when the server starts."""

    def __init__(self, settings: WhatsAppSettings) -> None:
        self.settings = settings
        engine = make_engine(settings.database_url, settings.sqlite_synchronous)
        if settings.lease_s <= 0:
            raise ValueError(f"WHATSAPP_LEASE_SECONDS must be positive, got {settings.lease_s}")
        self.store = Store(engine, unconfirmed_grace_s=settings.resend_grace_s, lease_s=settings.lease_s)
        self.store.create_tables()
        # SQLite takes one writer at a time: one DB thread keeps writes from fighting over the lock.
        workers = 1 if engine.dialect.name == "sqlite" else 4
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="whatsapp-db")
        # The webhook's inserts get their own thread so acknowledgements never queue behind the worker.
        self.ingestor = Ingestor(self.store, settings.sqlite_synchronous)
        self._last_ingest = 0.0
        if settings.provider not in ("cloud", "zapi"):
            raise ValueError(f"WHATSAPP_PROVIDER must be 'cloud' or 'zapi', got {settings.provider!r}")
        self.graph: Any = (
            ZapiClient(settings.zapi, settings.graph_timeout_s) if settings.provider == "zapi"
            else GraphClient(settings.graph_url, settings.api_version, settings.phone_number_id,
                             settings.access_token, settings.graph_timeout_s))
        self.wake = asyncio.Event()
        self.active: Set[str] = set()
        self.handler: Optional[Callable[[UserMessage], Awaitable[Any]]] = None
        self.app: Any = None
        self._task: Optional[asyncio.Task] = None
        self._tasks: Set[asyncio.Task] = set()
        self._sem: Optional[asyncio.Semaphore] = None
        self._burst_gate: Optional[asyncio.Lock] = None
        # Leases are renewed by a thread of their own: Rasa may block the event loop for a while.
        self._renew_stop = threading.Event()
        self._renew_thread: Optional[threading.Thread] = None

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(fn, *args))

    async def ingest(self, items: List[Any]) -> int:
        """Store one delivery (the in-process webhook); concurrent deliveries share a transaction."""
        self._last_ingest = time.monotonic()
        return await self.ingestor.ingest(items)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self, app: Any, handler: Callable[[UserMessage], Awaitable[Any]]) -> None:
        self.app, self.handler = app, handler
        self.wake = asyncio.Event()
        self._sem = asyncio.Semaphore(self.settings.concurrency)
        self._burst_gate = asyncio.Lock()
        self._task = asyncio.get_running_loop().create_task(self._dispatch())
        self._renew_stop.clear()
        self._renew_thread = threading.Thread(target=self._renew_loop, name="whatsapp-lease", daemon=True)
        self._renew_thread.start()

    async def stop(self) -> None:
        for t in [self._task, *self._tasks]:
            if t is not None:
                t.cancel()
        self._renew_stop.set()
        try:  # hand our senders to the other replicas now instead of after the lease expires
            await self.db(self.store.release_all)
        except Exception:
            logger.exception("whatsapp: could not release the leases")
        await self.graph.close()
        self.ingestor.close()

    def _renew_loop(self) -> None:
        every = self.settings.lease_s / 3
        while not self._renew_stop.wait(every):
            try:
                self.store.renew_all()
            except Exception:  # database hiccup: the lease still has two thirds of its time
                logger.exception("whatsapp: could not renew the leases")

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _agent_ready(self) -> Any:
        while True:
            agent = getattr(getattr(self.app, "ctx", None), "agent", None)
            if agent is not None and agent.is_ready():
                return agent
            await asyncio.sleep(0.2)

    async def _dispatch(self) -> None:
        recovered = await self.db(self.store.recover_at_start)
        if recovered:
            logger.warning("whatsapp: %d outbox rows were mid-send at the last stop; "
                           "resending after %.0fs unless Meta confirms them", recovered,
                           self.settings.resend_grace_s)
        await self._agent_ready()
        if self.settings.concurrency <= 0:  # WHATSAPP_CONCURRENCY=0: accept and store only (maintenance)
            logger.warning("whatsapp: WHATSAPP_CONCURRENCY=0, the inbox is not processed")
            return
        while True:
            self.wake.clear()
            try:
                senders = await self.db(self.store.senders_with_work)
                for sender in senders - self.active:
                    self.active.add(sender)
                    self._spawn(self._run_sender(sender))
            except asyncio.CancelledError:
                raise
            except Exception:  # database hiccup: try again on the next tick
                logger.exception("whatsapp: dispatcher failed to read the inbox")
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass

    async def _run_sender(self, sender: str) -> None:
        assert self._sem is not None
        claimed = False
        try:
            async with self._sem:
                # another replica may own this sender: its lease decides, one worker per sender
                claimed = await self.db(self.store.claim, sender)
                if not claimed:
                    return
                while True:
                    # Meta's confirmations first: a send interrupted by a crash and confirmed
                    # since is then never resent (docs/whatsapp.md, "Exactly once").
                    await self.db(self.store.apply_pending_statuses, sender)
                    if not await self._flush_outbox(sender):
                        break
                    row = await self.db(self.store.next_pending, sender)
                    if row is None:
                        break
                    if not await self._process(row):
                        break
                await self._flush_outbox(sender)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("whatsapp: worker for %s failed", sender)
        finally:
            if claimed:
                try:
                    await self.db(self.store.release, sender)
                except Exception:  # it expires on its own
                    logger.exception("whatsapp: could not release the lease of %s", sender)
            self.active.discard(sender)
            self.wake.set()

    # ---- inbound ---------------------------------------------------------------------------
    async def _process(self, row: InboxRow) -> bool:
        """Handle one inbox row; False when it should be retried later."""
        data = row.data
        if row.kind == "status":
            result = await self.db(self.store.apply_status, data["status"])
            logger.debug("whatsapp: status %s: %s", row.item_id, result)
            await self.db(self.store.finish, row.id, "done", result)
            return True

        metadata: Dict[str, Any] = dict(data.get("metadata") or {})
        metadata.pop(attestation.METADATA_KEY, None)
        if data.get("action") == "alias":
            # Meta (signed delivery) says the sender's number changed: the new number continues
            # this conversation, and its messages vouch for the old number (see `attest`).
            root = await self.db(self.store.set_alias, str(metadata.get("new_wa_id")), row.sender)
            await self.db(self.store.finish, row.id, "done", f"number changed; conversation {root}")
            return True
        root = await self.db(self.store.conversation_of, row.sender) or row.sender
        conversation = channels.conversation_id(CHANNEL_NAME, root)
        text = row.text or ""
        if row.kind == "message" and row.attempts == 0:
            self._spawn(self._mark_read(row.item_id, row.sender))
        if row.button_id:
            payload = await self.db(self.store.resolve_option, row.sender, row.button_id)
            if payload is not None:
                text = payload
                metadata.setdefault("whatsapp", {})["button_payload"] = payload
        if row.kind == "call":
            call = dict(data.get("call") or {})
            missed = call.get("event") == "terminate" and not await self.db(
                self.store.has_item, f"{call['call_id']}#connect")
            metadata["call"] = {"call_id": call.get("call_id"), "event": call.get("event"),
                                "missed": bool(missed), "duration": call.get("duration")}

        agent = await self._agent_ready()
        try:
            replies: Optional[List[Dict[str, Any]]] = None
            if row.attempts > 0:
                # A previous run may have died after Rasa saved the turn: reuse its replies.
                replies = await self._replies_from_tracker(agent, conversation, row.item_id)
                if replies is not None:
                    logger.info("whatsapp: %s already handled by Rasa; queuing its %d replies",
                                row.item_id, len(replies))
            if not await self.db(self.store.begin_attempt, row.id):
                logger.warning("whatsapp: lease of %s lost (or %s already handled); leaving it",
                               row.sender, row.item_id)
                return False
            if replies is None:
                collector = CollectingOutputChannel()
                # The delivery's signature was verified when it was stored: attest its sender.
                wa_meta = metadata.get("whatsapp") if isinstance(metadata.get("whatsapp"), dict) else {}
                user_id = wa_meta.get("user_id") if isinstance(wa_meta.get("user_id"), str) else None
                proof = attest(self.settings.attestation_key, conversation, row.sender, row.item_id, user_id,
                               previous_phone=root if root != row.sender else None)
                if proof is not None:
                    metadata[attestation.METADATA_KEY] = proof
                await self._run_rasa(UserMessage(text, collector, conversation, input_channel=CHANNEL_NAME,
                                                 message_id=row.item_id, metadata=metadata))
                replies = list(collector.messages)
                if self.settings.fault == "exit_after_rasa" and row.attempts == 0:
                    os._exit(137)  # Rasa saved the turn; the inbox row is still pending
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if row.attempts + 1 >= self.settings.max_attempts:
                logger.exception("whatsapp: giving up on %s", row.item_id)
                await self.db(self.store.finish, row.id, "failed", f"{type(exc).__name__}: {exc}")
                return True
            logger.exception("whatsapp: %s failed, will retry", row.item_id)
            await asyncio.sleep(min(self.settings.retry_base_s * 2 ** row.attempts, self.settings.retry_max_s))
            return False
        outgoing: List[Outgoing] = []
        for message in replies:
            outgoing += render({k: v for k, v in message.items() if k != "recipient_id"})
        await self.db(self.store.finish, row.id, "done", None, (row.item_id, row.sender, outgoing))
        return True

    async def _run_rasa(self, message: UserMessage) -> None:
        """Hand a message to Rasa. During a burst of deliveries, one message at a time and only in
        the gaps between deliveries, so acknowledgements are not queued behind Rasa's work."""
        assert self.handler is not None and self._burst_gate is not None
        if time.monotonic() - self._last_ingest < 1.0:
            async with self._burst_gate:
                await self._yield_to_webhook()
                await self.handler(message)
        else:
            await self.handler(message)

    async def _yield_to_webhook(self) -> None:
        """Let a burst of deliveries be acknowledged before Rasa takes the event loop."""
        gap, waited = self.settings.ack_priority_s, 0.0
        while gap > 0 and waited < self.settings.max_defer_s and time.monotonic() - self._last_ingest < gap:
            await asyncio.sleep(gap)
            waited += gap

    async def _replies_from_tracker(self, agent: Any, sender: str, message_id: str) -> Optional[List[Dict[str, Any]]]:
        from rasa.shared.core.events import BotUttered, UserUttered

        store = agent.tracker_store
        fetch = getattr(store, "retrieve_full_tracker", None) or store.retrieve
        tracker = await fetch(sender)
        if tracker is None:
            return None
        found = False
        replies: List[Dict[str, Any]] = []
        for event in tracker.events:
            if isinstance(event, UserUttered):
                if found:
                    break
                found = event.message_id == message_id
            elif found and isinstance(event, BotUttered):
                msg = {"text": event.text, **{k: v for k, v in (event.data or {}).items() if v}}
                replies.append(msg)
        return replies if found else None

    async def _mark_read(self, wamid: str, sender: str) -> None:
        result = await self.graph.mark_read(wamid, recipient=sender)
        if result.outcome != "ok":
            logger.info("whatsapp: mark-as-read of %s failed (%s %s)", wamid, result.code, result.title)

    # ---- outbound --------------------------------------------------------------------------
    async def _flush_outbox(self, recipient: str) -> bool:
        """Send the recipient's pending outbox rows in order; False when the lease was lost."""
        s = self.settings
        for row in await self.db(self.store.pending_outbox, recipient):
            attempts = row.attempts
            if row.next_attempt_at and row.next_attempt_at > time.time():
                await asyncio.sleep(row.next_attempt_at - time.time())
            while True:
                if not await self.db(self.store.mark_sending, row.id, True):
                    logger.warning("whatsapp: lease of %s lost (or row %s claimed elsewhere); "
                                   "stopping its sends", recipient, row.id)
                    return False
                attempts += 1
                body = {"messaging_product": "whatsapp", "recipient_type": "individual",
                        **address(recipient), **row.body,
                        "biz_opaque_callback_data": f"{CALLBACK_PREFIX}{row.id}"}
                result = await self.graph.post(body)
                if result.outcome == "ok":
                    if self.settings.fault == "exit_after_send" and attempts == 1:
                        os._exit(137)  # Meta accepted it; the outbox row still says "sending"
                    await self.db(self.store.mark_accepted, row.id, result.wamid or "")
                    break
                if result.outcome == "retry" and attempts < s.max_attempts:
                    delay = min(s.retry_base_s * 2 ** (attempts - 1), s.retry_max_s)
                    logger.info("whatsapp: send %s got %s/%s, retrying in %.1fs", row.id, result.http_status,
                                result.code, delay)
                    await self.db(self.store.mark_retry, row.id, time.time() + delay, result.code, result.title)
                    await asyncio.sleep(delay)
                    continue
                logger.warning("whatsapp: send %s to %s rejected: %s %s %s", row.id, recipient,
                               result.http_status, result.code, result.title)
                await self.db(self.store.mark_rejected, row.id, result.code, result.title)
                break
        return True

    async def push(self, recipient: str, message: Dict[str, Any]) -> None:
        """Queue a proactive message (agent replies, trigger_intent) and wake the worker."""
        outgoing = render(message)
        if outgoing:
            # a conversation whose customer changed number is answered at the current number
            recipient = await self.db(self.store.current_address, recipient)
            await self.db(self.store.queue, f"push:{uuid.uuid4().hex}", recipient, outgoing)
            self.wake.set()


class WhatsAppOutput(OutputChannel):
    """Sends through the outbox, so proactive messages get the same retries and status tracking."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @staticmethod
    def _recipient(conversation: Text) -> Optional[str]:
        """The WhatsApp id of ``whatsapp:<id>`` (or of a legacy bare id); None for another channel's."""
        try:
            return channels.local_id(conversation, CHANNEL_NAME)
        except channels.BadConversationId:
            logger.warning("whatsapp: refused to send another channel's conversation to WhatsApp")
            return None

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        recipient = self._recipient(recipient_id)
        if recipient is not None:
            await self.runtime.push(recipient, {k: v for k, v in message.items() if k != "recipient_id"})

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        recipient = self._recipient(recipient_id)
        if recipient is not None:
            await self.runtime.push(recipient, {"text": text})


class WhatsAppInput(InputChannel):
    """Rasa input channel ``whatsapp``: webhook at ``/webhooks/whatsapp/webhook``."""

    def __init__(self, settings: Optional[WhatsAppSettings] = None) -> None:
        self.settings = settings or WhatsAppSettings.from_env()
        self.runtime: Optional[Runtime] = None

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WhatsAppInput":
        return cls(WhatsAppSettings.from_env(overrides=credentials or {}))

    def get_output_channel(self) -> Optional[OutputChannel]:
        return WhatsAppOutput(self.runtime) if self.runtime is not None else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("whatsapp_webhook", __name__)
        settings = self.settings
        if not settings.app_secret:
            logger.warning("whatsapp: WHATSAPP_APP_SECRET is not set; the webhook answers 503")
        runtime = Runtime(settings)
        self.runtime = runtime

        @bp.listener("after_server_start")
        async def _start(app: Any, _loop: Any) -> None:
            runtime.start(app, on_new_message)

        @bp.listener("before_server_stop")
        async def _stop(_app: Any, _loop: Any) -> None:
            await runtime.stop()

        # The same webhook as the gateway (connectors/wa_gateway.py): one implementation.
        register_webhook(bp, settings, runtime.ingest, lambda _new: runtime.wake.set())

        @bp.route("/wake", methods=["POST"])
        async def wake(_request: Request) -> HTTPResponse:
            """The gateway stored new deliveries: look at the inbox now instead of at the next poll."""
            runtime.wake.set()
            return response.json({"status": "ok"})

        return bp
