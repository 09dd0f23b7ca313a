"""Login and console sessions: technicians of helpdesk/, sessions that expire, roles.

A console session lives in Streamlit's per-browser session state. It expires after
``CONSOLE_SESSION_TTL_MINUTES`` without activity (every interaction renews it); an expired session
is dropped and the user is told to log in again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import streamlit as st

from helpdesk.config import get_settings
from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.models import utcnow
from helpdesk.services import technicians

SESSION_KEY = "auth"
EXPIRED_MESSAGE = "Sua sessão expirou. Entre novamente."


@dataclass
class User:
    id: int
    name: str
    email: str
    role: str
    level: int
    expires_at: datetime

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"


def _ttl() -> timedelta:
    return timedelta(minutes=get_settings().session_ttl_minutes)


def current_user() -> User | None:
    """The logged-in user, or None. Drops (and reports) an expired session."""
    user = st.session_state.get(SESSION_KEY)
    if not isinstance(user, User):
        return None
    now = utcnow()
    if now >= user.expires_at:
        logout()
        st.session_state["login_notice"] = EXPIRED_MESSAGE
        return None
    user.expires_at = now + _ttl()
    return user


def logout() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def _login() -> None:
    """Callback of the login form."""
    try:
        with session_scope() as s:
            tech = technicians.authenticate(s, st.session_state.get("login_email", ""),
                                            st.session_state.get("login_password", ""))
            user = User(id=tech.id, name=tech.name, email=tech.email, role=tech.role, level=tech.level,
                        expires_at=utcnow() + _ttl())
    except DomainError as err:
        st.session_state["login_error"] = err.message_pt
        return
    st.session_state.pop("login_password", None)
    st.session_state[SESSION_KEY] = user


def login_form() -> None:
    st.title("Atende · Console")
    notice = st.session_state.pop("login_notice", None)
    if notice:
        st.warning(notice)
    error = st.session_state.pop("login_error", None)
    if error:
        st.error(error)
    with st.form("login"):
        st.text_input("E-mail", key="login_email")
        st.text_input("Senha", type="password", key="login_password")
        st.form_submit_button("Entrar", key="login_submit", on_click=_login)


def sign_out() -> None:
    """Callback of the "Sair" button."""
    logout()
    st.session_state["login_notice"] = "Você saiu do console."
