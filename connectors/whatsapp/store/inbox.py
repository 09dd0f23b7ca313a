"""``whatsapp_inbox``: every message, call event and status received, processed in order per
address; an inbox row is finished in the same transaction that queues its replies (outbox.py)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import sqlalchemy as sa

from ..outbound import Outgoing
from ..parse import InboundItem
from .engine import inbox, insert_ignoring_duplicates, leases, outbox
from .outbox import OutboxOps


@dataclass
class InboxRow:
    id: int
    item_id: str
    kind: str
    address: str
    text: Optional[str]
    button_id: Optional[str]
    data: Dict[str, Any]
    attempts: int


class InboxOps(OutboxOps):
    def insert_items(self, items: Sequence[InboundItem]) -> int:
        """Insert all items in one transaction; returns how many were new (replays are no-ops)."""
        return self.insert_batches([items])[0]

    def insert_batches(self, batches: Sequence[Sequence[InboundItem]]) -> List[int]:
        """Group commit: several deliveries in one transaction (one fsync); new rows per delivery."""
        stmt = insert_ignoring_duplicates(self.engine, inbox)
        counts: List[int] = []
        with self.engine.begin() as conn:
            for items in batches:
                new = 0
                for row in self._rows(items):
                    new += conn.execute(stmt, row).rowcount or 0
                counts.append(new)
        return counts

    @staticmethod
    def _rows(items: Sequence[InboundItem]) -> List[Dict[str, Any]]:
        now = time.time()
        return [
            {
                "item_id": it.item_id,
                "kind": it.kind,
                "sender": it.address,
                "state": "ignored" if it.action == "ignore" else "pending",
                "text": it.text,
                "button_id": it.button_id,
                "data": json.dumps({"metadata": it.metadata, "call": it.call, "status": it.status,
                                    "action": it.action}, ensure_ascii=False),
                "reason": it.reason,
                "attempts": 0,
                "received_at": now,
                "processed_at": now if it.action == "ignore" else None,
            }
            for it in items
        ]

    def addresses_with_work(self) -> Set[str]:
        """Addresses with pending inbox rows or outbox rows to send that no other live process holds."""
        now = time.time()
        with self.engine.connect() as conn:
            a = conn.execute(sa.select(inbox.c.sender).where(
                inbox.c.state == "pending", ~self._live_lease_of_other(inbox.c.sender, now),
            ).distinct()).scalars().all()
            b = conn.execute(
                sa.select(outbox.c.recipient).where(
                    ~self._live_lease_of_other(outbox.c.recipient, now),
                    sa.or_(
                        outbox.c.send_state == "pending",
                        sa.and_(outbox.c.send_state == "unconfirmed",
                                outbox.c.updated_at < now - self.unconfirmed_grace_s),
                        # caught mid-send by a dead replica: its lease is gone or expired, so a
                        # claim turns the row "unconfirmed" (then it waits for Meta's status)
                        sa.and_(outbox.c.send_state == "sending",
                                ~sa.exists().where(leases.c.sender == outbox.c.recipient,
                                                   leases.c.expires_at > now)),
                    )
                ).distinct()
            ).scalars().all()
        return set(a) | set(b)

    def next_pending(self, address: str) -> Optional[InboxRow]:
        with self.engine.connect() as conn:
            r = conn.execute(
                sa.select(inbox).where(inbox.c.sender == address, inbox.c.state == "pending")
                .order_by(inbox.c.id).limit(1)
            ).mappings().first()
        if r is None:
            return None
        return InboxRow(r["id"], r["item_id"], r["kind"], r["sender"], r["text"], r["button_id"],
                        json.loads(r["data"]), r["attempts"])

    def begin_attempt(self, row_id: int) -> bool:
        """Count an attempt, only while the row is pending and this process holds its address's live
        lease (the fence before Rasa sees the message); False: leave the row alone."""
        with self.engine.begin() as conn:
            res = conn.execute(sa.update(inbox).where(
                inbox.c.id == row_id, inbox.c.state == "pending", self._lease_held(inbox.c.sender),
            ).values(attempts=inbox.c.attempts + 1))
            return bool(res.rowcount)

    def finish(self, row_id: int, state: str, reason: Optional[str] = None,
               outgoing: Optional[Tuple[str, str, List[Outgoing]]] = None) -> bool:
        """Mark a pending inbox row done/ignored and, in the same transaction, queue its replies
        (``outgoing`` = source key, address, messages); False (and nothing queued) when the row
        was no longer pending."""
        with self.engine.begin() as conn:
            res = conn.execute(sa.update(inbox).where(inbox.c.id == row_id, inbox.c.state == "pending").values(
                state=state, reason=reason, processed_at=time.time()))
            if not res.rowcount:
                return False
            if outgoing is not None:
                source_key, address, msgs = outgoing
                self._queue(conn, source_key, address, msgs)
            return True

    def has_item(self, item_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(inbox.c.id).where(inbox.c.item_id == item_id)).first() is not None

    def apply_pending_statuses(self, address: str) -> int:
        """Apply the address's pending status rows now, ahead of its messages (statuses never move a
        row backwards, so their order against messages does not matter). Called before the outbox
        is flushed, so a send confirmed by Meta after a crash is never resent."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(inbox.c.id, inbox.c.data).where(
                inbox.c.sender == address, inbox.c.state == "pending", inbox.c.kind == "status",
            ).order_by(inbox.c.id)).all()
        for row_id, data in rows:
            result = self.apply_status(json.loads(data)["status"])
            self.finish(row_id, "done", result)
        return len(rows)
