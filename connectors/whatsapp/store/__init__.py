"""The WhatsApp connector's durable store (SQLAlchemy 1.4 core, bot env), one module per table:
engine.py (URL, engine, schema), inbox.py, outbox.py, leases.py, aliases.py, window.py, pricing.py. ``Store`` gathers
their operations over one engine; every function is synchronous (the worker runs them in threads).
The tables themselves are in engine.py (``store.inbox`` etc. are the modules of their operations).
"""

from __future__ import annotations

from typing import Optional

from sqlalchemy.engine import Engine

from .aliases import AliasOps
from .engine import create_tables, make_engine, resolve_database_url
from .inbox import InboxOps, InboxRow
from .leases import new_owner_id
from .outbox import CALLBACK_PREFIX, TEMPLATE_NEEDED_CODE, OutboxRow
from .window import Window, WindowOps

__all__ = ["CALLBACK_PREFIX", "TEMPLATE_NEEDED_CODE", "InboxRow", "OutboxRow", "Store", "Window", "make_engine",
           "resolve_database_url"]


class Store(InboxOps, AliasOps, WindowOps):
    def __init__(self, engine: Engine, unconfirmed_grace_s: float = 60.0, lease_s: float = 30.0,
                 owner: Optional[str] = None) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s}")
        self.engine = engine
        self.unconfirmed_grace_s = unconfirmed_grace_s
        self.lease_s = lease_s
        self.owner = owner or new_owner_id()

    def create_tables(self) -> None:
        create_tables(self.engine)
