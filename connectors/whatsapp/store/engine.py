"""The WhatsApp connector's database: URL, engine and schema (SQLAlchemy 1.4 core, bot env).

The tables are created if missing, in the same database as Rasa's tracker store; the other
modules of this package hold the operations on them, one table each (inbox.py, outbox.py,
leases.py, aliases.py). Column names are a contract: the app env reads ``whatsapp_outbox`` and
``whatsapp_inbox`` (atende_contract.tables, helpdesk/privacy.py) and databases in service hold
them, so they keep their first names although the code calls the customer's ``address`` what
the columns call ``sender`` / ``recipient`` (docs/whatsapp.md, "Names").

- ``whatsapp_inbox``: one row per message / call event / status received, unique by ``item_id``
  (so Meta's retries are no-ops); ``state`` pending -> done | ignored; ``sender`` = the address.
- ``whatsapp_outbox``: one row per message to send, unique by (``source_key``, ``idx``) where
  ``source_key`` is the inbound item id (or ``push:<uuid>`` for proactive messages); ``recipient``
  = the address; ``send_state`` pending -> sending -> accepted | rejected (``unconfirmed`` after a
  crash during a send); ``status`` sent/delivered/read/played/failed from Meta, never moving
  backwards; ``error_code`` / ``needs_template`` (131047) for the console.
- ``whatsapp_leases``: one row per address being worked on by a process: ``owner``
  (hostname:pid:random) and ``expires_at`` (docs/whatsapp.md, "Several replicas").
- ``whatsapp_aliases``: a customer's number change (Meta's ``user_changed_number``): the new
  ``wa_id`` keeps the conversation of the first one (``conversation`` = the conversation address).
- ``whatsapp_windows``: the latest ``conversation.expiration_timestamp`` Meta gave per address
  (the 24-hour window, store/window.py).
- ``whatsapp_pricing``: Meta's ``pricing`` object of the statuses, one row per message sent
  (``wamid``), with the conversation it belongs to (store/pricing.py; the console prices it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from atende_contract import dburl

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_DATABASE_URL = "sqlite:///var/atende.db"

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

aliases = sa.Table(
    "whatsapp_aliases",
    metadata,
    sa.Column("wa_id", sa.String(128), primary_key=True),
    sa.Column("conversation", sa.String(128), nullable=False, index=True),
    sa.Column("changed_at", sa.Float, nullable=False),
)


windows = sa.Table(
    "whatsapp_windows",
    metadata,
    sa.Column("recipient", sa.String(128), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False),  # Meta's conversation.expiration_timestamp
    sa.Column("updated_at", sa.Float, nullable=False),
)

pricing = sa.Table(
    "whatsapp_pricing",
    metadata,
    sa.Column("wamid", sa.String(255), primary_key=True),
    sa.Column("recipient", sa.String(128), nullable=False, index=True),  # the address
    sa.Column("conversation", sa.String(200), nullable=False, index=True),  # Rasa's "whatsapp:<address>"
    sa.Column("billable", sa.Boolean, nullable=True),  # None: Meta did not say (deprecated under PMP)
    sa.Column("category", sa.String(40), nullable=True),  # authentication, marketing, utility, service, ...
    sa.Column("pricing_model", sa.String(16), nullable=True),  # CBP | PMP
    sa.Column("pricing_type", sa.String(40), nullable=True),  # regular | free_customer_service | free_entry_point
    sa.Column("reason", sa.Text, nullable=True),  # what of Meta's object was not stored, and why
    sa.Column("recorded_at", sa.Float, nullable=False, index=True),  # UNIX seconds: the message's time
)


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


def create_tables(engine: Engine) -> None:
    """Create the tables if missing; tolerates another replica creating them at the same time."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        time.sleep(0.5)
        metadata.create_all(engine, checkfirst=True)


def insert_ignoring_duplicates(engine: Engine, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL."""
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - other databases are not supported
        raise RuntimeError(f"unsupported database {engine.dialect.name}")
    return insert(table).on_conflict_do_nothing()


class StoreBase:
    """What every table's operations share: the engine and this process's lease settings."""

    engine: Engine
    owner: str  # this process incarnation's lease owner id (leases.new_owner_id)
    lease_s: float
    unconfirmed_grace_s: float  # how long a send interrupted by a crash waits for Meta's status
