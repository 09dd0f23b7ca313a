"""Atende technician console: `streamlit run console/app.py` (with the repository root on PYTHONPATH,
as ops/procs.py and the app image set it).

Thin over helpdesk/: pages read and act through helpdesk services only. Navigation is Streamlit's
own (``st.navigation``): each role gets its page set, built below from one list of ``st.Page``
entries per role. A manager page reached by URL by a technician answers with the permission message
(it stays in the technician's set as a hidden page that only says so). The user's account, role and
session generation are read again from the database on every rerun (``auth.current_user``), so a
demotion or a deactivation takes effect at once.

The page modules live in ``console/screens/``, not ``console/pages/``: Streamlit treats a
``pages/`` folder next to the entry script as its older multipage layout on the first run.
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

from console import auth, notices, ui
from console.auth import User
from console.screens import (articles, customers, privacy, queue, reports, sla, ticket, users, wa_prices,
                             wa_problems)
from helpdesk.errors import PermissionDenied

REFUSED = PermissionDenied.message_pt + " Esta página é só para gestores."


def _screen(render: Callable[[User], None]) -> Callable[[], None]:
    """A page callable: ``render`` with the user this run has checked (``auth.signed_in``)."""
    return lambda: render(auth.signed_in())


def technician_pages() -> list[st.Page]:
    """The pages every console user has (technicians and managers)."""
    return [
        st.Page(_screen(queue.render), title="Fila", url_path=ui.QUEUE),
        st.Page(_screen(ticket.render), title="Chamado", url_path=ui.TICKET),
        st.Page(_screen(customers.render), title="Clientes", url_path=ui.CUSTOMERS),
        st.Page(_screen(wa_problems.render), title="Problemas do WhatsApp", url_path=wa_problems.URL_PATH),
    ]


def manager_pages() -> list[st.Page]:
    """The pages only managers have."""
    return [
        st.Page(_screen(reports.render), title="Relatórios", url_path=ui.REPORTS),
        st.Page(_screen(users.render), title="Usuários", url_path=ui.USERS),
        st.Page(_screen(privacy.render), title="Privacidade", url_path=privacy.URL_PATH),
        st.Page(_screen(sla.render), title="SLA", url_path="sla"),
        st.Page(_screen(articles.render), title="Artigos", url_path=articles.URL_PATH),
        st.Page(_screen(wa_prices.render), title="Preços do WhatsApp", url_path=wa_prices.URL_PATH),
        st.Page(_screen(notices.failed_page), title="Notificações", url_path=notices.PAGE, visibility="hidden"),
    ]


def _home() -> None:
    """The root URL opens the queue (so the queue has its own path, /fila)."""
    ui.go(ui.QUEUE)


def _refused() -> None:
    ui.alert("error", REFUSED)


def _home_page(render: object = _home) -> st.Page:
    return st.Page(render, title="Atende", url_path="inicio", default=True, visibility="hidden")  # type: ignore[arg-type]


def pages_for(user: User) -> list[st.Page]:
    """``user``'s page set: a technician's keeps the manager paths as hidden pages that refuse
    (Artigos refuses itself, but opens an approved article's link, ``/artigos?id=N``)."""
    pages = [_home_page(), *technician_pages()]
    for page in manager_pages():
        if user.is_manager:
            pages.append(page)
        elif page.url_path == articles.URL_PATH:
            pages.append(st.Page(_screen(articles.render), title=page.title, url_path=page.url_path,
                                 visibility="hidden"))
        else:
            pages.append(st.Page(_refused, title=page.title, url_path=page.url_path, visibility="hidden"))
    return pages


def logged_out_pages() -> list[st.Page]:
    """Before login every console path shows the login form, so a deep link (``/chamado?id=42``)
    opens its page once the user has logged in."""
    paths = [p.url_path for p in technician_pages() + manager_pages()]
    return [_home_page(auth.login_form)] + [
        st.Page(auth.login_form, title="Atende · Console", url_path=path, visibility="hidden") for path in paths]


def main() -> None:
    st.set_page_config(page_title="Atende · Console", page_icon="🎧", layout="wide")
    user = auth.current_user()
    if user is None:
        st.navigation(logged_out_pages(), position="hidden").run()
        return
    page = st.navigation(pages_for(user))
    with st.sidebar:
        st.markdown("**Atende · Console**")
        st.caption(f"{ui.md(user.name)} · {'gestor' if user.is_manager else 'técnico'}")
        st.button("Sair", key="logout", on_click=auth.sign_out)
        notices.preferences_panel(user)
        notices.failed_alert(user)
        notices.poller(user)  # new tickets, hand-offs and SLA alerts: toast + desktop notification
    ui.show_flash()
    page.run()
    notices.run_completed()  # this run's notifications reached the browser


main()
