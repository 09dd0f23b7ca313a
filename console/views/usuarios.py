"""Usuários (managers): console users, new technicians and managers, password reset."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from console import ui
from console.auth import User
from helpdesk.db import session_scope
from helpdesk.errors import PermissionDenied
from helpdesk.models import Technician
from helpdesk.services import technicians

ROLE_LABELS = {"technician": "técnico", "manager": "gestor"}


def _require_manager(user: User) -> None:
    with session_scope() as s:
        tech = s.get(Technician, user.id)
        if tech is None or not tech.active:
            raise PermissionDenied("user gone")
        technicians.require_role(tech, "manager")


def _create(user: User) -> str:
    _require_manager(user)
    email = str(ui.value("u_email", "")).strip().lower()
    with session_scope() as s:
        technicians.create(s, name=ui.value("u_name", ""), email=email, password=ui.value("u_password", ""),
                           role=ui.value("u_role", "technician"), level=int(ui.value("u_level", 1)))
    for key in ("u_name", "u_email", "u_password"):
        st.session_state[key] = ""
    return f"Usuário {email} criado."


def _reset(user: User) -> str:
    _require_manager(user)
    with session_scope() as s:
        technicians.set_password(s, int(ui.value("p_user")), ui.value("p_password", ""))
    st.session_state["p_password"] = ""
    return "Senha redefinida."


def render(user: User) -> None:
    if not user.is_manager:  # app.py checks too; defence in depth
        st.error(PermissionDenied.message_pt)
        return
    st.header("Usuários")
    with session_scope() as s:
        rows = [{"id": t.id, "Nome": t.name, "E-mail": t.email, "Perfil": ROLE_LABELS.get(t.role, t.role),
                 "Nível": t.level, "Bloqueado até": ui.fmt_dt(t.locked_until) if t.locked_until else ""}
                for t in technicians.list_all(s)]
    st.dataframe(pd.DataFrame(rows).drop(columns=["id"]), hide_index=True, width="stretch")
    a, b = st.columns(2)
    with a, st.form("new_user"):
        st.markdown("**Novo usuário**")
        st.text_input("Nome", key="u_name")
        st.text_input("E-mail", key="u_email")
        st.text_input("Senha inicial (mínimo 8 caracteres)", type="password", key="u_password")
        st.selectbox("Perfil", list(ROLE_LABELS), format_func=ROLE_LABELS.get, key="u_role")
        st.selectbox("Nível", [1, 2, 3], key="u_level")
        st.form_submit_button("Criar usuário", key="u_create", type="primary", on_click=ui.action,
                              args=(lambda: _create(user),))
    with b, st.form("reset_password"):
        st.markdown("**Redefinir senha**")
        names = {r["id"]: f"{r['Nome']} ({r['E-mail']})" for r in rows}
        st.selectbox("Usuário", list(names), format_func=names.get, key="p_user")
        st.text_input("Nova senha", type="password", key="p_password")
        st.form_submit_button("Redefinir senha", key="p_save", on_click=ui.action, args=(lambda: _reset(user),))
