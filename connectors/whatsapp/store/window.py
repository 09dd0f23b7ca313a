"""The 24-hour window of each address (``whatsapp_inbox`` + ``whatsapp_windows``) and the free text
held in ``whatsapp_outbox`` until the customer writes again.

The rule itself is atende_contract.wa_window (the console applies the same one). Held rows have
``send_state`` ``held``: nothing sends them; the customer's next message turns them ``pending``
before Rasa answers that message, so they leave first, in their original order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

import sqlalchemy as sa

from atende_contract import wa_window

from .engine import StoreBase, inbox, insert_ignoring_duplicates, outbox, windows


def note_expiration(conn: Any, address: str, expires_at: Optional[float]) -> None:
    """Keep the latest expiration Meta gave for ``address`` (an older status never shortens it)."""
    if not isinstance(expires_at, (int, float)) or isinstance(expires_at, bool):
        return
    now = time.time()
    conn.execute(insert_ignoring_duplicates(conn.engine, windows),
                 {"recipient": address, "expires_at": float(expires_at), "updated_at": now})
    conn.execute(sa.update(windows).where(windows.c.recipient == address, windows.c.expires_at < expires_at)
                 .values(expires_at=float(expires_at), updated_at=now))


@dataclass(frozen=True)
class Window:
    last_inbound_at: Optional[float]
    expires_at: Optional[float]

    @property
    def until(self) -> Optional[float]:
        return wa_window.window_until(self.last_inbound_at, self.expires_at)

    def is_open(self, now: Optional[float] = None) -> bool:
        return wa_window.is_open(self.last_inbound_at, self.expires_at, time.time() if now is None else now)


class WindowOps(StoreBase):
    def window_of(self, address: str) -> Window:
        """What the store knows of ``address``'s window: its last message, Meta's expiration."""
        with self.engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(inbox.c.received_at)).where(
                inbox.c.sender == address, inbox.c.kind == "message")).scalar()
            expires = conn.execute(sa.select(windows.c.expires_at).where(windows.c.recipient == address)).scalar()
        return Window(last, expires)

    def release_held(self, address: str) -> int:
        """The customer wrote: the held free text of ``address`` goes out now (in order)."""
        with self.engine.begin() as conn:
            res = conn.execute(sa.update(outbox).where(
                outbox.c.recipient == address, outbox.c.send_state == "held",
            ).values(send_state="pending", updated_at=time.time()))
            return res.rowcount or 0

    def template_awaiting(self, address: str) -> bool:
        """A template went to ``address`` and its free text still waits for the customer.

        Only a template Meta has not refused counts: one rejected at send (132xxx) or failed by a
        status leaves its free text held (the console shows it as not delivered), but nothing
        waits behind it, so the next proactive message is planned on its own (its own template,
        or marked as needing one). Text held quietly behind an earlier template has no template
        under its ``source_key`` and counts only through that template."""
        tpl = outbox.alias("tpl")
        live_template = sa.exists().where(
            tpl.c.source_key == outbox.c.source_key, tpl.c.recipient == address, tpl.c.kind == "template",
            tpl.c.send_state != "rejected", sa.or_(tpl.c.status.is_(None), tpl.c.status != "failed"))
        with self.engine.connect() as conn:
            return conn.execute(sa.select(outbox.c.id).where(
                outbox.c.recipient == address, outbox.c.send_state == "held",
                outbox.c.needs_template.is_(False), live_template).limit(1)).first() is not None

    def held(self, address: str) -> Dict[int, Dict[str, Any]]:
        """Held rows of ``address`` (id -> state columns), for tests and the console."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(outbox.c.id, outbox.c.needs_template, outbox.c.error_title).where(
                outbox.c.recipient == address, outbox.c.send_state == "held").order_by(outbox.c.id)).all()
        return {r.id: {"needs_template": bool(r.needs_template), "reason": r.error_title} for r in rows}
