"""Problemas do WhatsApp (technicians and managers): what the WhatsApp connector received and set
aside (``whatsapp_inbox`` rows in state "ignored"), newest first, in a period, by bounded pages
(helpdesk.services.wa_problems reads and masks; this page only shows).

Every cell came from outside (Meta, Z-API, the customer): the rows go into a table (Streamlit's data
grid shows text as text, never Markdown or HTML) and through ``safe_cell`` for the grid's CSV
download; no Markdown element on this page carries a value of a row."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from console import ui
from console.auth import User
from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.models import utcnow
from helpdesk.services import metrics, wa_problems
from helpdesk.services.customer_import import safe_cell

URL_PATH = "problemas-whatsapp"


def render(user: User) -> None:
    st.header("Problemas do WhatsApp")
    st.caption("Mensagens, chamadas e status que o WhatsApp entregou e o atendimento deixou de lado, com o motivo: "
               "um evento do sistema para um usuário desconhecido, uma troca de número sem número novo, um "
               "remetente que não é telefone nem LID, um tipo de mensagem não tratado. Nada disso chegou ao "
               "assistente. O remetente aparece mascarado; horários em UTC.")
    today = utcnow().date()
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1])
    first = c1.date_input("De", value=today - timedelta(days=6), format="DD/MM/YYYY", key="wp_from")
    last = c2.date_input("Até", value=today, format="DD/MM/YYYY", key="wp_to")
    size = c3.selectbox("Itens por página", list(wa_problems.PAGE_SIZES), key="wp_size")
    page = c4.number_input("Página", min_value=1, max_value=wa_problems.MAX_PAGE, value=1, step=1, key="wp_page")
    try:
        period = metrics.Period.from_dates(first, last)
        with session_scope() as s:
            result = wa_problems.problems(s, period, page=int(page), page_size=int(size))
    except DomainError as err:
        ui.alert("error", err.message_pt)
        return
    st.metric("Problemas no período", result.total)
    if not result.total:
        st.info("Nenhum problema do WhatsApp no período.")
        return
    if not result.rows:
        ui.alert("warning", f"Página {result.page} vazia: o período tem {result.pages} página(s).")
        return
    st.caption(f"Página {result.page} de {result.pages}, do mais recente para o mais antigo.")
    st.dataframe(pd.DataFrame([{
        "Quando": ui.fmt_dt(p.received_at), "Tipo": p.kind, "Motivo": p.reason, "Remetente": safe_cell(p.sender),
        "Texto": safe_cell(p.text), "Detalhe (do conector)": safe_cell(p.detail)} for p in result.rows]),
        hide_index=True, width="stretch", key="wp_table")
