"""Render Rasa's endpoints.yml from DATABASE_URL and friends.

Rasa's SQL tracker store takes the URL in parts, and the bot env uses psycopg2, so the one
DATABASE_URL of the project is translated here for Rasa. The tracker store is
`connectors.tracker_store.AtendeSQLTrackerStore`: Rasa's SQL store (same `events` table, same
keys) with a lighter per-turn path.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from atende_contract import dburl

from .paths import ROOT, VAR

TRACKER_STORE = "connectors.tracker_store.AtendeSQLTrackerStore"


def tracker_store(database_url: str) -> dict[str, object]:
    try:
        return {"type": TRACKER_STORE, **dburl.tracker_store_keys(database_url, ROOT)}
    except dburl.BadDatabaseUrl as exc:
        raise ValueError(f"unsupported DATABASE_URL for the tracker store: {exc}") from exc


def render(*, database_url: str | None = None, action_url: str | None = None,
           redis_url: str | None = None) -> dict[str, object]:
    database_url = database_url or os.environ.get("DATABASE_URL") or f"sqlite:///{VAR / 'atende.db'}"
    action_url = action_url or os.environ.get("ACTION_SERVER_URL", "http://localhost:5055/webhook")
    doc: dict[str, object] = {
        "action_endpoint": {"url": action_url},
        "tracker_store": tracker_store(database_url),
    }
    redis_url = redis_url if redis_url is not None else os.environ.get("REDIS_URL", "")
    if redis_url:
        parts = urlsplit(redis_url)
        lock: dict[str, object] = {"type": "redis", "url": parts.hostname or "localhost",
                                   "port": parts.port or 6379, "db": int(parts.path.lstrip("/") or 0)}
        if parts.password:
            lock["password"] = unquote(parts.password)
        doc["lock_store"] = lock
    return doc


def write(path: Path, **kwargs: str | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(render(**kwargs), sort_keys=False), encoding="utf-8")
    return path


if __name__ == "__main__":
    out = write(VAR / "endpoints.yml")
    print(out)
