"""SLA (managers): first-response and resolution targets per priority and contract tier, the
business calendar (working hours per weekday, time zone, Carnaval), customers' contract tiers, and
the holidays counted this year. Everything is validated by helpdesk.services.sla; a bad value shows
its pt-BR message and saves nothing."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from console import ui
from console.auth import User
from helpdesk.db import session_scope
from helpdesk.errors import DomainError, InvalidInput
from helpdesk.models import PRIORITIES, Customer, utcnow
from helpdesk.services import sla
from helpdesk.services.sla_calendar import WEEKDAY_LABELS, WEEKDAYS, holiday_names

DEFAULT_TIER = ""
NEW_TIER = "__new__"


def _day_text(intervals: list[list[str]]) -> str:
    return ", ".join(f"{a}-{b}" for a, b in intervals)


def parse_day_text(text: str, label: str) -> list[list[str]]:
    """"08:00-12:00, 13:00-18:00" as [["08:00", "12:00"], ["13:00", "18:00"]]; blank: closed."""
    out = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        pieces = [p.strip() for p in part.split("-")]
        if len(pieces) != 2:
            raise InvalidInput(f"bad interval {part!r}",
                               f"Horário inválido em {label}: \"{part}\". Use início-fim, por exemplo 08:00-18:00.")
        out.append(pieces)
    return out


def _hours(minutes: int | None) -> float:
    return 0.0 if minutes is None else minutes / 60.0


def _load() -> dict[str, Any]:
    with session_scope() as s:
        cfg = sla.load_config(s)
        return {"policies": sla.policy_rows(s), "calendar": cfg.calendar,
                "customers": {c.id: (c.legal_name, c.tier or "") for c in
                              s.query(Customer).order_by(Customer.legal_name).limit(2000)}}


def _policy_inputs(tier: str, current: dict[str, dict[str, Any]]) -> dict[str, Any]:
    st.caption("Metas em horas úteis (ex.: 0,5 = 30 minutos). "
               + ("Marque \"sem SLA\" para uma prioridade sem meta." if tier == DEFAULT_TIER else
                  "Marque \"usar o padrão\" para a prioridade seguir a política padrão."))
    values: dict[str, Any] = {}
    for priority in PRIORITIES:
        row = current.get(priority)
        c1, c2, c3, c4 = st.columns([1, 2, 2, 1], vertical_alignment="bottom")
        c1.markdown(f"**{ui.md(priority)}**")
        fr = c2.number_input("1ª resposta (h)", value=_hours(row and row["first_response_minutes"]), step=0.25,
                             key=f"sla_fr_{tier}_{priority}")
        res = c3.number_input("Resolução (h)", value=_hours(row and row["resolution_minutes"]), step=0.25,
                              key=f"sla_res_{tier}_{priority}")
        none = c4.checkbox("sem SLA" if tier == DEFAULT_TIER else "usar o padrão", value=row is None,
                           key=f"sla_none_{tier}_{priority}")
        values[priority] = (fr, res, none)
    return values


def _save(tier: str, values: dict[str, Any], others: list[dict[str, Any]], week_text: dict[str, str],
          tz: str, carnival: bool, user: User) -> str:
    week = {key: parse_day_text(week_text[key], WEEKDAY_LABELS[d]) for d, key in enumerate(WEEKDAYS)}
    rows = [dict(r, tier=r["tier"] or None) for r in others]
    for priority, (fr, res, none) in values.items():
        if not none:
            rows.append({"tier": tier or None, "priority": priority,
                         "first_response_minutes": round(float(fr) * 60, 6),
                         "resolution_minutes": round(float(res) * 60, 6)})
    with session_scope() as s:
        sla.save(s, policies=rows, week=week, timezone=tz, carnival=carnival, actor=user.name)
    return "Políticas de SLA e calendário salvos. Os prazos dos chamados abertos serão recalculados."


def _tier_choice(tiers: list[str]) -> str:
    options = [DEFAULT_TIER, *tiers, NEW_TIER]
    choice = st.selectbox("Contrato", options, key="sla_tier",
                          format_func=lambda t: {DEFAULT_TIER: "padrão (todos os clientes)",
                                                 NEW_TIER: "novo contrato…"}.get(t, t))
    if choice != NEW_TIER:
        return choice
    name = st.text_input("Nome do novo contrato (ex.: ouro)", key="sla_new_tier")
    try:
        return sla.normalize_tier(name) or DEFAULT_TIER
    except InvalidInput as err:
        ui.alert("error", err.message_pt)
        return DEFAULT_TIER


def _customer_tier(customers: dict[int, tuple[str, str]]) -> None:
    st.subheader("Contrato do cliente")
    if not customers:
        st.info("Nenhum cliente cadastrado.")
        return
    c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
    cid = c1.selectbox("Cliente", list(customers), key="sla_customer",
                       format_func=lambda i: f"{customers[i][0]} · {customers[i][1] or 'padrão'}")
    tier = c2.text_input("Contrato (vazio: padrão)", value=customers[cid][1], key=f"sla_customer_tier_{cid}")
    if c3.button("Salvar contrato", key="sla_customer_save", width="stretch"):
        try:
            with session_scope() as s:
                saved = sla.set_customer_tier(s, cid, tier).tier
        except DomainError as err:
            ui.alert("error", err.message_pt)
            return
        ui.flash("success", f"Contrato de {customers[cid][0]}: {saved or 'padrão'}.")
        st.rerun()


def render(user: User) -> None:
    st.header("SLA")
    st.caption("Prazos contados em horário útil, no calendário abaixo, sem os feriados nacionais. "
               "Ao atingir 80% de um prazo o chamado recebe um aviso; ao estourar, a prioridade sobe um "
               "degrau (em urgente, sobe o nível).")
    data = _load()
    tiers = sorted({r["tier"] for r in data["policies"] if r["tier"]})
    tier = _tier_choice(tiers)
    current = {r["priority"]: r for r in data["policies"] if r["tier"] == tier}
    others = [r for r in data["policies"] if r["tier"] != tier]
    cal = data["calendar"]
    with st.form("sla_form"):
        st.subheader("Metas" + (f" · contrato {ui.md(tier)}" if tier else " · padrão"))
        values = _policy_inputs(tier, current)
        st.subheader("Calendário")
        st.caption("Horários por dia, como 08:00-12:00, 13:00-18:00; vazio: sem atendimento.")
        week_json = cal.to_json()
        cols = st.columns(7)
        week_text = {key: cols[d].text_input(WEEKDAY_LABELS[d], value=_day_text(week_json[key]), key=f"sla_day_{key}")
                     for d, key in enumerate(WEEKDAYS)}
        c1, c2 = st.columns(2)
        tz = c1.text_input("Fuso horário", value=cal.tz, key="sla_tz")
        carnival = c2.checkbox("Carnaval é folga (segunda e terça; quarta-feira de Cinzas a partir das 14h)",
                               value=cal.carnival, key="sla_carnival")
        submitted = st.form_submit_button("Salvar", type="primary", key="sla_save")
    if submitted:
        try:
            message = _save(tier, values, others, week_text, tz, carnival, user)
        except DomainError as err:
            ui.alert("error", err.message_pt)
        else:
            ui.flash("success", message)
            st.rerun()
    if data["policies"]:
        st.subheader("Políticas em vigor")
        st.dataframe(pd.DataFrame([{"Contrato": r["tier"] or "padrão", "Prioridade": r["priority"],
                                    "1ª resposta": sla.format_minutes(r["first_response_minutes"]),
                                    "Resolução": sla.format_minutes(r["resolution_minutes"])}
                                   for r in data["policies"]]), hide_index=True)
    else:
        st.info("Nenhuma política de SLA salva ainda: os chamados não têm prazo.")
    _customer_tier(data["customers"])
    year = utcnow().year
    st.subheader(f"Feriados considerados em {year}")
    st.dataframe(pd.DataFrame([{"Data": d.strftime("%d/%m/%Y"), "Feriado": name}
                               for d, name in holiday_names(year, cal.carnival)]), hide_index=True)
