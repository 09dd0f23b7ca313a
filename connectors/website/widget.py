"""``GET /webhooks/website/widget.js``: the built widget, prefixed with its socket.io path.

The widget is built by npm into ``widget/dist/widget.js`` (``WebsiteSettings.widget_dir``);
without a build the route answers 503 with the command that makes one.
"""

from __future__ import annotations

import json
import os

from sanic import response
from sanic.response import HTTPResponse

from .settings import WebsiteSettings

NOT_BUILT = (
    "// Atende widget not built: run `npm --prefix widget ci && "
    "npm --prefix widget run build`\n"
)


def serve_widget(settings: WebsiteSettings) -> HTTPResponse:
    path = os.path.join(settings.widget_dir, "widget.js")
    try:
        with open(path, "rb") as handle:
            body = handle.read()
    except OSError:
        return response.text(
            NOT_BUILT, status=503, content_type="application/javascript; charset=utf-8"
        )
    # The policy link (ATENDE_PRIVACY_POLICY_URL) and the LLM provider the consent card names.
    config = (
        "window.__ATENDE_WEBCHAT__=Object.assign({socketPath:%s,privacyUrl:%s},"
        "window.__ATENDE_WEBCHAT__||{},{llmProvider:%s});\n"  # the page cannot hide the LLM
        % (js_string(settings.socketio_path), js_value(settings.policy_url), js_value(settings.llm_provider))
    ).encode("utf-8")
    return response.raw(
        config + body,
        content_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


def js_value(value: "str | None") -> str:
    """A JavaScript string literal, or ``null``."""
    return "null" if value is None else js_string(value)


def js_string(value: str) -> str:
    """A JavaScript string literal that cannot close a ``<script>`` element."""
    return json.dumps(value).replace("<", "\\u003c")
