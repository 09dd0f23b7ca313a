"""Small shared pieces of the console: flash messages, labels, formatting, escaping.

Customer text (and any other stored string: names, subjects, questions) never reaches an element
that renders Markdown or HTML as such. It goes to ``st.text``, ``st.code`` or ``st.dataframe``;
where an element only takes Markdown (headers, alerts, metrics, button labels) it goes through
``md``; plotly labels go through ``charts.label``.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable

import streamlit as st

from helpdesk.errors import DomainError
from helpdesk.models import PRIORITIES, STATUS_LABELS, TAX_REGIME_LABELS, TYPE_LABELS

CHANNEL_LABELS = {"whatsapp": "WhatsApp", "web": "site", "phone": "telefone", "console": "console"}
PRIORITY_LABELS = {p: p for p in PRIORITIES}


_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_SPACES = re.compile(r"\s+")
WORD_JOINER = "\u2060"  # invisible; breaks the patterns that Markdown rewrites after parsing
# Streamlit's Markdown rewrites text after parsing, where backslash escapes are gone already: GFM
# turns http://, https://, www. and a@b.c into links, and :name: / :material/name: into icons.
_REWRITTEN = re.compile(r"(?i)(?:https?|ftp)(?=:)|www(?=\.)|[\w.+-](?=@)|:(?=[\w/+-]+:)")


def md(value: object) -> str:
    """``value`` as inline Markdown that renders exactly as typed: whitespace (newlines too) becomes
    one space, so no block starts inside it; every ASCII punctuation character is backslash-escaped
    (CommonMark allows it for all of them), so no emphasis, link, image, HTML, math or directive
    forms; and an invisible word joiner goes where GFM would make an autolink or Streamlit an icon."""
    text = _REWRITTEN.sub(lambda m: m.group(0) + WORD_JOINER, _SPACES.sub(" ", str(value)).strip())
    return _MD_SPECIAL.sub(r"\\\1", text)


def flash(kind: str, text: str) -> None:
    """Show a message on the next run (actions call st.rerun() right after)."""
    st.session_state.setdefault("flash", []).append((kind, text))


def alert(kind: str, text: str) -> None:
    """st.error / st.warning / st.success / st.info with ``text`` shown as typed (through ``md``):
    messages quote names, subjects and inputs, so none of them is read as Markdown."""
    getattr(st, kind)(md(text))


def show_flash() -> None:
    for kind, text in st.session_state.pop("flash", []):
        alert(kind, text)


def fmt_dt(value: datetime | None) -> str:
    return value.strftime("%d/%m/%Y %H:%M") if value else "—"


def type_label(code: str | None) -> str:
    return TYPE_LABELS.get(code or "", code or "—")


def status_label(code: str | None) -> str:
    return STATUS_LABELS.get(code or "", code or "—")


def regime_label(code: str | None) -> str:
    return TAX_REGIME_LABELS.get(code or "", code or "—")


def channel_label(code: str | None) -> str:
    return CHANNEL_LABELS.get(code or "", code or "—")


def hours(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} h".replace(".", ",")


def pct(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}%".replace(".", ",")



# URL paths of the console's pages (console/app.py registers them): deep links are /chamado?id=42.
QUEUE, TICKET, CUSTOMERS, REPORTS, USERS = "fila", "chamado", "clientes", "relatorios", "usuarios"


def _target() -> None:
    """Never runs: ``go`` names a registered page by its URL path only."""


def go(url_path: str, **params: str) -> None:
    """Open another console page (``url_path``, one of the paths above) with query parameters.

    ``st.switch_page`` matches pages by URL path, so a page object with that path stands for the
    one console/app.py registered. Call it from the script body, not from a widget callback."""
    st.switch_page(st.Page(_target, title=url_path, url_path=url_path), query_params=params)


def value(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def action(fn: Callable[[], str | None], ok: str = "Feito.") -> None:
    """Widget callback: run a helpdesk action, then show its result (or its pt-BR error).

    Callbacks run before the script, so the session is checked here too: an action attempted with
    an expired session does nothing (the run that follows shows the login form and says why)."""
    from console import auth

    if auth.current_user() is None:
        return
    try:
        message = fn()
    except DomainError as err:
        flash("error", err.message_pt)
        return
    flash("success", message or ok)
