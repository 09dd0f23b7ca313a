"""Clientes: registry with search; create and edit; licenses, machines, contacts; CSV import.

Machines show their AnyDesk code masked until "Mostrar código" (recorded by
``helpdesk.services.machine_access``; the Chamado screen uses the same ``anydesk_panel``); managers
see who revealed a customer's codes and export that log."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import select

from console import ui
from console.auth import User
from helpdesk.cnpj import format_cnpj
from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.models import TAX_REGIME_LABELS, TAX_REGIMES, Technician
from helpdesk.services import catalog, customer_import, customers, identities, machine_access

REVEALED_KEY = "ad_revealed"  # (machine id, ticket id or None) revealed in this console session


def _save(customer_id: int, user: User) -> str:
    k = f"_{customer_id}"
    fields = {name: ui.value(key + k, "") for name, key in (
        ("responsible_name", "e_resp"), ("legal_name", "e_legal"), ("trade_name", "e_trade"), ("cnpj", "e_cnpj"),
        ("tax_regime", "e_regime"), ("city", "e_city"), ("state", "e_state"), ("notes", "e_notes"))}
    fields["state"] = str(fields["state"]).strip().upper()
    with session_scope() as s:
        customers.update(s, customer_id, by=user.id, **fields)
    return "Cliente atualizado."


def _add_contact(customer_id: int, user: User) -> str:
    with session_scope() as s:
        customers.add_contact(s, customer_id, ui.value("k_kind", "phone"), ui.value("k_value", ""),
                              ui.value("k_name", ""), by=user.id)
    return "Contato adicionado."


def _add_machine(customer_id: int, user: User) -> str:
    with session_scope() as s:
        customers.add_machine(s, customer_id, ui.value("m_name", ""), ui.value("m_code", ""), ui.value("m_notes", ""),
                              by=user.id)
    return "Máquina adicionada."


def _set_license(customer_id: int) -> str:
    with session_scope() as s:
        customers.set_license(s, customer_id, customers.LicenseSpec(
            module=ui.value("l_module"), seats=int(ui.value("l_seats", 1)),
            version=str(ui.value("l_version", "")).strip(), status=ui.value("l_status", "ativa")))
    return "Licença salva."


def _create_customer() -> str:
    legal = str(ui.value("n_legal", "")).strip()
    with session_scope() as s:
        customers.create(
            s, responsible_name=ui.value("n_resp", ""), legal_name=legal, trade_name=ui.value("n_trade", ""),
            cnpj=ui.value("n_cnpj", ""), tax_regime=ui.value("n_regime", ""),
            phones=[p for p in str(ui.value("n_phones", "")).split(";") if p.strip()],
            emails=[e for e in str(ui.value("n_emails", "")).split(";") if e.strip()],
            licenses=[customers.LicenseSpec(module=m) for m in ui.value("n_modules", [])],
            city=str(ui.value("n_city", "")).strip(), state=str(ui.value("n_state", "")).strip().upper())
    for key in ("n_resp", "n_legal", "n_trade", "n_cnpj", "n_phones", "n_emails", "n_city", "n_state"):
        st.session_state[key] = ""
    st.session_state["n_modules"] = []
    return f"Cliente {legal} cadastrado."


def _reveal(machine_id: int, ticket_id: int | None, user: User) -> str:
    """Callback of "Mostrar código": recorded server-side first, shown after."""
    with session_scope() as s:
        machine_access.reveal(s, technician_id=user.id, machine_id=machine_id, ticket_id=ticket_id)
    st.session_state.setdefault(REVEALED_KEY, set()).add((machine_id, ticket_id))
    return "Código AnyDesk exibido. O acesso foi registrado."


def anydesk_panel(machines: list[dict[str, Any]], user: User, *, ticket_id: int | None, prefix: str) -> None:
    """The machines with their AnyDesk codes masked; "Mostrar código" reveals one (and records it).

    A revealed code (per machine and ticket, for this console session) is shown in a code block,
    which has a copy button, next to "Abrir no AnyDesk"; the raw code never reaches the page before.
    ``machines``: dicts with id, name, notes and anydesk (read server-side, never rendered masked-off)."""
    revealed = st.session_state.get(REVEALED_KEY, set())
    for m in machines:
        a, b = st.columns([3, 2])
        a.text(f"{m['name']} — {m['notes']}" if m["notes"] else m["name"])
        if not m["anydesk"]:
            a.caption("Sem código AnyDesk.")
        elif (m["id"], ticket_id) in revealed:
            a.code(m["anydesk"], language=None)  # the code block has a copy button
            b.link_button("Abrir no AnyDesk", f"anydesk:{m['anydesk']}")
        else:
            a.text(f"AnyDesk: {machine_access.mask(m['anydesk'])}")
            b.button("Mostrar código", key=f"{prefix}_ad_show_{m['id']}", on_click=ui.action,
                     args=(lambda mid=m["id"]: _reveal(mid, ticket_id, user),))


FIELD_LABELS = {"responsible_name": "responsável", "legal_name": "razão social", "trade_name": "nome fantasia",
                "cnpj": "CNPJ", "tax_regime": "regime tributário", "city": "cidade", "state": "UF",
                "notes": "observações", "contact.username": "nome de usuário do WhatsApp"}
ACTION_LABELS = {"created": "cadastrado", "changed": "alterado", "added": "adicionado", "removed": "removido"}


def _correction_log(customer_id: int) -> None:
    """Managers: who changed this customer's data and when (the values are never logged)."""
    with session_scope() as s:
        rows = customers.corrections(s, customer_id)
        names = {t.id: t.name for t in s.scalars(select(Technician))}
        shown = [{"Quando": ui.fmt_dt(r.at), "Quem": names.get(r.technician_id, r.actor) if r.technician_id else r.actor,
                  "Campo": FIELD_LABELS.get(r.field, r.field), "O quê": ACTION_LABELS.get(r.action, r.action)}
                 for r in rows]
    with st.expander("Histórico de alterações dos dados"):
        if shown:
            st.dataframe(pd.DataFrame(shown), hide_index=True, width="stretch")
        else:
            st.caption("Nenhuma alteração registrada.")


def _access_log(customer_id: int, user: User) -> None:
    """Managers: who revealed this customer's AnyDesk codes, with a CSV export."""
    with session_scope() as s:
        entries = machine_access.history(s, customer_id, viewer_id=user.id)
    st.markdown("**Quem viu os códigos AnyDesk**")
    if not entries:
        st.caption("Nenhum código AnyDesk deste cliente foi exibido até agora.")
        return
    st.dataframe(pd.DataFrame([{"Quando": ui.fmt_dt(e.at), "Técnico": e.technician, "Máquina": e.machine,
                                "Chamado": e.ticket or "—"} for e in entries]), hide_index=True, width="stretch")
    st.download_button("Exportar acessos (CSV)", machine_access.history_csv(entries).encode("utf-8"),
                       file_name=f"acessos_anydesk_cliente_{customer_id}.csv", mime="text/csv",
                       key=f"ad_log_csv_{customer_id}")


CONTACT_KINDS = {"phone": "telefone", "email": "e-mail"}
# How each WhatsApp identity comes to be the customer's (docs/whatsapp.md, "Identity rules").
IDENTITY_PROOF = {
    "phone": "cadastrado; confirmado a cada mensagem assinada do WhatsApp",
    "bsuid": "visto junto com o telefone numa mensagem assinada pela Meta",
    "lid": "visto junto com o telefone numa mensagem da Z-API",
}


def whatsapp_identities(found: list[identities.WhatsAppIdentity], username: str | None = None) -> None:
    """The customer's WhatsApp identities: phone, BSUID (the id behind a username) and LID; and the
    username Meta's signed delivery last carried (display-only, shown as plain text)."""
    st.markdown("**Identidades no WhatsApp**")
    if username:
        st.text(f"Nome de usuário do WhatsApp: @{username}")
        st.caption("Só para exibição: vem assinado pela Meta e nunca identifica o cliente.")
    if not found:
        st.caption("Nenhuma identidade do WhatsApp vinculada.")
        return
    st.dataframe(pd.DataFrame([{"Identidade": i.label, "Valor": i.value, "Como foi vinculada": IDENTITY_PROOF[i.kind]}
                               for i in found]), hide_index=True, width="stretch")
    if not any(i.kind == "bsuid" for i in found):
        st.caption("Sem ID de usuário (BSUID): se o cliente adotar um nome de usuário sem mostrar o telefone, "
                   "ele só será reconhecido depois de escrever uma vez com o telefone visível.")


def _on(fn: Any, *args: Any) -> dict[str, Any]:
    return {"on_click": ui.action, "args": (lambda: fn(*args),)}


def _search(user: User) -> None:
    text = st.text_input("Buscar por razão social, nome fantasia, responsável ou CNPJ", key="c_search")
    with session_scope() as s:
        found = [{"id": c.id, "Razão social": c.legal_name, "Nome fantasia": c.trade_name,
                  "Responsável": c.responsible_name, "CNPJ": format_cnpj(c.cnpj),
                  "Regime": ui.regime_label(c.tax_regime), "Cidade": f"{c.city}/{c.state}" if c.city else ""}
                 for c in customers.search(s, text, limit=200)]
    st.caption(f"{len(found)} cliente(s)")
    if not found:
        return
    st.dataframe(pd.DataFrame(found).drop(columns=["id"]), hide_index=True, width="stretch")
    names = {r["id"]: f"{r['Razão social']} · {r['CNPJ']}" for r in found}
    chosen = st.selectbox("Cliente", list(names), format_func=names.get, key="c_pick")
    _detail(int(chosen), user)


def _detail(customer_id: int, user: User) -> None:
    with session_scope() as s:
        c = customers.get(s, customer_id)
        data = {"responsible_name": c.responsible_name, "legal_name": c.legal_name, "trade_name": c.trade_name,
                "cnpj": format_cnpj(c.cnpj), "tax_regime": c.tax_regime, "city": c.city, "state": c.state,
                "notes": c.notes}
        contacts = [{"Tipo": CONTACT_KINDS.get(k.kind, k.kind), "Contato": k.value, "Nome": k.name}
                    for k in c.contacts if k.kind in ("phone", "email")]
        whatsapp = identities.whatsapp_identities(s, customer_id)
        username = customers.whatsapp_username(s, customer_id)
        machines = [{"id": m.id, "name": m.name, "anydesk": m.anydesk_code, "notes": m.notes} for m in c.machines]
        licenses = [{"Módulo": lic.module.name, "Licenças": lic.seats, "Versão": lic.version, "Situação": lic.status}
                    for lic in c.licenses]
        modules = {m.code: f"{m.product.name} · {m.name}" for m in catalog.modules(s)}
    st.subheader(ui.md(data["legal_name"]))
    k = f"_{customer_id}"
    with st.form(f"edit{k}"):
        a, b = st.columns(2)
        a.text_input("Responsável", data["responsible_name"], key="e_resp" + k)
        b.text_input("Razão social", data["legal_name"], key="e_legal" + k)
        a.text_input("Nome fantasia", data["trade_name"], key="e_trade" + k)
        b.text_input("CNPJ", data["cnpj"], key="e_cnpj" + k)
        a.selectbox("Regime tributário", list(TAX_REGIMES), index=list(TAX_REGIMES).index(data["tax_regime"]),
                    format_func=TAX_REGIME_LABELS.get, key="e_regime" + k)
        b.text_input("Cidade", data["city"], key="e_city" + k)
        a.text_input("UF", data["state"], max_chars=2, key="e_state" + k)
        b.text_area("Observações", data["notes"], key="e_notes" + k)
        st.form_submit_button("Salvar cliente", key="e_save", **_on(_save, customer_id, user))
    if user.is_manager:
        _correction_log(customer_id)
    t1, t2, t3 = st.tabs(["Contatos", "Máquinas", "Licenças"])
    with t1:
        if contacts:
            st.dataframe(pd.DataFrame(contacts), hide_index=True, width="stretch")
        whatsapp_identities(whatsapp, username)
        with st.form(f"contact_{customer_id}", clear_on_submit=True):
            st.selectbox("Tipo", ["phone", "email"], format_func={"phone": "telefone", "email": "e-mail"}.get,
                                key="k_kind")
            st.text_input("Telefone ou e-mail", key="k_value")
            st.text_input("Nome do contato", key="k_name")
            st.form_submit_button("Adicionar contato", key="k_save", **_on(_add_contact, customer_id, user))
    with t2:
        anydesk_panel(machines, user, ticket_id=None, prefix="c")
        with st.form(f"machine_{customer_id}", clear_on_submit=True):
            st.text_input("Nome da máquina", key="m_name")
            st.text_input("Código AnyDesk", key="m_code")
            st.text_input("Observações", key="m_notes")
            st.form_submit_button("Adicionar máquina", key="m_save", **_on(_add_machine, customer_id, user))
        if user.is_manager:
            _access_log(customer_id, user)
    with t3:
        if licenses:
            st.dataframe(pd.DataFrame(licenses), hide_index=True, width="stretch")
        with st.form(f"license_{customer_id}"):
            st.selectbox("Módulo", list(modules), format_func=modules.get, key="l_module")
            st.number_input("Licenças", min_value=1, max_value=10_000, value=1, step=1, key="l_seats")
            st.text_input("Versão", key="l_version")
            st.selectbox("Situação", ["ativa", "suspensa", "cancelada"], key="l_status")
            st.form_submit_button("Salvar licença", key="l_save", **_on(_set_license, customer_id))


def _create() -> None:
    with session_scope() as s:
        modules = {m.code: f"{m.product.name} · {m.name}" for m in catalog.modules(s)}
    with st.form("new_customer"):
        a, b = st.columns(2)
        a.text_input("Responsável", key="n_resp")
        b.text_input("Razão social", key="n_legal")
        a.text_input("Nome fantasia", key="n_trade")
        b.text_input("CNPJ", key="n_cnpj", placeholder="00.000.000/0000-00")
        a.selectbox("Regime tributário", list(TAX_REGIMES), format_func=TAX_REGIME_LABELS.get, key="n_regime")
        b.text_input("Telefones (separados por ;)", key="n_phones")
        a.text_input("E-mails (separados por ;)", key="n_emails")
        b.multiselect("Módulos contratados", list(modules), format_func=modules.get, key="n_modules")
        a.text_input("Cidade", key="n_city")
        b.text_input("UF", max_chars=2, key="n_state")
        st.form_submit_button("Cadastrar cliente", key="n_save", type="primary", **_on(_create_customer))


def _import() -> None:
    st.markdown("Colunas: " + ", ".join(f"`{c}`" for c in customer_import.COLUMNS)
                + ". Separador `,` ou `;`; vários telefones, e-mails ou módulos separados por `|`; "
                  "máquinas como `NOME:CÓDIGO|NOME:CÓDIGO`.")
    upload = st.file_uploader("Arquivo CSV", type=["csv"], key="i_file")
    pasted = st.text_area("…ou cole o conteúdo do CSV", key="i_text", height=150)
    if st.button("Importar clientes", key="i_run", type="primary"):
        raw = upload.getvalue() if upload is not None else pasted.encode("utf-8")
        try:
            with session_scope() as s:
                report = customer_import.import_csv(s, raw)
        except DomainError as err:
            ui.alert("error", err.message_pt)
            return
        st.session_state["import_report"] = report
    report = st.session_state.get("import_report")
    if report is None:
        return
    ui.alert("success", f"{len(report.created)} cliente(s) importado(s); {len(report.rejected)} linha(s) rejeitada(s).")
    if report.rejected:
        ui.alert("warning", "Linhas rejeitadas (nada delas foi gravado):")
        st.dataframe(pd.DataFrame([{"Linha": r.line, "Razão social": r.legal_name, "Motivo": r.reason}
                                   for r in report.rejected]), hide_index=True, width="stretch")
        st.download_button("Baixar linhas rejeitadas (CSV)", report.rejected_csv().encode("utf-8"),
                           file_name="clientes_rejeitados.csv", mime="text/csv", key="i_rejected")


def render(user: User) -> None:
    st.header("Clientes")
    t1, t2, t3 = st.tabs(["Buscar e editar", "Novo cliente", "Importar CSV"])
    with t1:
        _search(user)
    with t2:
        _create()
    with t3:
        _import()
