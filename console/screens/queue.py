"""Fila: open tickets, filtered, oldest first, with counts; refreshes itself; "Assumir"."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from console import auth, ui
from console.auth import User
from console.settings import get_console_settings
from helpdesk.db import session_scope
from helpdesk.models import CHANNELS, TICKET_TYPES
from helpdesk.services import catalog, customers, metrics, sla, technicians, tickets

ALL = "__all__"
STATUS_CHOICES = {"abertos": "abertos (novo e em atendimento)", "novo": "novo",
                  "em_atendimento": "em atendimento", "concluido": "concluído", ALL: "todos"}


def _options() -> dict[str, Any]:
    with session_scope() as s:
        return {
            "modules": {m.code: m.name for m in catalog.modules(s)},
            "technicians": {t.id: t.name for t in technicians.list_all(s)},
            "customers": {c.id: c.legal_name for c in customers.search(s, "", limit=1000)},
        }


def _filters(opts: dict[str, Any], user: User) -> dict[str, Any]:
    c1, c2, c3, c4, c5, c6 = st.columns(6)
    status = c1.selectbox("Status", list(STATUS_CHOICES), format_func=STATUS_CHOICES.get, key="q_status")
    ttype = c2.selectbox("Tipo", [ALL, *TICKET_TYPES], key="q_type",
                         format_func=lambda v: "todos" if v == ALL else ui.type_label(v))
    module = c3.selectbox("Módulo", [ALL, *opts["modules"]], key="q_module",
                          format_func=lambda v: "todos" if v == ALL else opts["modules"][v])
    tech_opts: list[Any] = [ALL, "mine", *opts["technicians"]]
    tech = c4.selectbox("Técnico", tech_opts, key="q_tech",
                        format_func=lambda v: {ALL: "todos", "mine": "meus chamados"}.get(v) or opts["technicians"][v])
    cust = c5.selectbox("Cliente", [ALL, *opts["customers"]], key="q_customer",
                        format_func=lambda v: "todos" if v == ALL else opts["customers"][v])
    channel = c6.selectbox("Canal", [ALL, *CHANNELS], key="q_channel",
                           format_func=lambda v: "todos" if v == ALL else ui.channel_label(v))
    return {
        "status": ["novo", "em_atendimento"] if status == "abertos" else (None if status == ALL else status),
        "type": None if ttype == ALL else ttype,
        "module": None if module == ALL else module,
        "technician_id": user.id if tech == "mine" else (None if tech == ALL else int(tech)),
        "customer_id": None if cust == ALL else int(cust),
        "channel": None if channel == ALL else channel,
    }


def _rows(f: dict[str, Any]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    with session_scope() as s:
        counts = metrics.queue_counts(s, type=f["type"], module=f["module"], technician_id=f["technician_id"],
                                      customer_id=f["customer_id"], channel=f["channel"])
        listed = tickets.list_tickets(s, **f)
        clocks = sla.status_for(s, [t.id for t in listed])  # SLA time left, a few queries for the page
        rows = [{
            "Nº": t.number, "id": t.id, "Aberto em": ui.fmt_dt(t.opened_at), "Status": ui.status_label(t.status),
            "Prioridade": t.priority, "SLA": sla.queue_label(clocks.get(t.id)) or "—",
            "Tipo": ui.type_label(t.type), "Módulo": t.module or "—",
            "Cliente": t.customer.legal_name if t.customer else (t.contact_name or "—"),
            "Canal": ui.channel_label(t.channel), "Técnico": t.technician.name if t.technician else "—",
            "Assunto": t.subject, "_free": t.technician_id is None and t.status != "concluido",
        } for t in listed]
    return counts, rows


def _assume(user: User) -> None:
    """Callback of "Assumir"."""
    ticket_id = int(ui.value("q_ticket"))

    def run() -> str:
        with session_scope() as s:
            return f"Você assumiu o chamado {tickets.assume(s, ticket_id, user.id).number}."
    ui.action(run)


def render(user: User) -> None:
    st.header("Fila de chamados")
    opts = _options()
    f = _filters(opts, user)
    refresh = get_console_settings().queue_refresh_seconds

    @st.fragment(run_every=timedelta(seconds=refresh))
    def queue() -> None:
        # The account may have been deactivated (or the session ended) since the last full run;
        # the refresh itself is not activity, so it does not keep the session alive.
        if auth.current_user(renew=False) is None:
            st.rerun(scope="app")
        counts, rows = _rows(f)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Novos", counts["novo"])
        m2.metric("Em atendimento", counts["em_atendimento"])
        m3.metric("Concluídos", counts["concluido"])
        m4.metric("Nesta lista", len(rows))
        if not rows:
            st.info("Nenhum chamado com esses filtros.")
            return
        st.dataframe(pd.DataFrame(rows).drop(columns=["id", "_free"]), hide_index=True, width="stretch")
        st.caption(f"Atualiza sozinha a cada {refresh} s. Mais antigos primeiro.")

    queue()
    _counts, rows = _rows(f)
    if not rows:
        return
    by_label = {r["id"]: f"{r['Nº']} · {r['Cliente']} · {r['Assunto'][:60]}" for r in rows}
    c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="bottom")
    c1.selectbox("Chamado", list(by_label), format_func=by_label.get, key="q_ticket")
    opened = c2.button("Abrir", key="q_open", width="stretch")
    c3.button("Assumir", key="q_assume", type="primary", width="stretch", on_click=_assume, args=(user,))
    if opened:
        ticket_id = int(ui.value("q_ticket"))
        st.session_state["ticket_id"] = ticket_id
        ui.go(ui.TICKET, id=str(ticket_id))
