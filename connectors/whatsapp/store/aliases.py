"""``whatsapp_aliases``: after a number change the new ``wa_id`` continues the conversation of the
first one (its conversation address)."""

from __future__ import annotations

import time
from typing import Optional

import sqlalchemy as sa

from .engine import StoreBase, aliases


class AliasOps(StoreBase):
    def conversation_of(self, wa_id: str) -> Optional[str]:
        """The conversation address that a changed number continues, or None (not an alias)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(aliases.c.conversation).where(aliases.c.wa_id == wa_id)).scalar()

    def set_alias(self, new: str, old: str) -> str:
        """Record that `old` is now `new`; returns the conversation address (chains collapse)."""
        with self.engine.begin() as conn:
            conversation_address = conn.execute(
                sa.select(aliases.c.conversation).where(aliases.c.wa_id == old)).scalar() or old
            conn.execute(aliases.delete().where(aliases.c.wa_id == new))
            if new != conversation_address:  # else back to the first number: no alias left
                conn.execute(aliases.insert().values(wa_id=new, conversation=conversation_address,
                                                     changed_at=time.time()))
            return conversation_address

    def current_address(self, conversation_address: str) -> str:
        """The number a conversation's messages go to now: its latest alias, or its own address."""
        with self.engine.connect() as conn:
            latest = conn.execute(sa.select(aliases.c.wa_id).where(aliases.c.conversation == conversation_address)
                                  .order_by(aliases.c.changed_at.desc()).limit(1)).scalar()
        return latest or conversation_address
