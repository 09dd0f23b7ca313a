"""Usuários (managers): console users, new technicians and managers, password reset, profile and
access changes.

Every action checks again, in the database, that the acting user is an active manager. A password
reset or a deactivation ends the account's open sessions (``session_generation``); a role change is
seen by its open sessions at their next rerun.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from console import auth, ui
from console.auth import User
from helpdesk.db import session_scope
from helpdesk.errors import PermissionDenied
from helpdesk.services import technicians

ROLE_LABELS = {"technician": "técnico", "manager": "gestor"}


def _require_manager(user: User) -> None:
    with session_scope() as s:
        technicians.require_manager(s, user.id)


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
    target = int(ui.value("p_user"))
    with session_scope() as s:
        technicians.set_password(s, target, ui.value("p_password", ""))
    auth.keep_generation(target)  # a manager resetting their own password keeps this session
    st.session_state["p_password"] = ""
    return "Senha redefinida. As sessões abertas desse usuário foram encerradas."


def _access(user: User, target: int) -> str:
    _require_manager(user)
    active = ui.value(f"a_active_{target}", "ativo") == "ativo"
    role = ui.value(f"a_role_{target}", "technician")
    with session_scope() as s:
        tech = technicians.set_role(s, target, role, by=user.id)
        technicians.set_active(s, target, active, by=user.id)
        name = tech.name
    state = "ativo" if active else "desativado (sessões abertas encerradas)"
    return f"Acesso de {name} atualizado: {ROLE_LABELS.get(role, role)}, {state}."


def render(user: User) -> None:
    if not user.is_manager:  # app.py checks too; defence in depth
        ui.alert("error", PermissionDenied.message_pt)
        return
    st.header("Usuários")
    with session_scope() as s:
        rows = [{"id": t.id, "Nome": t.name, "E-mail": t.email, "Perfil": ROLE_LABELS.get(t.role, t.role),
                 "Nível": t.level, "Situação": "ativo" if t.active else "desativado",
                 "_role": t.role, "_active": t.active}
                for t in technicians.list_all(s, active_only=False)]
    st.dataframe(pd.DataFrame(rows).drop(columns=["id", "_role", "_active"]), hide_index=True, width="stretch")
    names = {r["id"]: f"{r['Nome']} ({r['E-mail']})" for r in rows}
    a, b, c = st.columns(3)
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
        st.selectbox("Usuário", list(names), format_func=names.get, key="p_user")
        st.text_input("Nova senha", type="password", key="p_password")
        st.form_submit_button("Redefinir senha", key="p_save", on_click=ui.action, args=(lambda: _reset(user),))
    with c:
        st.markdown("**Perfil e acesso**")
        target = st.selectbox("Usuário", list(names), format_func=names.get, key="a_user")
        current = next(r for r in rows if r["id"] == target)
        with st.form("access"):  # keyed per user: the fields start from that user's current values
            st.selectbox("Perfil", list(ROLE_LABELS), index=list(ROLE_LABELS).index(current["_role"]),
                         format_func=ROLE_LABELS.get, key=f"a_role_{target}")
            st.selectbox("Situação", ["ativo", "desativado"], index=0 if current["_active"] else 1,
                         key=f"a_active_{target}")
            st.caption("Desativar encerra as sessões abertas do usuário na hora.")
            st.form_submit_button("Salvar acesso", key="a_save", on_click=ui.action,
                                  args=(lambda: _access(user, int(target)),))
