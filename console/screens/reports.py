"""Relatórios (managers): period filter, then the report of helpdesk.services.reports laid out
(figures, plotly charts, CSV export), and the rows behind any figure (``report_drill``)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable, Sequence

import pandas as pd
import streamlit as st

from console import charts, ui
from console.auth import User
from console.screens import articles, report_drill
from helpdesk.errors import DomainError
from helpdesk.models import utcnow
from helpdesk.services import metrics, reports, sla_metrics, wa_cost
from helpdesk.services.drilldown import Figure


def figures(r: reports.Report) -> dict[str, Any]:
    return {"dia": charts.per_day(r.per_day), "modulo": charts.per_module(r.per_module),
            "cliente": charts.per_customer(r.per_customer), "tipo": charts.per_type(r.per_type),
            "tecnico": charts.per_technician(r.per_technician), "avaliacoes": charts.ratings(r.ratings)}


def _sla(r: reports.Report) -> None:
    """% of SLAs met (first response and resolution), in total and per technician, module, customer, day."""
    st.subheader("SLA")
    total = r.sla_total
    fr_n = total.first_response_met + total.first_response_breached
    res_n = total.resolution_met + total.resolution_breached
    m = st.columns(4)
    m[0].metric("1ª resposta no prazo", ui.pct(total.pct_first_response),
                f"{total.first_response_met} de {fr_n}", delta_color="off")
    m[1].metric("Resolução no prazo", ui.pct(total.pct_resolution), f"{total.resolution_met} de {res_n}",
                delta_color="off")
    m[2].metric("1ª respostas fora do prazo", total.first_response_breached)
    m[3].metric("Resoluções fora do prazo", total.resolution_breached)
    st.caption("Chamados abertos no período com política de SLA, em horário útil. No prazo: respondido "
               "(ou concluído) até o vencimento; fora do prazo: depois dele, ou ainda sem resposta e já "
               "vencido. Chamados ainda dentro do prazo não entram na conta.")
    if not total.measured:
        st.caption("Nenhum chamado com SLA medido no período.")
        return
    _table_tabs("r_sla", sla_metrics.as_table, [("Técnico", r.sla_per_technician), ("Módulo", r.sla_per_module),
                                                 ("Cliente", r.sla_per_customer), ("Dia", r.sla_per_day)])


def _table_tabs(key: str, as_table: Callable[[Any, str], list[dict[str, Any]]],
                groups: Sequence[tuple[str, Any]]) -> None:
    """One tab a breakdown, titled "Por <label>": the table `as_table(lines, label)` (label names its
    first column); each table's widget key is `<key>_<label>`."""
    tabs = st.tabs([f"Por {label.lower()}" for label, _ in groups])
    for tab, (label, lines) in zip(tabs, groups):
        tab.dataframe(pd.DataFrame(as_table(lines, label)), hide_index=True, width="stretch", key=f"{key}_{label}")


def render(user: User) -> None:
    st.header("Relatórios")
    today = utcnow().date()
    c1, c2, c3, _ = st.columns([1, 1, 1, 2])
    first = c1.date_input("De", value=today - timedelta(days=29), format="DD/MM/YYYY", key="r_from")
    last = c2.date_input("Até", value=today, format="DD/MM/YYYY", key="r_to")
    window = c3.number_input("Janela da resolução durável (dias)", min_value=1,
                             max_value=metrics.MAX_DURABLE_WINDOW_DAYS, value=metrics.DURABLE_WINDOW_DAYS, step=1,
                             key="r_window")
    try:
        period = metrics.Period.from_dates(first, last)
        r = reports.build_concurrently(period, window_days=int(window))
    except DomainError as err:
        ui.alert("error", err.message_pt)
        return
    sm, bot = r.summary, r.bot
    contacts, conversations = r.reach
    st.caption("Chamados abertos no período; tempos de resolução dos chamados concluídos. "
               "Módulo mais problemático: mais chamados do tipo erro.")
    m = st.columns(4)
    m[0].metric("Chamados no período", sm.total, f"{contacts} contatos únicos · {conversations} conversas únicas",
                delta_color="off")
    m[1].metric("Tempo médio de resolução", ui.hours(sm.mean_resolution_h))
    m[2].metric("Tempo mediano de resolução", ui.hours(sm.median_resolution_h))
    m[3].metric("Concluídos / em aberto", f"{sm.resolved} / {sm.open}")
    m = st.columns(4)
    m[0].metric("Cliente com mais chamados", ui.md(sm.top_customer.label) if sm.top_customer else "—",
                f"{sm.top_customer.count} chamados" if sm.top_customer else None, delta_color="off")
    m[1].metric("Tipo mais frequente", ui.type_label(sm.top_type.label) if sm.top_type else "—",
                f"{sm.top_type.count} chamados" if sm.top_type else None, delta_color="off")
    m[2].metric("Módulo mais problemático", ui.md(sm.top_module.label) if sm.top_module else "—",
                f"{sm.top_module.count} erros" if sm.top_module else None, delta_color="off")
    m[3].metric("Técnico com maior carga", ui.md(sm.top_technician.label) if sm.top_technician else "—",
                f"{sm.top_technician.count} chamados" if sm.top_technician else None, delta_color="off")
    figs = figures(r)  # a click on a bar opens its tickets in "Ver chamados e conversas" below
    report_drill.plot(st, figs["dia"], "fig_dia", [Figure("dia", d) for d, _ in r.per_day])
    a, b = st.columns(2)
    report_drill.plot(a, figs["modulo"], "fig_modulo", [Figure("modulo", m) for m, _, _ in r.per_module])
    report_drill.plot(b, figs["cliente"], "fig_cliente", [Figure("cliente", n) for n, _ in reversed(r.per_customer)])
    report_drill.plot(a, figs["tipo"], "fig_tipo", [Figure("tipo", t) for t, _ in r.per_type])
    report_drill.plot(b, figs["tecnico"], "fig_tecnico", [Figure("tecnico", n) for n, _, _ in r.per_technician])

    _sla(r)

    st.subheader("Assistente virtual")
    m = st.columns(4)
    m[0].metric("Resolvidas pelo bot sem humano", ui.pct(bot.pct_resolved_by_bot),
                f"{bot.resolved_by_bot} de {bot.conversations} conversas", delta_color="off")
    m[1].metric("Perguntas respondidas pela documentação", ui.pct(bot.pct_answered_from_docs),
                f"{bot.answered_from_docs} de {bot.questions}", delta_color="off")
    m[2].metric("Ofertas de produto sem humano", bot.offers_without_human)
    m[3].metric("Nota média", "—" if bot.rating_avg is None else f"{bot.rating_avg:.2f}".replace(".", ","),
                f"{bot.rated} avaliações", delta_color="off")
    res = r.resolution
    m = st.columns(4)
    m[0].metric("Resolução contida", ui.pct(res.pct(res.contained)),
                f"{res.contained} de {res.conversations} conversas sem humano", delta_color="off")
    m[1].metric("Resolução verificada", ui.pct(res.pct(res.verified)),
                f"{res.verified} com \"sim\" em \"Isso resolveu?\"", delta_color="off")
    m[2].metric(f"Resolvidas pelo bot (durável, {res.window_days} dias)", ui.pct(res.pct(res.durable)),
                f"{res.durable} de {res.conversations} conversas", delta_color="off")
    m[3].metric("Verificadas que voltaram", res.gap, f"{res.gap} de {res.verified} verificadas", delta_color="off")
    st.caption("Conversas com transferência para humano nunca contam como resolvidas pelo bot. "
               "Contida: terminou sem transferência para humano. Verificada: o cliente respondeu \"sim\" a "
               "\"Isso resolveu?\" (é o número de \"Resolvidas pelo bot sem humano\"). Durável: verificada e, até "
               f"{res.window_days} dias após a conversa, o mesmo cliente (ou, sem cadastro, a mesma conversa) não "
               "abriu chamado nem foi transferido para um técnico."
               + (f" {res.pending} resolução(ões) ainda dentro da janela podem deixar de ser duráveis."
                  if res.pending else ""))
    a, b = st.columns(2)
    report_drill.plot(a, figs["avaliacoes"], "fig_avaliacoes", [Figure("avaliacao", n) for n, _ in r.ratings])
    with b:
        st.markdown("**Lacunas da documentação** (perguntas sem resposta, agrupadas)")
        if r.gaps:
            st.dataframe(pd.DataFrame([{"Pergunta": q, "Vezes": c, "Última vez": ui.fmt_dt(last)} for q, c, last in r.gaps]),
                         hide_index=True, width="stretch")
        else:
            st.caption("Nenhuma pergunta sem resposta no período.")
    articles.gaps_section(period)  # grouped by similarity, with the articles that answer them
    _llm_usage(r)
    _wa_cost(r)
    st.download_button("Exportar CSV", reports.to_csv(r).encode("utf-8"), key="r_csv", mime="text/csv",
                       file_name=f"relatorio_{first.isoformat()}_{last.isoformat()}.csv")
    report_drill.render(r, int(window))


def _llm_usage(r: reports.Report) -> None:
    """What the LLM cost in the period: calls, answers from the repeat-question cache, tokens."""
    u = r.llm
    m = st.columns(4)
    m[0].metric("Chamadas ao LLM", u.llm_calls, f"{u.extractive} respostas sem LLM", delta_color="off")
    m[1].metric("Respostas do cache", u.cached, "perguntas repetidas, sem nova chamada", delta_color="off")
    m[2].metric("Tokens do LLM", f"{u.tokens:,}".replace(",", "."))
    m[3].metric("Tokens por chamada", "—" if u.tokens_per_call is None else f"{u.tokens_per_call:.0f}")
    days = [(d, x) for d, x in r.llm_per_day if x.llm_calls or x.cached]
    if days:
        with st.expander("Uso do LLM por dia"):
            st.dataframe(pd.DataFrame([{"Dia": d.strftime("%d/%m/%Y"), "Chamadas": x.llm_calls,
                                        "Do cache": x.cached, "Tokens": x.tokens} for d, x in days]),
                         hide_index=True, width="stretch")


def _wa_cost(r: reports.Report) -> None:
    """WhatsApp messages of the period and their estimated cost (prices: Preços do WhatsApp)."""
    st.subheader("Custo do WhatsApp")
    c = r.wa_cost
    if not c.available:
        st.caption("Sem dados de custo do WhatsApp: o conector do WhatsApp ainda não registrou nenhuma mensagem "
                   "neste banco.")
        return
    t = c.total
    m = st.columns(4)
    m[0].metric("Mensagens enviadas", t.messages, f"{t.charged} cobradas · {t.free} gratuitas", delta_color="off")
    m[1].metric("Custo estimado", wa_cost.brl(t.cost_brl))
    m[2].metric("Custo médio por mensagem cobrada",
                wa_cost.brl(t.cost_brl / (t.charged - t.unpriced), 4) if t.charged > t.unpriced else "—")
    m[3].metric("Cobradas sem preço", t.unpriced, f"{t.unknown} sem informação da Meta", delta_color="off")
    st.caption("Pela informação de preço que a Meta manda em cada status de mensagem e pelos preços por "
               "categoria em Preços do WhatsApp, em vigor no momento de cada mensagem. Estimativa: a fatura da "
               "Meta é a referência.")
    if c.unpriced_categories:
        ui.alert("warning", "Mensagens cobradas sem preço cadastrado (não entram no custo): "
                 + ", ".join(c.unpriced_categories) + ". Cadastre o preço em Preços do WhatsApp.")
    if not t.messages:
        st.caption("Nenhuma mensagem do WhatsApp com informação de preço no período.")
        return
    _table_tabs("r_wa_cost", wa_cost.as_table, [("Conversa", c.per_conversation), ("Cliente", c.per_customer),
                                                 ("Categoria", c.per_category), ("Dia", c.per_day)])
