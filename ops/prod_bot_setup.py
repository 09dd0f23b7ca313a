"""Bot-side setup job (bot env): create Rasa's `events` table and the WhatsApp connector's tables.

Rasa and the connector create their tables when a server starts; two replicas starting together
on an empty database race on CREATE TABLE and one of them dies (UniqueViolation on pg_type).
Running this once before the replicas start (compose service `bot-setup`, `make run-prod`)
removes the race. Safe to run again: everything is created only if missing.

    python -m ops.prod_bot_setup            # DATABASE_URL from the environment
"""
from __future__ import annotations

import os
import sys


def main() -> int:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        print("DATABASE_URL is required", file=sys.stderr)
        return 2
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    from connectors.whatsapp.store import Store, make_engine

    from .endpoints import tracker_store

    cfg = dict(tracker_store(url))
    cfg.pop("type")
    host = cfg.pop("url", None)
    SQLTrackerStore(Domain.empty(), host=host, **cfg)  # creates `events` if missing
    Store(make_engine(url)).create_tables()
    print("Rasa tracker store and WhatsApp tables are ready.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
