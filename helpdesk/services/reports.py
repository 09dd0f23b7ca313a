"""The managers' report (console → Relatórios) assembled from ``metrics``: data in, plain data out.

``build`` runs every figure of the page on one session; ``build_concurrently`` runs the
independent queries on several connections at once (what the console does); ``to_csv`` writes the
figures as the page's CSV export. No Streamlit here: the page only lays the report out, and
bench/reports_bench.py times these same functions.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable

from sqlalchemy.orm import Session

from helpdesk.db import session_scope
from helpdesk.services import llm_usage, metrics, sla_metrics, wa_cost
from helpdesk.services.customer_import import csv_text
from helpdesk.services.drilldown import ticket_reach


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
    gaps: list[tuple[str, int, datetime]]
    # % of SLAs met (sla_metrics); the headline is the total of the per-module rows (no extra scan)
    sla_per_day: list[sla_metrics.SlaRow] = field(default_factory=list)
    sla_per_technician: list[sla_metrics.SlaRow] = field(default_factory=list)
    sla_per_module: list[sla_metrics.SlaRow] = field(default_factory=list)
    sla_per_customer: list[sla_metrics.SlaRow] = field(default_factory=list)
    # unique contacts and unique conversations of the period's tickets (drilldown.ticket_reach)
    reach: tuple[int, int] = (0, 0)
    # what the LLM cost: calls, cache hits, extractive answers and tokens (llm_usage), and per day
    llm: llm_usage.LlmUsage = field(default_factory=lambda: llm_usage.LlmUsage(0, 0, 0, 0, 0))
    llm_per_day: list[tuple[date, llm_usage.LlmUsage]] = field(default_factory=list)
    # WhatsApp messages and their estimated cost in BRL (wa_cost): per day, category, customer, conversation
    wa_cost: wa_cost.WaCost = field(default_factory=wa_cost.WaCost.empty)

    @property
    def sla_total(self) -> sla_metrics.SlaRow:
        return sla_metrics.total_of(self.sla_per_module)


def _queries(window_days: int) -> dict[str, Callable[[Session, metrics.Period], Any]]:
    """The report's independent queries, by the Report field (or input) each one fills."""
    return {
        "totals": metrics.ticket_totals, "per_type": metrics.tickets_per_type,
        "per_module": metrics.tickets_per_module, "per_customer": metrics.tickets_per_customer,
        "per_technician": metrics.tickets_per_technician, "per_day": metrics.tickets_per_day,
        "bot": metrics.bot_summary,
        "resolution": lambda s, p: metrics.bot_resolution(s, p, window_days=window_days),
        "ratings": metrics.ratings, "gaps": metrics.documentation_gaps,
        "sla_per_day": sla_metrics.sla_per_day, "sla_per_technician": sla_metrics.sla_per_technician,
        "sla_per_module": sla_metrics.sla_per_module, "sla_per_customer": sla_metrics.sla_per_customer,
        "reach": ticket_reach, "llm": llm_usage.usage, "llm_per_day": llm_usage.usage_per_day,
        "wa_cost": wa_cost.cost,
    }


def _assemble(period: metrics.Period, got: dict[str, Any]) -> Report:
    summary = metrics.summarize(got["totals"], got["per_type"], got["per_module"], got["per_customer"],
                                got["per_technician"])
    return Report(period=period, summary=summary, per_day=got["per_day"], per_module=got["per_module"],
                  per_customer=got["per_customer"], per_type=got["per_type"], per_technician=got["per_technician"],
                  bot=got["bot"], resolution=got["resolution"], ratings=got["ratings"], gaps=got["gaps"],
                  **{key: got[key] for key in ("sla_per_day", "sla_per_technician", "sla_per_module",
                                               "sla_per_customer", "reach", "llm", "llm_per_day", "wa_cost")})


def build(s: Session, period: metrics.Period, window_days: int = metrics.DURABLE_WINDOW_DAYS) -> Report:
    """Every figure of the report on one session (SQL aggregates only)."""
    return _assemble(period, {key: fn(s, period) for key, fn in _queries(window_days).items()})


def build_concurrently(period: metrics.Period, url: str | None = None, workers: int = 4,
                       window_days: int = metrics.DURABLE_WINDOW_DAYS) -> Report:
    """Like ``build``, with the independent queries on ``workers`` connections at once (each its own
    read-only unit of work), so PostgreSQL spreads a long period's scans over its cores."""
    def run(fn: Callable[[Session, metrics.Period], Any]) -> Any:
        with session_scope(url) as s:
            return fn(s, period)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {key: pool.submit(run, fn) for key, fn in _queries(window_days).items()}
        got = {key: f.result() for key, f in futures.items()}
    return _assemble(period, got)


def _rounded(value: float | None, digits: int) -> float | str:
    return "" if value is None else round(value, digits)


def _sla_csv(r: Report) -> list[list[Any]]:
    total = r.sla_total
    rows: list[list[Any]] = [["sla", key, value] for key, value in (
        ("primeira_resposta_cumpridas", total.first_response_met),
        ("primeira_resposta_violadas", total.first_response_breached),
        ("pct_primeira_resposta_no_prazo", _rounded(total.pct_first_response, 1)),
        ("resolucao_cumpridas", total.resolution_met), ("resolucao_violadas", total.resolution_breached),
        ("pct_resolucao_no_prazo", _rounded(total.pct_resolution, 1)))]
    for section, breakdown in (("dia", r.sla_per_day), ("tecnico", r.sla_per_technician),
                               ("modulo", r.sla_per_module), ("cliente", r.sla_per_customer)):
        for row in breakdown:
            label = row.label.isoformat() if isinstance(row.label, date) else row.label
            rows.append([f"sla_primeira_resposta_por_{section}", label, _rounded(row.pct_first_response, 1)])
            rows.append([f"sla_resolucao_por_{section}", label, _rounded(row.pct_resolution, 1)])
    return rows


def _wa_cost_csv(c: wa_cost.WaCost) -> list[list[Any]]:
    """WhatsApp messages and estimated cost (BRL, a decimal point like every other number here)."""
    if not c.available:
        return [["whatsapp_custo", "disponivel", "nao"]]
    t = c.total
    rows: list[list[Any]] = [["whatsapp_custo", key, value] for key, value in (
        ("mensagens", t.messages), ("cobradas", t.charged), ("gratuitas", t.free), ("sem_informacao", t.unknown),
        ("cobradas_sem_preco", t.unpriced), ("custo_estimado_brl", f"{t.cost_brl:.2f}"))]
    for section, lines in (("dia", c.per_day), ("categoria", c.per_category), ("cliente", c.per_customer),
                           ("conversa", c.per_conversation)):
        for x in lines:
            label = x.label.isoformat() if isinstance(x.label, date) else (x.label or wa_cost.UNKNOWN_CATEGORY)
            rows.append([f"whatsapp_custo_por_{section}", label, f"{x.cost_brl:.2f}"])
            rows.append([f"whatsapp_mensagens_por_{section}", label, x.messages])
    return rows


def to_csv(r: Report) -> str:
    """The report as CSV (``;``), written by the one export writer (formula cells neutralised:
    customer names, technicians and documentation-gap questions are free text)."""
    rows: list[list[Any]] = []
    sm, bot, res = r.summary, r.bot, r.resolution
    rows.append(["periodo", "inicio", r.period.start.date().isoformat()])
    rows.append(["periodo", "fim", (r.period.end - timedelta(days=1)).date().isoformat()])
    for key, value in (("total_chamados", sm.total), ("contatos_unicos", r.reach[0]),
                       ("conversas_unicas", r.reach[1]), ("concluidos", sm.resolved), ("em_aberto", sm.open),
                       ("tempo_medio_resolucao_h", _rounded(sm.mean_resolution_h, 2)),
                       ("tempo_mediano_resolucao_h", _rounded(sm.median_resolution_h, 2))):
        rows.append(["resumo", key, value])
    for label, top in (("cliente_mais_chamados", sm.top_customer), ("tipo_mais_frequente", sm.top_type),
                       ("modulo_mais_problematico", sm.top_module), ("tecnico_maior_carga", sm.top_technician)):
        rows.append(["resumo", label, f"{top.label} ({top.count})" if top else ""])
    rows += [["por_dia", d.isoformat(), c] for d, c in r.per_day]
    rows += [["por_modulo", m, c] for m, c, _e in r.per_module]
    rows += [["por_cliente", n, c] for n, c in r.per_customer]
    rows += [["por_tipo", t, c] for t, c in r.per_type]
    rows += [["por_tecnico", n, c] for n, c, _o in r.per_technician]
    for key, value in (("conversas", bot.conversations), ("resolvidas_pelo_bot", bot.resolved_by_bot),
                       ("pct_resolvidas_pelo_bot", _rounded(bot.pct_resolved_by_bot, 1)),
                       ("perguntas", bot.questions), ("respondidas_pela_documentacao", bot.answered_from_docs),
                       ("pct_respondidas_pela_documentacao", _rounded(bot.pct_answered_from_docs, 1)),
                       ("ofertas_sem_humano", bot.offers_without_human), ("avaliacoes", bot.rated),
                       ("nota_media", _rounded(bot.rating_avg, 2))):
        rows.append(["bot", key, "" if value is None else value])
    for key, value in (("janela_duravel_dias", res.window_days), ("resolucao_contida", res.contained),
                       ("resolucao_verificada", res.verified), ("resolucao_duravel", res.durable),
                       ("pct_resolucao_duravel", _rounded(res.pct(res.durable), 1)),
                       ("verificada_menos_duravel", res.gap), ("duravel_ainda_na_janela", res.pending)):
        rows.append(["bot", key, "" if value is None else value])
    for key, value in (("chamadas_llm", r.llm.llm_calls), ("respostas_do_cache", r.llm.cached),
                       ("respostas_extrativas", r.llm.extractive), ("tokens_llm", r.llm.tokens)):
        rows.append(["llm", key, value])
    rows += [["llm_por_dia", d.isoformat(), f"{u.llm_calls} chamadas; {u.cached} do cache; {u.tokens} tokens"]
             for d, u in r.llm_per_day]
    rows += [["avaliacoes", rating, c] for rating, c in r.ratings]
    rows += [["lacunas_documentacao", q, c] for q, c, _last in r.gaps]
    rows += _sla_csv(r)
    rows += _wa_cost_csv(r.wa_cost)
    return csv_text(["secao", "item", "valor"], rows)

