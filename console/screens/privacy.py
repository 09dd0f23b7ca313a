"""Privacidade (managers): the LGPD export and erasure of one person (issue #17 parts 2 and 3),
the console's side of ``python -m helpdesk privacy export|erase`` (helpdesk/privacy.py).

The manager names the person (a customer from the registry, a phone, an e-mail or a conversation
id) and sees how many rows each store holds (``privacy.plan``, which writes nothing). Then:

- "Exportar dados (LGPD)" downloads the JSON document of ``privacy.export``. It is made when the
  button is clicked, and that click writes the audit row (``privacy_requests``) with the manager
  as actor.
- "Apagar dados" runs ``privacy.erase`` once the manager has typed the confirmation: the
  customer's CNPJ when the person is a registered customer, otherwise APAGAR. It writes the audit
  row and shows the rows touched per store.

Technicians never see this page (console/app.py). Each action also checks again, in the
database, that the acting user is an active manager whose session is still valid, so a
technician's session that reaches an action (or a manager demoted since the page was drawn) is
refused and changes nothing.
"""
from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from console import ui
from console.auth import User
from helpdesk import privacy
from helpdesk.cnpj import format_cnpj
from helpdesk.db import session_scope
from helpdesk.errors import DomainError, InvalidInput, PermissionDenied
from helpdesk.services import customers, technicians

URL_PATH = "privacidade"
CONFIRM_WORD = "APAGAR"
KINDS = {"customer": "Cliente cadastrado", "phone": "Telefone", "email": "E-mail", "conversation": "Conversa (id)"}
RESULT_KEY = "pv_result"  # the counts of the last erasure, shown after the rerun
MAX_VALUE = 200


def _manager(user_id: int, generation: int) -> str:
    """The audit actor, after checking in the database that this session is an active manager's."""
    with session_scope() as s:
        tech = technicians.session_user(s, user_id, generation)
        technicians.require_role(tech, "manager")
        return f"console:{tech.email}"[:200]


def _checked(selector: str, value: Any) -> str:
    if selector not in KINDS:
        raise InvalidInput(f"selector {selector!r}", "Escolha como identificar o titular.")
    text = str(value if value is not None else "").strip()
    if not text or len(text) > MAX_VALUE:
        raise InvalidInput("empty or long value", "Informe o identificador do titular (até 200 caracteres).")
    return text


def export_json(user_id: int, generation: int, selector: str, value: Any) -> bytes:
    """The export document (UTF-8 JSON) for a manager; writes the audit row."""
    actor = _manager(user_id, generation)
    text = _checked(selector, value)
    with session_scope() as s:
        doc = privacy.export(s, selector, text, actor=actor)
    return privacy.to_json(doc).encode("utf-8")


def expected_confirmation(scope_customer_cnpj: str | None) -> str:
    return format_cnpj(scope_customer_cnpj) if scope_customer_cnpj else CONFIRM_WORD


def _confirmed(typed: Any, customer_cnpj: str | None) -> bool:
    text = str(typed or "").strip()
    if customer_cnpj:
        return re.sub(r"\D", "", text) == customer_cnpj
    return text == CONFIRM_WORD


def erase(user_id: int, generation: int, selector: str, value: Any, typed: Any) -> dict[str, int | None]:
    """Erase the person for a manager who typed the confirmation; returns the rows per store."""
    actor = _manager(user_id, generation)
    text = _checked(selector, value)
    with session_scope() as s:
        scope = privacy.resolve(s, selector, text)
        cnpj = scope.customer.cnpj if scope.customer is not None else None
        if not _confirmed(typed, cnpj):
            raise InvalidInput("confirmation mismatch", "Confirmação incorreta: digite "
                               f"{expected_confirmation(cnpj)} para apagar. Nada foi apagado.")
        return privacy.erase(s, selector, text, actor=actor)


def _erase_action(user: User, selector: str, value: str) -> str:
    counts = erase(user.id, user.generation, selector, value, ui.value("pv_confirm", ""))
    st.session_state[RESULT_KEY] = counts
    st.session_state["pv_confirm"] = ""
    return "Dados do titular apagados. O registro da solicitação foi gravado."


def _counts_table(counts: dict[str, int | None]) -> pd.DataFrame:
    return pd.DataFrame([{"Área": privacy.STORE_LABELS_PT.get(k, k),
                          "Linhas": "tabela inexistente" if v is None else str(v)} for k, v in counts.items()])


def _choose() -> tuple[str, str | None]:
    selector = st.selectbox("Identificar o titular por", list(KINDS), format_func=KINDS.get, key="pv_kind")
    if selector != "customer":
        value = st.text_input("Telefone, e-mail ou id da conversa", key="pv_value", max_chars=MAX_VALUE)
        return selector, value.strip() or None
    search = st.text_input("Buscar cliente por razão social, responsável ou CNPJ", key="pv_search")
    with session_scope() as s:
        found = {c.id: f"{c.legal_name} · {format_cnpj(c.cnpj)}" for c in customers.search(s, search, limit=50)}
    if not found:
        st.caption("Nenhum cliente encontrado.")
        return selector, None
    chosen = st.selectbox("Cliente", list(found), format_func=found.get, key="pv_customer")
    return selector, str(chosen)


def render(user: User) -> None:
    if not user.is_manager:  # app.py checks too; defence in depth
        ui.alert("error", PermissionDenied.message_pt)
        return
    st.header("Privacidade (LGPD)")
    st.caption("Acesso, portabilidade e eliminação dos dados de um titular (art. 18 da LGPD). Cada exportação "
               "e cada eliminação ficam registradas com o seu usuário, sem dados pessoais do titular.")
    done = st.session_state.pop(RESULT_KEY, None)
    if done is not None:
        st.markdown("**Resultado da eliminação** (linhas por área)")
        st.dataframe(_counts_table(done), hide_index=True, width="stretch")
    selector, value = _choose()
    if not value:
        return
    try:
        with session_scope() as s:
            held = privacy.plan(s, selector, value)
            scope = privacy.resolve(s, selector, value)
            cnpj = scope.customer.cnpj if scope.customer is not None else None
            name = scope.customer.legal_name if scope.customer is not None else None
    except DomainError as err:
        ui.alert("warning", err.message_pt)
        return
    if name:
        st.subheader(ui.md(f"{name} · {format_cnpj(cnpj or '')}"))
    st.markdown("**Dados encontrados** (linhas por área)")
    st.dataframe(_counts_table(held), hide_index=True, width="stretch")

    st.download_button("Exportar dados (LGPD)", data=lambda: export_json(user.id, user.generation, selector, value),
                       file_name=f"lgpd_{selector}_{re.sub(r'[^A-Za-z0-9]+', '_', value)[:40]}.json",
                       mime="application/json", key="pv_export", on_click="ignore")

    st.markdown("**Apagar dados**")
    st.caption("Apaga ou anonimiza, de forma irreversível, os dados do titular em todas as áreas acima; chamados "
               "e avaliações ficam anonimizados para os relatórios. Não é possível desfazer.")
    with st.form("pv_erase_form"):
        st.text_input(f"Para confirmar, digite {expected_confirmation(cnpj)}", key="pv_confirm")
        st.form_submit_button("Apagar dados", key="pv_erase", type="primary", on_click=ui.action,
                              args=(lambda: _erase_action(user, selector, value),))
