"""Relatórios (managers): period filter, figures computed in SQL, plotly charts, CSV export."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from console import charts, ui
from console.auth import User
from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.models import utcnow
from helpdesk.services import metrics
from helpdesk.services.customer_import import csv_text


@dataclass
class Report:
    period: metrics.Period
    summary: metrics.TicketSummary
    per_day: list[tuple[date, int]]
    per_module: list[tuple[str, int, int]]
    per_customer: list[tuple[str, int]]
    per_type: list[tuple[str, int]]
    per_technician: list[tuple[str, int, int]]
    bot: metrics.BotSummary
    resolution: metrics.BotResolution
    ratings: list[tuple[int, int]]
    gaps: list[tuple[str, int, Any]]


def build(s: Any, period: metrics.Period, window_days: int = metrics.DURABLE_WINDOW_DAYS) -> Report:
    """Every figure of the page (SQL aggregates only); the benchmark times this too."""
    per_type, per_module = metrics.tickets_per_type(s, period), metrics.tickets_per_module(s, period)
    per_customer, per_technician = metrics.tickets_per_customer(s, period), metrics.tickets_per_technician(s, period)
    summary = metrics.summarize(metrics.ticket_totals(s, period), per_type, per_module, per_customer, per_technician)
    return Report(period=period, summary=summary, per_day=metrics.tickets_per_day(s, period), per_module=per_module,
                  per_customer=per_customer, per_type=per_type, per_technician=per_technician,
                  bot=metrics.bot_summary(s, period),
                  resolution=metrics.bot_resolution(s, period, window_days=window_days),
                  ratings=metrics.ratings(s, period),
                  gaps=metrics.documentation_gaps(s, period))


def build_concurrently(period: metrics.Period, url: str | None = None, workers: int = 4,
                       window_days: int = metrics.DURABLE_WINDOW_DAYS) -> Report:
    """Like ``build``, with the independent queries on ``workers`` connections at once (each its own
    read-only unit of work), so PostgreSQL spreads a long period's scans over its cores."""
    from concurrent.futures import ThreadPoolExecutor

    def run(fn: Any, *args: Any) -> Any:
        with session_scope(url) as s:
            return fn(s, period, *args)

    def resolution(s: Any, p: metrics.Period) -> metrics.BotResolution:
        return metrics.bot_resolution(s, p, window_days=window_days)

    jobs = {"totals": (metrics.ticket_totals,), "per_type": (metrics.tickets_per_type,),
            "per_module": (metrics.tickets_per_module,), "per_customer": (metrics.tickets_per_customer,),
            "per_technician": (metrics.tickets_per_technician,), "per_day": (metrics.tickets_per_day,),
            "bot": (metrics.bot_summary,), "resolution": (resolution,), "ratings": (metrics.ratings,),
            "gaps": (metrics.documentation_gaps,)}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {key: pool.submit(run, *job) for key, job in jobs.items()}
        got = {key: f.result() for key, f in futures.items()}
    summary = metrics.summarize(got["totals"], got["per_type"], got["per_module"], got["per_customer"],
                                got["per_technician"])
    return Report(period=period, summary=summary, per_day=got["per_day"], per_module=got["per_module"],
                  per_customer=got["per_customer"], per_type=got["per_type"], per_technician=got["per_technician"],
                  bot=got["bot"], resolution=got["resolution"], ratings=got["ratings"], gaps=got["gaps"])


def figures(r: Report) -> dict[str, Any]:
    return {"dia": charts.per_day(r.per_day), "modulo": charts.per_module(r.per_module),
            "cliente": charts.per_customer(r.per_customer), "tipo": charts.per_type(r.per_type),
            "tecnico": charts.per_technician(r.per_technician), "avaliacoes": charts.ratings(r.ratings)}


def to_csv(r: Report) -> str:
    """The page's figures as CSV (``;``), written by the one export writer (formula cells neutralised:
    customer names, technicians and documentation-gap questions are free text)."""
    rows: list[list[Any]] = []
    sm, bot = r.summary, r.bot
    rows.append(["periodo", "inicio", r.period.start.date().isoformat()])
    rows.append(["periodo", "fim", (r.period.end - timedelta(days=1)).date().isoformat()])
    totals = [("total_chamados", sm.total), ("concluidos", sm.resolved), ("em_aberto", sm.open),
              ("tempo_medio_resolucao_h", None if sm.mean_resolution_h is None else round(sm.mean_resolution_h, 2)),
              ("tempo_mediano_resolucao_h",
               None if sm.median_resolution_h is None else round(sm.median_resolution_h, 2))]
    for key, value in totals:
        rows.append(["resumo", key, "" if value is None else value])
    for label, top in (("cliente_mais_chamados", sm.top_customer), ("tipo_mais_frequente", sm.top_type),
                       ("modulo_mais_problematico", sm.top_module), ("tecnico_maior_carga", sm.top_technician)):
        rows.append(["resumo", label, f"{top.label} ({top.count})" if top else ""])
    rows += [["por_dia", d.isoformat(), c] for d, c in r.per_day]
    rows += [["por_modulo", m, c] for m, c, _e in r.per_module]
    rows += [["por_cliente", n, c] for n, c in r.per_customer]
    rows += [["por_tipo", t, c] for t, c in r.per_type]
    rows += [["por_tecnico", n, c] for n, c, _o in r.per_technician]
    for key, value in (("conversas", bot.conversations), ("resolvidas_pelo_bot", bot.resolved_by_bot),
                       ("pct_resolvidas_pelo_bot", None if bot.pct_resolved_by_bot is None else round(bot.pct_resolved_by_bot, 1)),
                       ("perguntas", bot.questions), ("respondidas_pela_documentacao", bot.answered_from_docs),
                       ("pct_respondidas_pela_documentacao",
                        None if bot.pct_answered_from_docs is None else round(bot.pct_answered_from_docs, 1)),
                       ("ofertas_sem_humano", bot.offers_without_human), ("avaliacoes", bot.rated),
                       ("nota_media", None if bot.rating_avg is None else round(bot.rating_avg, 2))):
        rows.append(["bot", key, "" if value is None else value])
    res = r.resolution
    durable_pct = res.pct(res.durable)
    for key, value in (("janela_duravel_dias", res.window_days), ("resolucao_contida", res.contained),
                       ("resolucao_verificada", res.verified), ("resolucao_duravel", res.durable),
                       ("pct_resolucao_duravel", None if durable_pct is None else round(durable_pct, 1)),
                       ("verificada_menos_duravel", res.gap), ("duravel_ainda_na_janela", res.pending)):
        rows.append(["bot", key, "" if value is None else value])
    rows += [["avaliacoes", rating, c] for rating, c in r.ratings]
    rows += [["lacunas_documentacao", q, c] for q, c, _last in r.gaps]
    return csv_text(["secao", "item", "valor"], rows)


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
        r = build_concurrently(period, window_days=int(window))
    except DomainError as err:
        ui.alert("error", err.message_pt)
        return
    sm, bot = r.summary, r.bot
    st.caption("Chamados abertos no período; tempos de resolução dos chamados concluídos. "
               "Módulo mais problemático: mais chamados do tipo erro.")
    m = st.columns(4)
    m[0].metric("Chamados no período", sm.total)
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
    figs = figures(r)
    st.plotly_chart(figs["dia"], key="fig_dia")
    a, b = st.columns(2)
    a.plotly_chart(figs["modulo"], key="fig_modulo")
    b.plotly_chart(figs["cliente"], key="fig_cliente")
    a.plotly_chart(figs["tipo"], key="fig_tipo")
    b.plotly_chart(figs["tecnico"], key="fig_tecnico")

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
    a.plotly_chart(figs["avaliacoes"], key="fig_avaliacoes")
    with b:
        st.markdown("**Lacunas da documentação** (perguntas sem resposta, agrupadas)")
        if r.gaps:
            st.dataframe(pd.DataFrame([{"Pergunta": q, "Vezes": c, "Última vez": ui.fmt_dt(last)} for q, c, last in r.gaps]),
                         hide_index=True, width="stretch")
        else:
            st.caption("Nenhuma pergunta sem resposta no período.")
    st.download_button("Exportar CSV", to_csv(r).encode("utf-8"), key="r_csv", mime="text/csv",
                       file_name=f"relatorio_{first.isoformat()}_{last.isoformat()}.csv")
