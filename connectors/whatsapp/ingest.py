"""Storing deliveries into the durable inbox off the event loop, with group commit (bot env)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Deque, List, Optional, Tuple

import sqlalchemy as sa

from .parse import InboundItem
from .store import Store, make_engine


class Ingestor:
    """Stores deliveries in the inbox; concurrent deliveries share a transaction (group commit) on
    a thread of its own, so acknowledgements never queue behind other database work.

    On SQLite (one writer at a time, shared with Rasa's tracker store and the worker) the inserts
    use a connection of their own that does not let SQLite wait for the write lock: SQLite's own
    busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between tries, which puts
    tens of milliseconds on an acknowledgement whenever another write holds the lock. Instead the
    transaction is retried every half millisecond (for up to ``lock_wait_s``)."""

    def __init__(self, store: Store, sqlite_synchronous: str = "FULL", lock_wait_s: float = 30.0) -> None:
        self.lock_wait_s = lock_wait_s
        self.sqlite = store.engine.dialect.name == "sqlite"
        if self.sqlite:
            url = store.engine.url.render_as_string(hide_password=False)
            store = Store(make_engine(url, sqlite_synchronous, sqlite_busy_timeout_s=0.0),
                          unconfirmed_grace_s=store.unconfirmed_grace_s, lease_s=store.lease_s, owner=store.owner)
        self.store = store
        # (seconds the batch took to commit, lock retries) of recent batches, for /stats
        self.timings: Deque[Tuple[float, int]] = deque(maxlen=20000)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whatsapp-ingest")
        self._queue: List[Tuple[List[InboundItem], "asyncio.Future[int]"]] = []
        self._task: Optional[asyncio.Task] = None

    async def ingest(self, items: List[InboundItem]) -> int:
        """Store one delivery's items (one transaction); returns how many were new."""
        if not items:
            return 0
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[int]" = loop.create_future()
        self._queue.append((items, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._loop())
        return await fut

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue[:200], self._queue[200:]
            try:
                counts = await loop.run_in_executor(
                    self.executor, partial(self._insert, [items for items, _ in batch]))
            except Exception as exc:  # nothing of this batch is stored: every delivery gets a 500
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), n in zip(batch, counts):
                if not fut.done():
                    fut.set_result(n)

    def _insert(self, batches: List[List[InboundItem]]) -> List[int]:
        t0 = time.monotonic()
        deadline = t0 + self.lock_wait_s
        retries = 0
        while True:
            try:
                counts = self.store.insert_batches(batches)
                self.timings.append((time.monotonic() - t0, retries))
                return counts
            except sa.exc.OperationalError as exc:  # nothing was committed: the transaction is retried
                text = str(exc).lower()
                if not self.sqlite or not ("locked" in text or "busy" in text) or time.monotonic() > deadline:
                    raise
                retries += 1
                time.sleep(0.0005)

    def close(self) -> None:
        self.executor.shutdown(wait=False)
        if self.sqlite:
            self.store.engine.dispose()
