"""Atende technician console: `streamlit run console/app.py`.

Thin over helpdesk/: pages read and act through helpdesk services only. Pages are chosen in the
sidebar (or with `?pagina=`); manager pages refuse technicians with a clear message. The user's
account, role and session generation are read again from the database on every rerun
(``auth.current_user``), so a demotion or a deactivation takes effect at once.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from console import auth, ui  # noqa: E402
from console.views import chamado, clientes, fila, relatorios, usuarios  # noqa: E402
from helpdesk.errors import PermissionDenied  # noqa: E402

PAGES = {
    "fila": ("Fila", False, fila.render),
    "chamado": ("Chamado", False, chamado.render),
    "clientes": ("Clientes", False, clientes.render),
    "relatorios": ("Relatórios", True, relatorios.render),
    "usuarios": ("Usuários", True, usuarios.render),
}


def main() -> None:
    st.set_page_config(page_title="Atende · Console", page_icon="🎧", layout="wide")
    user = auth.current_user()
    if user is None:
        auth.login_form()
        return

    allowed = [key for key, (_label, manager_only, _fn) in PAGES.items() if user.is_manager or not manager_only]
    nav = st.session_state.get("nav")
    if nav is not None and nav != st.session_state.get("nav_last"):
        page = nav  # the user picked a page in the sidebar
    else:
        page = st.query_params.get("pagina") or "fila"
    if page not in PAGES:
        page = "fila"
    if page in allowed:
        st.session_state["nav"] = page
    elif st.session_state.get("nav") not in allowed:
        st.session_state["nav"] = allowed[0]
    if st.query_params.get("pagina") != page:
        st.query_params["pagina"] = page

    with st.sidebar:
        st.markdown("**Atende · Console**")
        st.caption(f"{ui.md(user.name)} · {'gestor' if user.is_manager else 'técnico'}")
        st.radio("Página", allowed, key="nav", format_func=lambda k: PAGES[k][0])
        st.button("Sair", key="logout", on_click=auth.sign_out)
    st.session_state["nav_last"] = st.session_state.get("nav")

    label, manager_only, render = PAGES[page]
    ui.show_flash()
    if manager_only and not user.is_manager:
        ui.alert("error", PermissionDenied.message_pt + " Esta página é só para gestores.")
        return
    render(user)


main()
