"""The website chat's consent object, and the facts about it both environments must agree on.

The widget shows a consent card (purposes; the LLM provider when one is enabled; the privacy
policy link) and, once the visitor accepts it, sends with each message, in ``customData``::

    {"consent": {"version": "web-2026-12-ia", "policy_url": "https://vendor.example/privacidade"}}

The website connector forwards only what :func:`clean` returns, under :data:`METADATA_KEY` of the
message metadata it builds itself (a client never writes Rasa metadata directly: the REST channel
drops it, the WhatsApp connector builds its own). The action server cleans it again before it
records the consent with the server's clock (helpdesk/consent.py). Anything odd (another type,
an unknown key, a long or free-text version, a policy URL that is neither https nor the configured
one, a client timestamp) makes :func:`clean` return None: the consent is dropped, the message
still goes through.

:func:`llm_provider` is the one rule for "an LLM is enabled" that the connector (which tells the
widget whether to mention it) and the action server (which says it in the WhatsApp notice) share;
it is the same rule as ``knowledge.config.Settings.llm_enabled``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

METADATA_KEY = "atende_consent"
CUSTOM_DATA_KEY = "consent"
# A short token: "web-2026-12", "web-2026-12-ia", "v3.1". Never free text.
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
MAX_VERSION = 40
MAX_POLICY_URL = 500
KEYS = frozenset({"version", "policy_url"})
# Suffix of a text version whose text says that questions go to an LLM provider.
LLM_SUFFIX = "-ia"
POLICY_URL_ENV = "ATENDE_PRIVACY_POLICY_URL"

_URL_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")


def valid_version(value: Any) -> bool:
    return isinstance(value, str) and bool(VERSION_RE.match(value))


def valid_policy_url(value: Any, configured: Optional[str] = None) -> bool:
    """An https URL with a host (printable URL characters only, bounded), or the configured one."""
    if not isinstance(value, str) or not value or len(value) > MAX_POLICY_URL:
        return False
    if configured and value == configured:
        return True
    if not _URL_CHARS.match(value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and "@" not in parts.netloc


def clean(raw: Any, configured_policy_url: Optional[str] = None) -> Optional[dict]:
    """The consent object as it may be forwarded and recorded, or None (dropped).

    ``{"version": str, "policy_url": str | None}``; the only keys accepted are those two.
    """
    if not isinstance(raw, dict) or not raw or not set(raw) <= KEYS:
        return None
    version = raw.get("version")
    if not valid_version(version):
        return None
    url = raw.get("policy_url")
    if url in (None, ""):
        url = None
    elif not valid_policy_url(url, configured_policy_url):
        return None
    return {"version": version, "policy_url": url}


def configured_policy_url(env: Mapping[str, str]) -> Optional[str]:
    """``ATENDE_PRIVACY_POLICY_URL`` when it is a usable URL (http allowed: the operator's choice)."""
    value = (env.get(POLICY_URL_ENV) or "").strip()
    if not value or len(value) > MAX_POLICY_URL or not _URL_CHARS.match(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("https", "http") and parts.hostname else None


def llm_provider(env: Mapping[str, str]) -> Optional[str]:
    """A short name of the LLM provider the questions are sent to, or None when none is enabled."""
    if env.get("OPENAI_API_KEY"):
        base = (env.get("OPENAI_BASE_URL") or "").strip()
        if not base:
            return "OpenAI"
        try:
            host = urlsplit(base).hostname
        except ValueError:
            host = None
        return host or "OpenAI"
    if env.get("AZURE_OPENAI_ENDPOINT") and env.get("AZURE_OPENAI_API_KEY"):
        return "Microsoft Azure OpenAI"
    return None
