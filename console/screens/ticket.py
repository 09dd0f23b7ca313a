"""Chamado: the customer's technical data, the transcript with the ticket's events, quick actions.

Customer text is always shown with st.text / st.code / st.dataframe, or escaped with ``ui.md``
where only a Markdown element fits (the subheader, alerts): never as HTML or Markdown.
A ticket that another technician holds shows "Assumir": replying, closing and escalating need it
(the rule lives in helpdesk.services.tickets; managers act on any ticket).
AnyDesk codes are masked until "Mostrar código", which records the reveal with this ticket
(``customers.anydesk_panel``, ``helpdesk.services.machine_access``).
WhatsApp: the Responder tab shows the 24-hour window for the deployment's provider (none with Z-API,
``wa_window``), and the page lists the connector's failed, refused and held messages with why.

Size: one screen, one module: the view is loaded once and each tab's action reads the same view.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

import pandas as pd
import streamlit as st

from console import ui
from console.auth import User
from console.screens.customers import anydesk_panel
from helpdesk.cnpj import format_cnpj
from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.models import PRIORITIES, TICKET_TYPES
from helpdesk.phones import format_phone
from helpdesk.services import catalog, customers, handoff, identities, technicians, tickets, transcripts, wa_window
from helpdesk.services.rasa_client import RasaClient


@dataclass
class View:
    id: int
    number: str
    subject: str
    description: str
    status: str
    type: str
    module: str | None
    priority: str
    level: int
    channel: str
    conversation_id: str | None
    technician_id: int | None
    technician: str
    opened_at: str
    resolved_at: str
    solution: str
    customer: dict[str, Any] | None
    licenses: list[dict[str, Any]] = field(default_factory=list)
    machines: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[transcripts.Entry] = field(default_factory=list)
    failures: list[transcripts.SendFailure] = field(default_factory=list)
    held: list[transcripts.HeldMessage] = field(default_factory=list)  # WhatsApp, outside the window
    # A lead's own contact (tickets without a customer) and what the assistant flagged at opening.
    contact: dict[str, str] = field(default_factory=dict)
    unverified_cnpj: str | None = None
    contact_declined: bool = False
    window: wa_window.ReplyWindow | None = None  # WhatsApp's 24-hour window (Responder tab)
    identified_by: str | None = None  # which identity the bot had at opening (tickets.identified_by)
    email: str | None = None  # the customer's e-mail, the other channel outside the window


def load(ticket_id: int) -> View:
    with session_scope() as s:
        t = tickets.get(s, ticket_id)
        cust = customers.get(s, t.customer_id) if t.customer_id else None
        view = View(
            id=t.id, number=t.number, subject=t.subject, description=t.description, status=t.status,
            type=t.type, module=t.module, priority=t.priority, level=t.level, channel=t.channel,
            conversation_id=t.conversation_id, technician_id=t.technician_id,
            technician=t.technician.name if t.technician else "—", opened_at=ui.fmt_dt(t.opened_at),
            resolved_at=ui.fmt_dt(t.resolved_at), solution=t.solution, identified_by=t.identified_by,
            customer=None if cust is None else {
                "id": cust.id, "responsible": cust.responsible_name, "legal_name": cust.legal_name,
                "trade_name": cust.trade_name, "cnpj": format_cnpj(cust.cnpj), "regime": ui.regime_label(cust.tax_regime),
                "city": f"{cust.city}/{cust.state}" if cust.city else "",
                "contacts": [(c.kind, c.value) for c in cust.contacts],
            },
            transcript=transcripts.for_ticket(s, t),
            contact={k: v for k, v in (("Nome", t.contact_name),
                                       ("Telefone", format_phone(t.contact_phone) if t.contact_phone else ""),
                                       ("E-mail", t.contact_email or "")) if v},
        )
        created = next((e.data or {} for e in t.events if e.kind == "created"), {})
        if created.get("unverified_contact"):
            view.unverified_cnpj = str(created.get("claimed_cnpj") or "informado na conversa")
        view.contact_declined = bool(created.get("contact_declined"))
        if cust is not None:
            view.licenses = [{"Módulo": lic.module.name, "Produto": lic.module.product.name, "Licenças": lic.seats,
                              "Versão": lic.version or "—", "Situação": lic.status,
                              "Validade": lic.valid_until.strftime("%d/%m/%Y") if lic.valid_until else "—"}
                             for lic in cust.licenses]
            view.machines = [{"id": m.id, "name": m.name, "anydesk": m.anydesk_code, "notes": m.notes}
                             for m in cust.machines]
        if t.channel == "whatsapp" and t.conversation_id:
            view.failures = transcripts.whatsapp_failures(s, t.conversation_id, since=t.opened_at)
            view.held = transcripts.whatsapp_held(s, t.conversation_id, since=t.opened_at)
            view.window = wa_window.reply_window(s, t.conversation_id)
        view.email = t.contact_email or next((c.value for c in (cust.contacts if cust else []) if c.kind == "email"),
                                             None)
    return view


def _customer(view: View, user: User) -> None:
    c = view.customer
    if view.unverified_cnpj:
        ui.alert("warning", f"Contato não verificado: a pessoa informou o CNPJ {view.unverified_cnpj} na conversa, "
                 "mas não escreveu do WhatsApp cadastrado nem entrou logada no site. Confirme a identidade antes "
                 "de passar dados do cliente.")
    st.caption("Identificado por: " + identities.IDENTIFIED_BY_LABELS.get(
        view.identified_by or "", "não identificado pelo assistente (visitante, console ou chamado antigo)"))
    if c is None:
        st.info("Chamado sem cliente cadastrado (contato: prospecção ou cliente não identificado).")
        if view.contact:
            st.text("Contato informado: " + " · ".join(f"{k}: {v}" for k, v in view.contact.items()))
        if view.contact_declined:
            st.caption("A pessoa preferiu não informar telefone nem e-mail.")
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.markdown("**Responsável**"); c1.text(c["responsible"])
    c2.markdown("**Razão social**"); c2.text(c["legal_name"])
    c3.markdown("**CNPJ**"); c3.text(c["cnpj"])
    c4.markdown("**Regime tributário**"); c4.text(c["regime"])
    if c["contacts"]:
        st.text("Contatos: " + " · ".join(v for k, v in c["contacts"] if k in ("phone", "email")))
    wa_ids = [(k, v) for k, v in c["contacts"] if k in ("bsuid", "lid")]  # the phone is among the contacts
    if wa_ids:
        st.text("WhatsApp: " + " · ".join(f"{identities.KIND_LABELS[k]}: {v}" for k, v in wa_ids))
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Licenças por módulo**")
        if view.licenses:
            st.dataframe(pd.DataFrame(view.licenses), hide_index=True, width="stretch")
        else:
            st.caption("Nenhuma licença cadastrada.")
    with right:
        st.markdown("**Máquinas (AnyDesk)**")
        if not view.machines:
            st.caption("Nenhuma máquina cadastrada.")
        anydesk_panel(view.machines, user, ticket_id=view.id, prefix="t")  # masked until "Mostrar código"


def _transcript(view: View) -> None:
    st.subheader("Conversa e histórico")
    if not view.conversation_id:
        st.caption("Chamado sem conversa no assistente (aberto por telefone ou pelo console).")
    if not view.transcript:
        st.caption("Nada registrado ainda.")
    for e in view.transcript:
        when = e.at.strftime("%d/%m %H:%M")
        if e.source == "conversa":
            with st.chat_message("user" if e.kind == "user" else "assistant"):
                st.caption(ui.md(f"{e.label} · {when}"))
                st.text(e.text)
        else:
            detail = e.text
            if e.kind == "status":
                detail = f"{ui.status_label(e.data.get('from'))} → {ui.status_label(e.data.get('to'))}"
            elif e.kind == "system_update":
                detail = f"versão {e.data.get('version', '')}" + (f" — {e.text}" if e.text else "")
            elif e.kind == "escalated":
                detail = f"nível {e.data.get('from_level')} → {e.data.get('to_level')}: {e.text}"
            elif e.kind == "assigned" and e.data.get("take_over"):
                detail = f"de {e.data.get('from_technician') or 'outro técnico'}"
            elif e.kind == "fields_changed":
                detail = ", ".join(f"{k}: {v[0] or '—'} → {v[1] or '—'}" for k, v in e.data.items())
            line = f"[{when}] {e.author} · {e.label}" + (f": {detail}" if detail else "")
            if e.kind in ("delivery_failed", "bot_notify_failed"):
                ui.alert("error", f"[{when}] {e.author} · {e.label}")
                st.text(e.text)
            else:
                st.text(line)


def _client() -> RasaClient:
    return RasaClient.from_settings()


def _assume(ticket_id: int, user: User) -> str:
    with session_scope() as s:
        return f"Você assumiu o chamado {tickets.assume(s, ticket_id, user.id).number}."


def _take_over(ticket_id: int, holder_id: int, user: User) -> str:
    """The explicit "Assumir" of a ticket another technician holds (the one this page showed)."""
    with session_scope() as s:
        number = tickets.take_over(s, ticket_id, user.id, from_technician_id=holder_id).number
    return f"Você assumiu o chamado {number}."


def _reply(ticket_id: int, user: User) -> str:
    with session_scope() as s:
        # Who may talk to the customer is checked before anything leaves for Rasa.
        tickets.require_holder(s, ticket_id, user.id, "responder")
        out = handoff.reply(s, ticket_id, technician_id=user.id, text=ui.value("reply_text", ""), client=_client())
    if not out.ok:
        raise DomainError("reply not delivered", out.message_pt)
    return out.message_pt


def _update(ticket_id: int, user: User) -> str:
    version = ui.value("upd_version", "")
    with session_scope() as s:
        tickets.record_system_update(s, ticket_id, technician_id=user.id, version=version,
                                     notes=ui.value("upd_notes", ""))
    return f"Atualização para a versão {version.strip()} registrada."


def _solve(ticket_id: int, user: User) -> str:
    with session_scope() as s:
        out = handoff.resolve(s, ticket_id, technician_id=user.id, solution=ui.value("sol_text", ""), client=_client(),
                              suggest_article=bool(ui.value("sol_article", False)))
    if not out.ok:
        ui.flash("warning", out.message_pt)
        return "Solução registrada."
    return out.message_pt


def _escalate(ticket_id: int, user: User) -> str:
    level = int(ui.value("esc_level", 1))
    with session_scope() as s:
        tickets.escalate(s, ticket_id, technician_id=user.id, level=level,
                         to_technician_id=int(ui.value("esc_tech", 0)) or None, reason=ui.value("esc_reason", ""))
    return f"Chamado escalado para o nível {level}."


def _fields(ticket_id: int, user: User) -> str:
    with session_scope() as s:
        tickets.change_fields(s, ticket_id, technician_id=user.id, type=ui.value("fld_type"),
                              module=ui.value("fld_module"), priority=ui.value("fld_priority"))
    return "Classificação atualizada."


def _reopen(ticket_id: int, user: User) -> str:
    why = ui.value("reo_reason", "")
    if not why.strip():
        raise DomainError("reason required", "Informe o motivo da reabertura.")
    with session_scope() as s:
        tickets.reopen(s, ticket_id, actor=user.name, reason=why, technician_id=user.id)
    return "Chamado reaberto."


def _on(fn: Callable[[int, User], str], view: View, user: User) -> dict[str, Any]:
    """on_click/args for a form button that runs ``fn(ticket_id, user)`` as an action."""
    return {"on_click": ui.action, "args": (lambda: fn(view.id, user),)}


def _window_notice(view: View) -> None:
    """WhatsApp's 24-hour window, before the technician types (helpdesk/services/wa_window.py)."""
    w = view.window
    assert w is not None
    if w.state == "no_window":  # Z-API: a WhatsApp Web session, no 24-hour window and no templates
        ui.alert("info", "WhatsApp pelo Z-API: não há janela de 24 horas nem modelos; a resposta vai como "
                         "mensagem comum.")
    elif w.state == "open":
        ui.alert("info", f"Janela do WhatsApp aberta até {w.until_pt()}: a resposta vai como mensagem comum.")
    elif w.state == "template":
        ui.alert("warning", f"Fora da janela de 24 horas: será enviado o modelo {w.template}. "
                            "A sua mensagem segue quando o cliente responder.")
    elif view.email:
        ui.alert("error", "Fora da janela de 24 horas e sem modelo configurado: use o e-mail do cliente "
                          f"{wa_window.mask_email(view.email)}.")
        st.link_button("Escrever e-mail ao cliente", f"mailto:{quote(view.email, safe='@')}")
    else:
        ui.alert("error", "Fora da janela de 24 horas e sem modelo configurado: a mensagem só segue quando o "
                          "cliente escrever, e ele não tem e-mail cadastrado. Ligue para o cliente.")
    if w.problem:
        st.caption(f"Configuração do WhatsApp com erro: {w.problem}")


def _actions(view: View, user: User) -> None:
    closed = view.status == "concluido"
    if view.technician_id is None and not closed:
        st.button("Assumir este chamado", key="t_assume", type="primary", **_on(_assume, view, user))
    elif view.technician_id not in (None, user.id) and not closed:
        holder_id = view.technician_id
        if not user.is_manager:
            ui.alert("info", f"Este chamado está com {view.technician}. Para responder, concluir ou escalar, "
                             "assuma-o (fica registrado no histórico).")
        st.button(f"Assumir este chamado (está com {ui.md(view.technician)})", key="t_take_over",
                  type="secondary" if user.is_manager else "primary", on_click=ui.action,
                  args=(lambda: _take_over(view.id, holder_id, user),))
    tabs = st.tabs(["Responder", "Atualizar sistema", "Registrar solução", "Escalar", "Classificação"]
                   + (["Reabrir"] if closed else []))
    with tabs[0]:
        if not handoff.can_reply(view.channel, view.conversation_id):
            st.caption("Este chamado não tem conversa pelo WhatsApp ou pelo site: responda por telefone.")
        elif view.window is not None and not closed:
            _window_notice(view)
        with st.form("reply", clear_on_submit=True):
            st.text_area("Mensagem ao cliente", key="reply_text", max_chars=handoff.MAX_REPLY)
            st.form_submit_button("Enviar resposta", key="reply_send", type="primary", **_on(_reply, view, user))
    with tabs[1]:
        with st.form("update", clear_on_submit=True):
            st.text_input("Versão instalada", key="upd_version")
            st.text_area("Observações", key="upd_notes")
            st.form_submit_button("Registrar atualização", key="upd_send", **_on(_update, view, user))
    with tabs[2]:
        with st.form("solve", clear_on_submit=True):
            st.text_area("Solução", key="sol_text")
            st.checkbox("Sugerir como artigo da documentação", key="sol_article",
                        help="Um gestor revisa a solução e a publica como artigo que o assistente pode citar.")
            st.form_submit_button("Concluir chamado", key="sol_send", type="primary", disabled=closed,
                                  **_on(_solve, view, user))
    with tabs[3]:
        with session_scope() as s:
            techs = {t.id: f"{t.name} (nível {t.level})" for t in technicians.list_all(s)}
        with st.form("escalate", clear_on_submit=True):
            st.selectbox("Nível", [1, 2, 3], index=min(view.level, 3) - 1, key="esc_level")
            st.selectbox("Técnico", [0, *techs], key="esc_tech",
                         format_func=lambda v: "devolver à fila (sem técnico)" if v == 0 else techs[v])
            st.text_area("Motivo", key="esc_reason")
            st.form_submit_button("Escalar", key="esc_send", disabled=closed, **_on(_escalate, view, user))
    with tabs[4]:
        with session_scope() as s:
            mods = {m.code: m.name for m in catalog.modules(s)}
        with st.form("fields"):
            st.selectbox("Tipo", list(TICKET_TYPES), index=list(TICKET_TYPES).index(view.type),
                         format_func=ui.type_label, key="fld_type")
            mod_opts = ["", *mods]
            st.selectbox("Módulo", mod_opts, index=mod_opts.index(view.module or ""), key="fld_module",
                         format_func=lambda v: mods.get(v, "sem módulo"))
            st.selectbox("Prioridade", list(PRIORITIES), index=list(PRIORITIES).index(view.priority),
                         key="fld_priority")
            st.form_submit_button("Salvar classificação", key="fld_send", **_on(_fields, view, user))
    if closed:
        with tabs[5]:
            with st.form("reopen", clear_on_submit=True):
                st.text_area("Motivo da reabertura", key="reo_reason")
                st.form_submit_button("Reabrir chamado", key="reo_send", **_on(_reopen, view, user))


def _pick_number() -> None:
    """Callback of the ticket number field."""
    digits = str(ui.value("t_number", "")).strip().lstrip("#")
    if not digits:
        return
    if not digits.isdigit():
        ui.flash("error", "Número de chamado inválido: use só dígitos, por exemplo 123.")
        return
    st.session_state["ticket_id"] = int(digits)
    st.query_params.from_dict({"id": digits})  # this page, another ticket: /chamado?id=N


def render(user: User) -> None:
    st.header("Chamado")
    raw = st.query_params.get("id") or st.session_state.get("ticket_id")
    current = str(raw or "")
    if st.session_state.get("t_number_shown") != current:
        st.session_state["t_number"] = current  # follow navigation from the queue
        st.session_state["t_number_shown"] = current
    c1, _c2 = st.columns([1, 5])
    c1.text_input("Número do chamado", key="t_number", on_change=_pick_number)
    if not current.isdigit():
        st.info("Escolha um chamado na fila ou digite o número.")
        return
    try:
        view = load(int(current))
    except DomainError as err:
        ui.alert("error", err.message_pt)
        return
    st.subheader(f"{view.number} · {ui.md(view.subject)}")
    st.text(
        f"Status: {ui.status_label(view.status)} · Tipo: {ui.type_label(view.type)} · Módulo: {view.module or '—'} · "
        f"Prioridade: {view.priority} · Nível: {view.level} · Canal: {ui.channel_label(view.channel)} · "
        f"Técnico: {view.technician} · Aberto em {view.opened_at}"
        + (f" · Concluído em {view.resolved_at}" if view.status == "concluido" else ""))
    for failure in view.failures:
        ui.alert("error", f"{failure.at.strftime('%d/%m %H:%M')} · {failure.message_pt}")
        if failure.text:
            st.text(f"Mensagem não entregue: {failure.text}")
    for held in view.held:  # never silently: the technician sees what waits, and why
        ui.alert("error" if held.delivered_nothing else "warning",
                 f"{held.at.strftime('%d/%m %H:%M')} · {held.message_pt}")
        if held.text:
            st.text(f"Mensagem retida: {held.text}")
        if held.reason:
            st.caption(ui.md(f"Motivo registrado pelo conector: {held.reason}"))
    _customer(view, user)
    st.divider()
    left, right = st.columns([3, 2])
    with left:
        _transcript(view)
    with right:
        st.subheader("Ações")
        _actions(view, user)
