"""Small shared pieces of the console: flash messages, labels, formatting."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import streamlit as st

from helpdesk.errors import DomainError
from helpdesk.models import PRIORITIES, STATUS_LABELS, TAX_REGIME_LABELS, TYPE_LABELS

CHANNEL_LABELS = {"whatsapp": "WhatsApp", "web": "site", "phone": "telefone", "console": "console"}
PRIORITY_LABELS = {p: p for p in PRIORITIES}


def flash(kind: str, text: str) -> None:
    """Show a message on the next run (actions call st.rerun() right after)."""
    st.session_state.setdefault("flash", []).append((kind, text))


def show_flash() -> None:
    for kind, text in st.session_state.pop("flash", []):
        getattr(st, kind)(text)


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



def go(page: str, **params: str) -> None:
    """Navigate to another page (with query parameters). Call from a widget callback: the run that
    follows renders the new page (no st.rerun, which leaves stale elements behind in AppTest)."""
    st.query_params.clear()
    st.query_params["pagina"] = page
    for key, value in params.items():
        st.query_params[key] = value


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
