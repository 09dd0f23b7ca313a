"""Preços do WhatsApp (managers): the price of one WhatsApp message per Meta pricing category, in
BRL, from a date on (helpdesk.services.wa_cost validates; a bad value shows its pt-BR message and
saves nothing). The reports' "Custo do WhatsApp" section prices each message with these."""
from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from atende_contract import wa_pricing
from console import ui
from console.auth import User
from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.models import utcnow
from helpdesk.services import wa_cost

URL_PATH = "precos-whatsapp"


def _save(user: User, category: str, price: str, valid_from: date) -> str:
    with session_scope() as s:
        row = wa_cost.set_price(s, category=category, price=price, valid_from=valid_from, technician_id=user.id)
    return (f"Preço de {wa_cost.category_label(row.category)} salvo: {wa_cost.brl(row.price_brl, 4)} por mensagem "
            f"a partir de {row.valid_from:%d/%m/%Y}.")


def _remove(user: User, price_id: int) -> str:
    with session_scope() as s:
        wa_cost.delete_price(s, price_id, technician_id=user.id)
    return "Preço removido."


def render(user: User) -> None:
    st.header("Preços do WhatsApp")
    st.caption("Quanto a Meta cobra por mensagem, em reais, em cada categoria. Cada mensagem é calculada com o "
               "preço da sua categoria em vigor no momento do envio; um preço novo vale a partir da data "
               "informada e não muda os períodos anteriores. Mensagens gratuitas (janela de atendimento, "
               "ponto de entrada gratuito) não têm custo. O valor é uma estimativa: a fatura da Meta é a "
               "referência.")
    with session_scope() as s:
        rows = wa_cost.prices(s)
    with st.form("wa_price_form"):
        c1, c2, c3 = st.columns([2, 1, 1])
        category = c1.selectbox("Categoria", list(wa_pricing.CATEGORIES), key="wa_price_category",
                                format_func=wa_cost.category_label)
        price = c2.text_input("Preço por mensagem (R$)", placeholder="0,3125", key="wa_price_value")
        valid_from = c3.date_input("Vale a partir de", value=utcnow().date(), format="DD/MM/YYYY",
                                   key="wa_price_from")
        submitted = st.form_submit_button("Salvar preço", type="primary", key="wa_price_save")
    if submitted:
        try:
            message = _save(user, category, price, valid_from)
        except DomainError as err:
            ui.alert("error", err.message_pt)
        else:
            ui.flash("success", message)
            st.rerun()
    if not rows:
        st.info("Nenhum preço cadastrado: os relatórios contam as mensagens, mas sem custo estimado.")
        return
    today = utcnow().date()
    in_force: dict[str, int] = {}  # category -> id of the price in force today
    for r in rows:  # newest first per category: the first one already valid is the one in force
        if r.valid_from <= today and r.category not in in_force:
            in_force[r.category] = r.id
    st.subheader("Preços cadastrados")
    st.dataframe(pd.DataFrame([{
        "Categoria": wa_cost.category_label(r.category), "Preço por mensagem": wa_cost.brl(r.price_brl, 4),
        "Vale a partir de": r.valid_from.strftime("%d/%m/%Y"),
        "Situação": "em vigor" if in_force.get(r.category) == r.id else (
            "futuro" if r.valid_from > today else "anterior"),
        "Cadastrado por": r.created_by, "Em": ui.fmt_dt(r.created_at)} for r in rows]),
        hide_index=True, width="stretch", key="wa_price_table")
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    labels = {r.id: f"{wa_cost.category_label(r.category)} · {wa_cost.brl(r.price_brl, 4)} · "
                    f"desde {r.valid_from:%d/%m/%Y}" for r in rows}
    chosen = c1.selectbox("Remover um preço cadastrado por engano", list(labels), format_func=labels.get,
                          key="wa_price_remove_choice")
    if c2.button("Remover", key="wa_price_remove", width="stretch"):
        try:
            message = _remove(user, int(chosen))
        except DomainError as err:
            ui.alert("error", err.message_pt)
        else:
            ui.flash("success", message)
            st.rerun()
