"""The ``articles: database`` source kind: the articles managers approved in the console.

Approved articles live in the help desk's database (``knowledge_articles``, helpdesk/services/
articles.py), so the ingester reads them from ``DATABASE_URL`` rather than from files: approval,
discarding and an erasure's review flag take effect on the next ``python -m knowledge ingest``
with nothing to copy between the console's host and the ingester's. Each article is a Markdown
document (front matter: title, module, product) whose URL, the one the bot cites, is the
console's read-only view ``ATENDE_CONSOLE_URL/artigos?id=N``.

The help desk is imported only when such a source runs, so the knowledge package keeps working
without it. A database that is missing, unreachable or not migrated is a problem of the run, not a
failure: the articles indexed before are kept.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


class ArticlesUnavailable(RuntimeError):
    """The help desk's database cannot be read (missing, unreachable, not migrated)."""


def approved_articles(database_url: str | None = None) -> list[dict[str, Any]]:
    """``{key, url, product, module, title, data}`` of every approved article."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from helpdesk.config import get_settings
    from helpdesk.db import get_engine, session_scope
    from helpdesk.errors import DomainError
    from helpdesk.services import articles

    url = database_url or get_settings().database_url
    if url.startswith("sqlite:///") and ":memory:" not in url and not Path(url[len("sqlite:///"):]).is_file():
        # opening it would create an empty database file
        raise ArticlesUnavailable(f"database not found: {url[len('sqlite:///'):]}")
    try:
        if not inspect(get_engine(url)).has_table("knowledge_articles"):
            raise ArticlesUnavailable("database has no knowledge_articles table (run `python -m helpdesk migrate`)")
        with session_scope(url) as s:
            return articles.published_documents(s)
    except SQLAlchemyError as exc:
        raise ArticlesUnavailable(f"database unreadable: {exc.__class__.__name__}") from exc
    except DomainError as exc:  # e.g. a malformed ATENDE_CONSOLE_URL
        raise ArticlesUnavailable(str(exc)) from exc
