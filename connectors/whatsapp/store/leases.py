"""``whatsapp_leases``: one owner per address across processes.

Only the owner of a live lease hands that address's inbox rows to Rasa and sends its outbox rows,
so any number of replicas sharing the database process each row once and keep per-address order;
a killed replica's leases expire and are taken over (docs/whatsapp.md, "Several replicas").
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from typing import Any, Set

import sqlalchemy as sa

from .engine import StoreBase, insert_ignoring_duplicates, leases, outbox


def new_owner_id() -> str:
    """A lease owner id unique to this process incarnation: hostname:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseOps(StoreBase):
    def _live_lease_of_other(self, address_col: Any, now: float) -> Any:
        return sa.exists().where(leases.c.sender == address_col, leases.c.owner != self.owner,
                                 leases.c.expires_at > now)

    def _lease_held(self, address_col: Any) -> Any:
        """This process holds the live lease of the address in ``address_col``."""
        return sa.exists().where(leases.c.sender == address_col, leases.c.owner == self.owner,
                                 leases.c.expires_at > time.time())

    def claim(self, address: str) -> bool:
        """Take the lease of ``address`` if it is free, expired or already ours (atomic on SQLite and
        PostgreSQL: an INSERT that loses to a concurrent one is a no-op, and the conditional UPDATE
        is re-checked on the locked row). Taking it from another (dead) owner turns that owner's
        in-flight sends into ``unconfirmed`` so they wait for Meta's confirmation before a resend."""
        now = time.time()
        with self.engine.begin() as conn:
            prev = conn.execute(sa.select(leases.c.owner).where(leases.c.sender == address)).scalar()
            if prev is None:
                got = conn.execute(insert_ignoring_duplicates(self.engine, leases), {
                    "sender": address, "owner": self.owner, "expires_at": now + self.lease_s,
                    "claimed_at": now}).rowcount or 0
            else:
                got = conn.execute(sa.update(leases).where(
                    leases.c.sender == address,
                    sa.or_(leases.c.owner == self.owner, leases.c.expires_at <= now),
                ).values(owner=self.owner, expires_at=now + self.lease_s, claimed_at=now)).rowcount or 0
            if got and prev != self.owner:
                conn.execute(sa.update(outbox).where(
                    outbox.c.recipient == address, outbox.c.send_state == "sending",
                ).values(send_state="unconfirmed", updated_at=now))
        return bool(got)

    def holds(self, address: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(leases.c.sender).where(
                leases.c.sender == address, leases.c.owner == self.owner,
                leases.c.expires_at > time.time())).first() is not None

    def renew_all(self) -> Set[str]:
        """Extend every lease this process holds (one statement); returns the addresses still held."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.update(leases).where(leases.c.owner == self.owner, leases.c.expires_at > now)
                         .values(expires_at=now + self.lease_s))
            return set(conn.execute(sa.select(leases.c.sender).where(
                leases.c.owner == self.owner, leases.c.expires_at > now)).scalars().all())

    def release(self, address: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(leases).where(leases.c.sender == address, leases.c.owner == self.owner))

    def release_all(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(leases).where(leases.c.owner == self.owner))
