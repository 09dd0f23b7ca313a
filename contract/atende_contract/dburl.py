"""The one ``DATABASE_URL`` and the forms each environment needs of it.

``DATABASE_URL`` is written ``sqlite:///var/atende.db`` (relative to the repository root, the
default), ``sqlite:////abs/path.db`` or ``postgresql://user:pass@host:port/db`` (``postgres://``
is accepted). The app env talks to PostgreSQL through psycopg 3 (``postgresql+psycopg://``), the
bot env (Rasa, SQLAlchemy 1.4) through psycopg2 (``postgresql://``), and Rasa's SQL tracker store
takes the URL in parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Union
from urllib.parse import unquote, urlsplit

DEFAULT = "sqlite:///var/atende.db"


class BadDatabaseUrl(ValueError):
    """A DATABASE_URL that neither environment can use."""


def _absolute(url: str, root: Union[str, Path]) -> str:
    url = (url or DEFAULT).strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///"):]
        if rel and rel != ":memory:" and not rel.startswith("/"):
            return f"sqlite:///{Path(root) / rel}"
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme.split("+")[0] not in ("sqlite", "postgresql"):
        raise BadDatabaseUrl(f"DATABASE_URL must be sqlite:///... or postgresql://..., not {scheme or url[:20]!r}")
    return url


def app_url(url: str, root: Union[str, Path]) -> str:
    """The URL for SQLAlchemy 2 with psycopg 3 (app env)."""
    url = _absolute(url, root)
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def bot_url(url: str, root: Union[str, Path]) -> str:
    """The URL for SQLAlchemy 1.4 with psycopg2 (bot env)."""
    url = _absolute(url, root)
    if url.startswith("postgresql+"):
        return "postgresql://" + url.split("://", 1)[1]
    return url


def tracker_store_keys(url: str, root: Union[str, Path]) -> Dict[str, object]:
    """Rasa's SQL tracker store settings (``dialect``, ``db``, ``url`` = host, ...) for this URL."""
    url = bot_url(url, root)
    if url.startswith("sqlite:///"):
        return {"dialect": "sqlite", "db": url[len("sqlite:///"):]}
    parts = urlsplit(url)
    keys: Dict[str, object] = {
        "dialect": "postgresql",
        # Rasa passes the endpoint's `url` as the host (a `host` key would clash)
        "url": parts.hostname or "localhost",
        "port": parts.port or 5432,
        "db": parts.path.lstrip("/") or "postgres",
    }
    if parts.username:
        keys["username"] = unquote(parts.username)
    if parts.password:
        keys["password"] = unquote(parts.password)
    if parts.query:
        keys["query"] = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    return keys
