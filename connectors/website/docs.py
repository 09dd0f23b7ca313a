"""``GET /docs/<source>/<path>.html``: the documentation pages Atende publishes, beside the widget.

Ingestion writes a sanitised HTML copy of each page of a folder source without a
``public_base_url`` under ``<index dir>/published/`` (knowledge/publish.py, docs/knowledge.md,
"Published sources"), and the bot cites them at ``/docs/...#<section>``. This route serves them
from the Rasa server that serves the widget (the nginx proxy routes ``/docs/`` here too):

- the file is found only through ``knowledge.publish.resolve_published``: traversal (``..``, also
  percent-encoded), dotfiles, symlinks, anything but ``.html`` and anything outside the folder is
  answered 404, with the same body as a missing page;
- every answer carries a strict Content-Security-Policy (no script, nothing loaded, only the pages'
  own style by its hash), ``X-Content-Type-Options: nosniff`` and no referrer.

The bot image has no knowledge package (its dependencies are the app env's): the resolver's module,
standard library only, is loaded from its file (the image copies ``knowledge/publish.py``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from types import ModuleType
from typing import Any, Optional
from urllib.parse import unquote

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUBLISH_MODULE = os.path.join(_REPO, "knowledge", "publish.py")
ROUTE = "/docs/<path:path>"
ROUTE_NAME = "atende_published_docs"
NOT_FOUND = "Página não encontrada.\n"


def load_publish() -> ModuleType:
    spec = importlib.util.spec_from_file_location("atende_knowledge_publish", PUBLISH_MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _headers(publish: ModuleType) -> dict:
    return {
        "Content-Security-Policy": publish.CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


def serve_published(publish: ModuleType, root: Any, raw_path: str) -> HTTPResponse:
    """The page for a request path below ``/docs/`` (percent-encoded), or 404."""
    headers = _headers(publish)
    try:
        # the router hands the path as sent: decoded once here, then checked whole by the resolver
        requested = unquote(raw_path, errors="strict")
        found = publish.resolve_published(root, requested)
        body = found.read_bytes() if found is not None else None
    except (OSError, ValueError, UnicodeError):
        body = None
    if body is None:
        return response.text(NOT_FOUND, status=404, headers=headers)
    headers["Cache-Control"] = "public, max-age=60"
    return response.raw(body, content_type="text/html; charset=utf-8", headers=headers)


def add_docs_route(blueprint: Any, index_dir: Optional[str] = None) -> None:
    """Serve ``/docs/`` at the app's root when the website channel's blueprint is registered: a
    blueprint's own routes live under its prefix (``/webhooks/website/``), and Sanic takes routes
    only until the server starts, so the route is added where Rasa's SocketBlueprint attaches
    socket.io to the app (its ``register``)."""
    try:
        publish = load_publish()
    except (OSError, ImportError, SyntaxError) as exc:  # an image built without the file
        logger.error("website chat: %s cannot be loaded (%s): /docs/ is not served", PUBLISH_MODULE, exc)
        return
    root = publish.published_root(index_dir)
    base = type(blueprint)

    async def published_docs(request: Request, path: str) -> HTTPResponse:
        return serve_published(publish, root, path)

    def register(self: Any, app: Any, options: Any) -> None:
        base.register(self, app, options)
        app.add_route(published_docs, ROUTE, methods=["GET", "HEAD"], name=ROUTE_NAME)

    # Sanic blueprints take no new attributes: the instance becomes a subclass with the same slots
    blueprint.__class__ = type("DocsSocketBlueprint", (base,), {"__slots__": (), "register": register})
