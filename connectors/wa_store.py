"""Durable inbox and outbox of the WhatsApp connector (SQLAlchemy 1.4 core, bot env).

Tables (created if missing, in the same database as Rasa's tracker store):
- ``whatsapp_inbox``: one row per message / call event / status received, unique by ``item_id``
  (so Meta's retries are no-ops); ``state`` pending -> done | ignored.
- ``whatsapp_outbox``: one row per Graph API message to send, unique by (``source_key``, ``idx``)
  where ``source_key`` is the inbound item id (or ``push:<uuid>`` for proactive messages);
  ``send_state`` pending -> sending -> accepted | rejected (``unconfirmed`` after a crash during a
  send); ``status`` sent/delivered/read/played/failed from Meta, never moving backwards;
  ``error_code`` / ``needs_template`` (131047) for the console.
- ``whatsapp_leases``: one row per sender (phone) being worked on by a process: ``owner``
  (hostname:pid:random) and ``expires_at``. Only the owner of a live lease hands that sender's
  inbox rows to Rasa and sends its outbox rows, so any number of replicas sharing the database
  process each row once and keep per-sender order; a killed replica's leases expire and are taken
  over (see docs/whatsapp.md, "Several replicas").

All functions are synchronous; the channel runs them in a worker thread.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from atende_contract import dburl
from connectors.wa_outbound import Outgoing
from connectors.wa_parse import InboundItem

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "sqlite:///var/atende.db"
TEMPLATE_NEEDED_CODE = 131047
CALLBACK_PREFIX = "atende-outbox:"

metadata = sa.MetaData()

inbox = sa.Table(
    "whatsapp_inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.String(255), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("sender", sa.String(128), nullable=False, index=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("button_id", sa.String(255), nullable=True),
    sa.Column("data", sa.Text, nullable=False),  # JSON: metadata, call, status
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("processed_at", sa.Float, nullable=True),
)

outbox = sa.Table(
    "whatsapp_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source_key", sa.String(255), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("recipient", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # JSON Graph body without "to"
    sa.Column("ref", sa.String(32), nullable=True, index=True),
    sa.Column("options", sa.Text, nullable=True),  # JSON {option id: payload}
    sa.Column("send_state", sa.String(16), nullable=False, index=True),
    sa.Column("wamid", sa.String(255), nullable=True, index=True),
    sa.Column("status", sa.String(16), nullable=True),
    sa.Column("error_code", sa.Integer, nullable=True),
    sa.Column("error_title", sa.Text, nullable=True),
    sa.Column("needs_template", sa.Boolean, nullable=False, default=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("source_key", "idx", name="uq_whatsapp_outbox_source_idx"),
)

leases = sa.Table(
    "whatsapp_leases",
    metadata,
    sa.Column("sender", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=False),
)

# A customer's number change (Meta's `user_changed_number`): the new number keeps the conversation
# of the first one (`conversation` = the wa_id the conversation id was made of).
aliases = sa.Table(
    "whatsapp_aliases",
    metadata,
    sa.Column("wa_id", sa.String(128), primary_key=True),
    sa.Column("conversation", sa.String(128), nullable=False, index=True),
    sa.Column("changed_at", sa.Float, nullable=False),
)

STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 4}


def resolve_database_url(url: Optional[str]) -> str:
    """DATABASE_URL for the bot env (psycopg2), relative SQLite paths from the repository root
    (atende_contract.dburl); the SQLite file's folder is created."""
    url = dburl.bot_url(url or DEFAULT_DATABASE_URL, REPO_ROOT)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return url


def make_engine(url: Optional[str], sqlite_synchronous: str = "FULL", sqlite_busy_timeout_s: float = 30.0) -> Engine:
    """An engine for DATABASE_URL; SQLite in WAL mode with ``synchronous`` FULL (survives power loss)
    or NORMAL (survives a killed process, faster commits). ``sqlite_busy_timeout_s``: how long
    SQLite itself waits for another writer (0: answer "database is locked" at once)."""
    url = resolve_database_url(url)
    sync = sqlite_synchronous.upper()
    if sync not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"unsupported SQLite synchronous mode {sqlite_synchronous!r}")
    if url.startswith("sqlite"):
        # SQLAlchemy 1.4 would open a new connection per transaction for a SQLite file (NullPool):
        # keep a few open instead.
        engine = sa.create_engine(url, future=True, poolclass=sa.pool.QueuePool, pool_size=4, max_overflow=4,
                                  connect_args={"timeout": sqlite_busy_timeout_s, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.close()
    else:
        engine = sa.create_engine(url, future=True, pool_pre_ping=True)
    return engine


def _insert(engine: Engine, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL."""
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - other databases are not supported
        raise RuntimeError(f"unsupported database {engine.dialect.name}")
    return insert(table).on_conflict_do_nothing()


@dataclass
class InboxRow:
    id: int
    item_id: str
    kind: str
    sender: str
    text: Optional[str]
    button_id: Optional[str]
    data: Dict[str, Any]
    attempts: int


@dataclass
class OutboxRow:
    id: int
    source_key: str
    idx: int
    recipient: str
    body: Dict[str, Any]
    send_state: str
    attempts: int
    next_attempt_at: Optional[float]


def new_owner_id() -> str:
    """A lease owner id unique to this process incarnation: hostname:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Store:
    def __init__(self, engine: Engine, unconfirmed_grace_s: float = 60.0, lease_s: float = 30.0,
                 owner: Optional[str] = None) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s}")
        self.engine = engine
        self.unconfirmed_grace_s = unconfirmed_grace_s
        self.lease_s = lease_s
        self.owner = owner or new_owner_id()

    # ---- leases (one owner per sender across processes) -----------------------------------
    def _live_lease_of_other(self, sender_col: Any, now: float) -> Any:
        return sa.exists().where(leases.c.sender == sender_col, leases.c.owner != self.owner,
                                 leases.c.expires_at > now)

    def claim(self, sender: str) -> bool:
        """Take the lease of ``sender`` if it is free, expired or already ours (atomic on SQLite and
        PostgreSQL: an INSERT that loses to a concurrent one is a no-op, and the conditional UPDATE
        is re-checked on the locked row). Taking it from another (dead) owner turns that owner's
        in-flight sends into ``unconfirmed`` so they wait for Meta's confirmation before a resend."""
        now = time.time()
        with self.engine.begin() as conn:
            prev = conn.execute(sa.select(leases.c.owner).where(leases.c.sender == sender)).scalar()
            if prev is None:
                got = conn.execute(_insert(self.engine, leases), {
                    "sender": sender, "owner": self.owner, "expires_at": now + self.lease_s,
                    "claimed_at": now}).rowcount or 0
            else:
                got = conn.execute(sa.update(leases).where(
                    leases.c.sender == sender,
                    sa.or_(leases.c.owner == self.owner, leases.c.expires_at <= now),
                ).values(owner=self.owner, expires_at=now + self.lease_s, claimed_at=now)).rowcount or 0
            if got and prev != self.owner:
                conn.execute(sa.update(outbox).where(
                    outbox.c.recipient == sender, outbox.c.send_state == "sending",
                ).values(send_state="unconfirmed", updated_at=now))
        return bool(got)

    def holds(self, sender: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(leases.c.sender).where(
                leases.c.sender == sender, leases.c.owner == self.owner,
                leases.c.expires_at > time.time())).first() is not None

    def renew_all(self) -> Set[str]:
        """Extend every lease this process holds (one statement); returns the senders still held."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.update(leases).where(leases.c.owner == self.owner, leases.c.expires_at > now)
                         .values(expires_at=now + self.lease_s))
            return set(conn.execute(sa.select(leases.c.sender).where(
                leases.c.owner == self.owner, leases.c.expires_at > now)).scalars().all())

    def release(self, sender: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(leases).where(leases.c.sender == sender, leases.c.owner == self.owner))

    def release_all(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(leases).where(leases.c.owner == self.owner))

    def create_tables(self) -> None:
        """Create the tables if missing; tolerates another replica creating them at the same time."""
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:
            time.sleep(0.5)
            metadata.create_all(self.engine, checkfirst=True)

    # ---- inbox -------------------------------------------------------------------------------
    def insert_items(self, items: Sequence[InboundItem]) -> int:
        """Insert all items in one transaction; returns how many were new (replays are no-ops)."""
        return self.insert_batches([items])[0]

    def insert_batches(self, batches: Sequence[Sequence[InboundItem]]) -> List[int]:
        """Group commit: several deliveries in one transaction (one fsync); new rows per delivery."""
        stmt = _insert(self.engine, inbox)
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
                "sender": it.sender,
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

    def senders_with_work(self) -> Set[str]:
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

    def next_pending(self, sender: str) -> Optional[InboxRow]:
        with self.engine.connect() as conn:
            r = conn.execute(
                sa.select(inbox).where(inbox.c.sender == sender, inbox.c.state == "pending")
                .order_by(inbox.c.id).limit(1)
            ).mappings().first()
        if r is None:
            return None
        return InboxRow(r["id"], r["item_id"], r["kind"], r["sender"], r["text"], r["button_id"],
                        json.loads(r["data"]), r["attempts"])

    def begin_attempt(self, row_id: int) -> bool:
        """Count an attempt, only while the row is pending and this process holds its sender's live
        lease (the fence before Rasa sees the message); False: leave the row alone."""
        now = time.time()
        owned = sa.exists().where(leases.c.sender == inbox.c.sender, leases.c.owner == self.owner,
                                  leases.c.expires_at > now)
        with self.engine.begin() as conn:
            res = conn.execute(sa.update(inbox).where(inbox.c.id == row_id, inbox.c.state == "pending", owned)
                               .values(attempts=inbox.c.attempts + 1))
            return bool(res.rowcount)

    def finish(self, row_id: int, state: str, reason: Optional[str] = None,
               outgoing: Optional[Tuple[str, str, List[Outgoing]]] = None) -> bool:
        """Mark a pending inbox row done/ignored and, in the same transaction, queue its replies;
        False (and nothing queued) when the row was no longer pending."""
        with self.engine.begin() as conn:
            res = conn.execute(sa.update(inbox).where(inbox.c.id == row_id, inbox.c.state == "pending").values(
                state=state, reason=reason, processed_at=time.time()))
            if not res.rowcount:
                return False
            if outgoing is not None:
                source_key, recipient, msgs = outgoing
                self._queue(conn, source_key, recipient, msgs)
            return True

    # ---- number changes ----------------------------------------------------------------------
    def conversation_of(self, wa_id: str) -> Optional[str]:
        """The wa_id whose conversation a changed number continues, or None (not an alias)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(aliases.c.conversation).where(aliases.c.wa_id == wa_id)).scalar()

    def set_alias(self, new: str, old: str) -> str:
        """Record that `old` is now `new`; returns the conversation's wa_id (chains collapse)."""
        with self.engine.begin() as conn:
            root = conn.execute(sa.select(aliases.c.conversation).where(aliases.c.wa_id == old)).scalar() or old
            if new == root:
                conn.execute(aliases.delete().where(aliases.c.wa_id == new))  # back to the first number
            else:
                conn.execute(aliases.delete().where(aliases.c.wa_id == new))
                conn.execute(aliases.insert().values(wa_id=new, conversation=root, changed_at=time.time()))
            return root

    def current_address(self, conversation: str) -> str:
        """The number a conversation's messages go to now: its latest alias, or its own wa_id."""
        with self.engine.connect() as conn:
            latest = conn.execute(sa.select(aliases.c.wa_id).where(aliases.c.conversation == conversation)
                                  .order_by(aliases.c.changed_at.desc()).limit(1)).scalar()
        return latest or conversation

    def has_item(self, item_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(inbox.c.id).where(inbox.c.item_id == item_id)).first() is not None

    # ---- outbox ------------------------------------------------------------------------------
    def _queue(self, conn: Any, source_key: str, recipient: str, msgs: Iterable[Outgoing]) -> None:
        now = time.time()
        stmt = _insert(self.engine, outbox)
        for i, m in enumerate(msgs):
            conn.execute(stmt, {
                "source_key": source_key, "idx": i, "recipient": recipient, "kind": m.kind,
                "body": json.dumps(m.body, ensure_ascii=False), "ref": m.ref,
                "options": json.dumps(m.options, ensure_ascii=False) if m.options else None,
                "send_state": "pending", "needs_template": False, "attempts": 0,
                "created_at": now, "updated_at": now,
            })

    def queue(self, source_key: str, recipient: str, msgs: Sequence[Outgoing]) -> None:
        with self.engine.begin() as conn:
            self._queue(conn, source_key, recipient, msgs)

    def resolve_option(self, recipient: str, option_id: str) -> Optional[str]:
        """The payload behind an option id that this connector sent to ``recipient``."""
        ref = option_id.split(".", 1)[0]
        if not ref or ref == option_id:
            return None
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(outbox.c.options).where(
                outbox.c.ref == ref, outbox.c.recipient == recipient)).scalars().all()
        for raw in rows:
            payload = json.loads(raw or "{}").get(option_id)
            if isinstance(payload, str):
                return payload
        return None

    def pending_outbox(self, recipient: str) -> List[OutboxRow]:
        now = time.time()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(outbox).where(
                    outbox.c.recipient == recipient,
                    sa.or_(outbox.c.send_state == "pending",
                           sa.and_(outbox.c.send_state == "unconfirmed",
                                   outbox.c.updated_at < now - self.unconfirmed_grace_s)),
                ).order_by(outbox.c.id)
            ).mappings().all()
            # a row whose send may have reached Meta before a crash blocks the later ones (order)
            blocker = conn.execute(sa.select(sa.func.min(outbox.c.id)).where(
                outbox.c.recipient == recipient, outbox.c.send_state == "unconfirmed",
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
        ``require_lease`` only while this process holds the recipient's live lease."""
        cond = [outbox.c.id == row_id, outbox.c.send_state.in_(("pending", "unconfirmed"))]
        if require_lease:
            cond.append(sa.exists().where(leases.c.sender == outbox.c.recipient, leases.c.owner == self.owner,
                                          leases.c.expires_at > time.time()))
        with self.engine.begin() as conn:
            res = conn.execute(sa.update(outbox).where(*cond).values(send_state="sending", attempts=outbox.c.attempts + 1, updated_at=time.time()))
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
        during the downtime arrive only now. Rows of a sender whose lease another live process
        holds are left alone (that replica is sending them); a killed replica's rows are turned
        ``unconfirmed`` here once its lease expired, or by ``claim`` when its lease is taken over."""
        now = time.time()
        with self.engine.begin() as conn:
            res = conn.execute(sa.update(outbox).where(
                outbox.c.send_state.in_(("sending", "unconfirmed")),
                ~self._live_lease_of_other(outbox.c.recipient, now),
            ).values(send_state="unconfirmed", updated_at=now))
            return res.rowcount or 0

    def apply_pending_statuses(self, sender: str) -> int:
        """Apply the sender's pending status rows now, ahead of its messages (statuses never move a
        row backwards, so their order against messages does not matter). Called before the outbox
        is flushed, so a send confirmed by Meta after a crash is never resent."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(inbox.c.id, inbox.c.data).where(
                inbox.c.sender == sender, inbox.c.state == "pending", inbox.c.kind == "status",
            ).order_by(inbox.c.id)).all()
        for row_id, data in rows:
            result = self.apply_status(json.loads(data)["status"])
            self.finish(row_id, "done", result)
        return len(rows)

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
            if row is None:
                return "unknown message"
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
