"""``whatsapp_outbox``: the messages to send, their send state and Meta's statuses.

Rows are queued in the transaction that marks their inbox row done (inbox.py ``finish``) or by a
proactive push; the worker sends them in order per address. A send interrupted by a crash is
``unconfirmed`` and waits for a status quoting it (``biz_opaque_callback_data``) before a resend.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence

import sqlalchemy as sa

from ..outbound import Outgoing
from .engine import insert_ignoring_duplicates, outbox
from .leases import LeaseOps
from .pricing import note_pricing
from .window import note_expiration

TEMPLATE_NEEDED_CODE = 131047  # Meta: outside the 24-hour window, a template is needed
CALLBACK_PREFIX = "atende-outbox:"  # biz_opaque_callback_data of a send: "<prefix><outbox id>"
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 4}


@dataclass
class OutboxRow:
    id: int
    source_key: str
    idx: int
    address: str
    body: Dict[str, Any]
    send_state: str
    attempts: int
    next_attempt_at: Optional[float]


class OutboxOps(LeaseOps):
    def _queue(self, conn: Any, source_key: str, address: str, msgs: Iterable[Outgoing]) -> None:
        now = time.time()
        stmt = insert_ignoring_duplicates(self.engine, outbox)
        for i, m in enumerate(msgs):
            conn.execute(stmt, {
                "source_key": source_key, "idx": i, "recipient": address, "kind": m.kind,
                "body": json.dumps(m.body, ensure_ascii=False), "ref": m.ref,
                "options": json.dumps(m.options, ensure_ascii=False) if m.options else None,
                "send_state": "held" if m.hold else "pending", "needs_template": m.needs_template,
                "error_title": m.reason, "attempts": 0,
                "created_at": now, "updated_at": now,
            })

    def queue(self, source_key: str, address: str, msgs: Sequence[Outgoing]) -> None:
        with self.engine.begin() as conn:
            self._queue(conn, source_key, address, msgs)

    def resolve_option(self, address: str, option_id: str) -> Optional[str]:
        """The payload behind an option id that this connector sent to ``address``."""
        ref = option_id.split(".", 1)[0]
        if not ref or ref == option_id:
            return None
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(outbox.c.options).where(
                outbox.c.ref == ref, outbox.c.recipient == address)).scalars().all()
        for raw in rows:
            payload = json.loads(raw or "{}").get(option_id)
            if isinstance(payload, str):
                return payload
        return None

    def pending_outbox(self, address: str) -> List[OutboxRow]:
        now = time.time()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(outbox).where(
                    outbox.c.recipient == address,
                    sa.or_(outbox.c.send_state == "pending",
                           sa.and_(outbox.c.send_state == "unconfirmed",
                                   outbox.c.updated_at < now - self.unconfirmed_grace_s)),
                ).order_by(outbox.c.id)
            ).mappings().all()
            # a row whose send may have reached Meta before a crash blocks the later ones (order)
            blocker = conn.execute(sa.select(sa.func.min(outbox.c.id)).where(
                outbox.c.recipient == address, outbox.c.send_state == "unconfirmed",
                outbox.c.updated_at >= now - self.unconfirmed_grace_s)).scalar()
        return [OutboxRow(r["id"], r["source_key"], r["idx"], r["recipient"], json.loads(r["body"]),
                          r["send_state"], r["attempts"], r["next_attempt_at"])
                for r in rows if blocker is None or r["id"] < blocker]

    def _update_outbox(self, row_id: int, **values: Any) -> None:
        values["updated_at"] = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.update(outbox).where(outbox.c.id == row_id).values(**values))

    def mark_sending(self, row_id: int, require_lease: bool = False) -> bool:
        """Claim one outbox row for a send: only a pending (or unconfirmed past its grace, as chosen
        by pending_outbox) row moves to ``sending``, atomically, so it is sent by one process; with
        ``require_lease`` only while this process holds the address's live lease."""
        cond = [outbox.c.id == row_id, outbox.c.send_state.in_(("pending", "unconfirmed"))]
        if require_lease:
            cond.append(self._lease_held(outbox.c.recipient))
        with self.engine.begin() as conn:
            res = conn.execute(sa.update(outbox).where(*cond).values(
                send_state="sending", attempts=outbox.c.attempts + 1, updated_at=time.time()))
            return bool(res.rowcount)

    def mark_accepted(self, row_id: int, wamid: str) -> None:
        self._update_outbox(row_id, send_state="accepted", wamid=wamid, next_attempt_at=None)

    def mark_retry(self, row_id: int, next_at: float, code: Optional[int], title: Optional[str]) -> None:
        self._update_outbox(row_id, send_state="pending", next_attempt_at=next_at, error_code=code,
                            error_title=title)

    def mark_rejected(self, row_id: int, code: Optional[int], title: Optional[str]) -> None:
        self._update_outbox(row_id, send_state="rejected", status="failed", error_code=code, error_title=title,
                            needs_template=(code == TEMPLATE_NEEDED_CODE), next_attempt_at=None)

    def recover_at_start(self) -> int:
        """Rows caught mid-send by a crash: wait for a status quoting them before resending.

        The grace period restarts at every start, since Meta's status webhooks that were retried
        during the downtime arrive only now. Rows of an address whose lease another live process
        holds are left alone (that replica is sending them); a killed replica's rows are turned
        ``unconfirmed`` here once its lease expired, or by ``claim`` when its lease is taken over."""
        now = time.time()
        with self.engine.begin() as conn:
            res = conn.execute(sa.update(outbox).where(
                outbox.c.send_state.in_(("sending", "unconfirmed")),
                ~self._live_lease_of_other(outbox.c.recipient, now),
            ).values(send_state="unconfirmed", updated_at=now))
            return res.rowcount or 0

    def apply_status(self, status: Dict[str, Any]) -> str:
        """Record a status on its outbox row, never moving backwards; returns what happened."""
        wamid, new = status["wamid"], status["status"]
        callback = status.get("biz_opaque_callback_data") or ""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(outbox).where(outbox.c.wamid == wamid)).mappings().first()
            if row is None and callback.startswith(CALLBACK_PREFIX):
                rid = callback[len(CALLBACK_PREFIX):]
                if rid.isdigit():
                    row = conn.execute(sa.select(outbox).where(outbox.c.id == int(rid))).mappings().first()
                    if row is not None and row["send_state"] in ("unconfirmed", "sending"):
                        # the send before the crash did reach Meta: never send it again
                        conn.execute(sa.update(outbox).where(outbox.c.id == row["id"]).values(
                            send_state="accepted", wamid=wamid, updated_at=time.time()))
            # what Meta charges for the message, whatever happens to the status below
            note_pricing(conn, status, row["recipient"] if row is not None else None)
            if row is None:
                return "unknown message"
            note_expiration(conn, row["recipient"], status.get("conversation_expires_at"))
            cur = row["status"]
            values: Dict[str, Any] = {}
            if new == "failed":
                if cur == "failed" or STATUS_RANK.get(cur or "", 0) >= STATUS_RANK["read"]:
                    return f"ignored: failed after {cur}"
                errors = status.get("errors") or []
                code = errors[0].get("code") if errors and isinstance(errors[0].get("code"), int) else None
                title = errors[0].get("title") if errors else None
                values = {"status": "failed", "error_code": code, "error_title": title,
                          "needs_template": code == TEMPLATE_NEEDED_CODE}
            elif new in STATUS_RANK:
                if cur == "failed" or STATUS_RANK[new] <= STATUS_RANK.get(cur or "", 0):
                    return f"ignored: {new} after {cur}"
                values = {"status": new}
            else:
                return f"ignored: status {new}"
            values["updated_at"] = time.time()
            conn.execute(sa.update(outbox).where(outbox.c.id == row["id"]).values(**values))
            return f"{cur} -> {new}"
