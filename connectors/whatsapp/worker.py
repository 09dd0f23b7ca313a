"""The WhatsApp worker (bot env, inside the Rasa server): inbox → Rasa → outbox → provider.

The webhook (webhook.py, here or in the gateway) only stores deliveries. The worker takes the
inbox rows in order per address, under that address's lease (store/leases.py) so that replicas
sharing the database never handle one twice; hands each to Rasa with a collecting output channel;
queues the replies in the outbox and marks the inbox row done in one transaction; then sends the
outbox through the provider (providers/). See docs/whatsapp.md for the exactly-once argument.

Over 300 lines for a reason: this is one class whose inbound half (inbox → Rasa) and outbound
half (outbox → provider) run inside the same per-address task, under the same lease, on the same
database executor; splitting them would only pass that shared state around.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, TypeVar

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered

from atende_contract import attestation

from . import hooks, templates
from .identity import CHANNEL_NAME, attest_delivery, conversation_id, recipient_fields
from .ingest import Ingestor
from .outbound import Outgoing, render
from .parse import InboundItem
from .providers import Provider, provider_for
from .settings import WhatsAppSettings
from .store import CALLBACK_PREFIX, InboxRow, Store, make_engine

logger = logging.getLogger("connectors.whatsapp")
T = TypeVar("T")


class Worker:
    """Store, provider and the background worker, created when the server starts."""

    def __init__(self, settings: WhatsAppSettings,
                 message_templates: Optional[Dict[str, templates.Template]] = None) -> None:
        self.settings = settings
        # outside the 24-hour window (templates.py); a bad WHATSAPP_TEMPLATES stops the start here
        self.templates = (templates.parse_config(settings.templates_json) if message_templates is None
                          else message_templates)
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
        self.provider: Provider = provider_for(settings)
        self.wake = asyncio.Event()
        self.active: Set[str] = set()  # addresses with a task running here
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

    async def ingest(self, items: List[InboundItem]) -> int:
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
        try:  # hand our addresses to the other replicas now instead of after the lease expires
            await self.db(self.store.release_all)
        except Exception:
            logger.exception("whatsapp: could not release the leases")
        await self.provider.close()
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
                addresses = await self.db(self.store.addresses_with_work)
                for address in addresses - self.active:
                    self.active.add(address)
                    self._spawn(self._run_address(address))
            except asyncio.CancelledError:
                raise
            except Exception:  # database hiccup: try again on the next tick
                logger.exception("whatsapp: dispatcher failed to read the inbox")
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass

    async def _run_address(self, address: str) -> None:
        assert self._sem is not None
        claimed = False
        try:
            async with self._sem:
                # another replica may own this address: its lease decides, one worker per address
                claimed = await self.db(self.store.claim, address)
                if not claimed:
                    return
                while True:
                    # Meta's confirmations first: a send interrupted by a crash and confirmed
                    # since is then never resent (docs/whatsapp.md, "Exactly once").
                    await self.db(self.store.apply_pending_statuses, address)
                    if not await self._flush_outbox(address):
                        break
                    row = await self.db(self.store.next_pending, address)
                    if row is None:
                        break
                    if not await self._process(row):
                        break
                await self._flush_outbox(address)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("whatsapp: worker for %s failed", address)
        finally:
            if claimed:
                try:
                    await self.db(self.store.release, address)
                except Exception:  # it expires on its own
                    logger.exception("whatsapp: could not release the lease of %s", address)
            self.active.discard(address)
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
            # Meta (signed delivery) says the customer's number changed: the new number continues
            # this conversation, and its messages vouch for the old number (see `identity.attest`).
            old = metadata.get("previous_address") or row.address  # a BSUID change names the old id
            kept = await self.db(self.store.set_alias, str(metadata.get("new_wa_id")), str(old))
            await self.db(self.store.finish, row.id, "done", f"identity changed; conversation {kept}")
            return True
        conversation_address = await self.db(self.store.conversation_of, row.address) or row.address
        conversation = conversation_id(conversation_address)
        text = row.text or ""
        if row.kind == "message" and row.attempts == 0:
            self._spawn(self._mark_read(row.item_id, row.address))
        if row.kind == "message":
            # the customer wrote: the window is open again and the held free text goes first
            await self.db(self.store.release_held, row.address)
        if row.button_id:
            payload = await self.db(self.store.resolve_option, row.address, row.button_id)
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
                               row.address, row.item_id)
                return False
            if replies is None:
                collector = CollectingOutputChannel()
                # The delivery's signature was verified when it was stored: attest its sender.
                proof = attest_delivery(self.settings.attestation_key, conversation, conversation_address,
                                        row.address, row.item_id, metadata.get("whatsapp"))
                if proof is not None:
                    metadata[attestation.METADATA_KEY] = proof
                await self._run_rasa(UserMessage(text, collector, conversation, input_channel=CHANNEL_NAME,
                                                 message_id=row.item_id, metadata=metadata))
                replies = list(collector.messages)
                hooks.current().after_rasa(row.item_id, row.attempts)  # tests: crash window
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
        await self.db(self.store.finish, row.id, "done", None, (row.item_id, row.address, outgoing))
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

    async def _replies_from_tracker(self, agent: Any, conversation: str,
                                    item_id: str) -> Optional[List[Dict[str, Any]]]:
        store = agent.tracker_store
        fetch = getattr(store, "retrieve_full_tracker", None) or store.retrieve
        tracker = await fetch(conversation)
        if tracker is None:
            return None
        found = False
        replies: List[Dict[str, Any]] = []
        for event in tracker.events:
            if isinstance(event, UserUttered):
                if found:
                    break
                found = event.message_id == item_id
            elif found and isinstance(event, BotUttered):
                msg = {"text": event.text, **{k: v for k, v in (event.data or {}).items() if v}}
                replies.append(msg)
        return replies if found else None

    async def _mark_read(self, wamid: str, address: str) -> None:
        result = await self.provider.mark_read(wamid, address)
        if result.outcome != "ok":
            logger.info("whatsapp: mark-as-read of %s failed (%s %s)", wamid, result.code, result.title)

    # ---- outbound --------------------------------------------------------------------------
    async def _flush_outbox(self, address: str) -> bool:
        """Send the address's pending outbox rows in order; False when the lease was lost."""
        s = self.settings
        for row in await self.db(self.store.pending_outbox, address):
            attempts = row.attempts
            if row.next_attempt_at and row.next_attempt_at > time.time():
                await asyncio.sleep(row.next_attempt_at - time.time())
            while True:
                if not await self.db(self.store.mark_sending, row.id, True):
                    logger.warning("whatsapp: lease of %s lost (or row %s claimed elsewhere); "
                                   "stopping its sends", address, row.id)
                    return False
                attempts += 1
                body = {"messaging_product": "whatsapp", "recipient_type": "individual",
                        **recipient_fields(address), **row.body,
                        "biz_opaque_callback_data": f"{CALLBACK_PREFIX}{row.id}"}
                result = await self.provider.send(body)
                if result.outcome == "ok":
                    hooks.current().after_accepted(row.id, attempts)  # tests: crash window
                    await self.db(self.store.mark_accepted, row.id, result.wamid or "")
                    break
                if result.outcome == "retry" and attempts < s.max_attempts:
                    delay = min(s.retry_base_s * 2 ** (attempts - 1), s.retry_max_s)
                    logger.info("whatsapp: send %s got %s/%s, retrying in %.1fs", row.id, result.http_status,
                                result.code, delay)
                    await self.db(self.store.mark_retry, row.id, time.time() + delay, result.code, result.title)
                    await asyncio.sleep(delay)
                    continue
                logger.warning("whatsapp: send %s to %s rejected: %s %s %s", row.id, address,
                               result.http_status, result.code, result.title)
                await self.db(self.store.mark_rejected, row.id, result.code, result.title)
                break
        return True

    async def push(self, conversation_address: str, message: Dict[str, Any]) -> None:
        """Queue a proactive message (agent replies, trigger_intent) and wake the worker."""
        # a conversation whose customer changed number is answered at the current number
        address = await self.db(self.store.current_address, conversation_address)
        window_open, awaiting = True, False  # Z-API (a WhatsApp Web session) has no 24-hour window
        if self.settings.provider == "cloud":
            window_open = (await self.db(self.store.window_of, address)).is_open()
            awaiting = not window_open and await self.db(self.store.template_awaiting, address)
        outgoing = templates.plan(message, window_open, self.templates, awaiting)
        if outgoing:
            await self.db(self.store.queue, f"push:{uuid.uuid4().hex}", address, outgoing)
            self.wake.set()
