"""Login and console sessions: technicians of helpdesk/, sessions that expire, roles.

A console session lives in Streamlit's per-browser session state. It expires after
``CONSOLE_SESSION_TTL_MINUTES`` without activity (every interaction renews it); an expired session
is dropped and the user is told to log in again. On every rerun (and in every action callback) the
technician is read again from the database: a deactivated account, or a session older than a
password reset or a deactivation (``session_generation``), is logged out at once, and the role
shown and enforced is the one stored now, not the one at login.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

import streamlit as st

from console import ui
from helpdesk.config import get_settings
from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.models import Technician, utcnow
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
    generation: int = 0

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"


def _ttl() -> timedelta:
    return timedelta(minutes=get_settings().session_ttl_minutes)


def _is_proxy(ip: str | None) -> bool:
    """A direct peer that may speak for the client: loopback (Streamlit reports it as None) or a
    private address (nginx of `make run-prod` and compose)."""
    if ip is None:
        return True
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return addr.is_loopback or addr.is_private


def client_address() -> str:
    """The address the login throttle counts per client: nginx's ``X-Real-IP`` when the connection
    comes from a proxy (loopback or a private network), else the connection's own address."""
    try:
        peer = st.context.ip_address
        forwarded = st.context.headers.get("X-Real-IP")
    except Exception:  # no browser connection (bare mode)
        return "local"
    peer = peer if isinstance(peer, str) and peer else None  # AppTest hands out mocks
    forwarded = forwarded.strip() if isinstance(forwarded, str) else ""
    if forwarded and _is_proxy(peer):
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            pass
    return peer or "local"


def current_user(renew: bool = True) -> User | None:
    """The logged-in user, or None. Drops (and reports) an expired or revoked session; refreshes
    name, role and level from the database. ``renew=False`` (the queue's own refresh) checks
    without counting as activity."""
    user = st.session_state.get(SESSION_KEY)
    if not isinstance(user, User):
        return None
    now = utcnow()
    if now >= user.expires_at:
        logout()
        st.session_state["login_notice"] = EXPIRED_MESSAGE
        return None
    try:
        with session_scope() as s:
            tech = technicians.session_user(s, user.id, user.generation)
            user.name, user.email, user.role, user.level = tech.name, tech.email, tech.role, tech.level
    except DomainError as err:
        logout()
        st.session_state["login_notice"] = err.message_pt
        return None
    if renew:
        user.expires_at = now + _ttl()
    return user


def signed_in() -> User:
    """The user this run already checked (``current_user``, called by console/app.py before any
    page runs). Pages get their user from here."""
    user = st.session_state.get(SESSION_KEY)
    if not isinstance(user, User):
        raise RuntimeError("no console user in this run: console/app.py checks the session first")
    return user


def logout() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def _login() -> None:
    """Callback of the login form."""
    try:
        with session_scope() as s:
            tech = technicians.authenticate(s, st.session_state.get("login_email", ""),
                                            st.session_state.get("login_password", ""), client=client_address())
            user = User(id=tech.id, name=tech.name, email=tech.email, role=tech.role, level=tech.level,
                        expires_at=utcnow() + _ttl(), generation=tech.session_generation or 0)
    except DomainError as err:
        st.session_state["login_error"] = err.message_pt
        st.session_state.pop("login_password", None)
        return
    st.session_state.pop("login_password", None)
    st.session_state[SESSION_KEY] = user


def keep_generation(technician_id: int) -> None:
    """After this session's own user reset their password: keep this session, end the others."""
    user = st.session_state.get(SESSION_KEY)
    if isinstance(user, User) and user.id == technician_id:
        with session_scope() as s:
            tech = s.get(Technician, technician_id)
            user.generation = (tech.session_generation or 0) if tech else user.generation


def login_form() -> None:
    st.title("Atende · Console")
    notice = st.session_state.pop("login_notice", None)
    if notice:
        ui.alert("warning", notice)
    error = st.session_state.pop("login_error", None)
    if error:
        ui.alert("error", error)
    with st.form("login"):
        st.text_input("E-mail", key="login_email")
        st.text_input("Senha", type="password", key="login_password")
        st.form_submit_button("Entrar", key="login_submit", on_click=_login)


def sign_out() -> None:
    """Callback of the "Sair" button."""
    logout()
    st.session_state["login_notice"] = "Você saiu do console."
