"""Relatórios → "Ver chamados e conversas": the rows behind a figure, one opened with its transcript,
and the export of the selected rows (helpdesk.services.drilldown does the work).

A figure is chosen in the "Recorte" list (every headline count, chart bar and bot figure is
there, with its count) or by clicking a bar of a chart (``plot``). Customer text goes to
``st.dataframe`` / ``st.text`` only (see console/ui.py).
"""
from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from console import ui
from helpdesk.db import session_scope
from helpdesk.services import drilldown
from helpdesk.services.drilldown import Figure

PICK_KEY = "r_drill"


def figure_id(f: Figure) -> str:
    value = f.value.isoformat() if isinstance(f.value, date) else f.value
    return f.kind if value is None else f"{f.kind}|{value}"


def plot(container: Any, fig: go.Figure, key: str, points: list[Figure]) -> None:
    """A chart whose clicked bar opens its rows below (``points[i]`` is the figure of bar ``i``)."""
    event = container.plotly_chart(fig, key=key, on_select="rerun", selection_mode=("points",))
    chosen = [p.get("point_index") for p in (event.selection.points if event else [])]
    if not chosen or not isinstance(chosen[0], int) or not 0 <= chosen[0] < len(points):
        return
    picked = figure_id(points[chosen[0]])
    if st.session_state.get(f"{key}_applied") != picked:  # a new click, not the same selection again
        st.session_state[f"{key}_applied"] = picked
        st.session_state[PICK_KEY] = picked


def _shown(value: Any) -> Any:
    if isinstance(value, bool):
        return "sim" if value else "não"
    if hasattr(value, "strftime"):
        return ui.fmt_dt(value)
    return value


def _transcript(row: drilldown.Row) -> None:
    with session_scope() as s:
        entries = drilldown.transcript(s, row)
    if not entries:
        st.caption("Nada registrado nesta conversa.")
    for e in entries:
        st.text(f"[{e.at.strftime('%d/%m/%Y %H:%M')}] {e.author} · {e.label}" + (f": {e.text}" if e.text else ""))


def render(report: Any, window_days: int) -> None:
    st.subheader("Ver chamados e conversas")
    options = {figure_id(f): (f, label, count) for f, label, count in drilldown.drillable(report)}
    if st.session_state.get(PICK_KEY) not in options:
        st.session_state[PICK_KEY] = next(iter(options))
    chosen = st.selectbox("Recorte", list(options), key=PICK_KEY,
                          format_func=lambda k: f"{options[k][1]} ({options[k][2]})")
    figure, label, _count = options[chosen]
    with session_scope() as s:
        d = drilldown.drill(s, report.period, figure, window_days=window_days)
    noun = "chamado" if d.about == "tickets" else ("pergunta" if figure.kind == "lacuna" else "conversa")
    if not d.total:
        ui.alert("info", f"Nenhum(a) {noun} neste recorte no período.")
        return
    m = st.columns(3)
    m[0].metric(f"{noun.capitalize()}s", d.total)
    m[1].metric("Contatos únicos", "—" if d.unique_contacts is None else d.unique_contacts)
    m[2].metric("Conversas únicas", d.unique_conversations)
    if d.truncated:
        st.caption(f"Mostrando os {len(d.rows)} mais antigos de {d.total}.")
    table = pd.DataFrame([{k: _shown(v) for k, v in r.columns.items()} for r in d.rows])
    event = st.dataframe(table, hide_index=True, width="stretch", key="r_drill_rows", on_select="rerun",
                         selection_mode="multi-row")
    selected = [d.rows[i] for i in (event.selection.rows if event else []) if 0 <= i < len(d.rows)]
    picked = selected or d.rows
    st.caption(f"Exportar: {len(picked)} linha(s) ({'as selecionadas na tabela' if selected else 'todas as listadas'}).")
    name = f"recorte_{figure.kind}_{report.period.start.date().isoformat()}"
    a, b = st.columns(2)
    a.download_button("Exportar seleção (CSV)", drilldown.csv(picked).encode("utf-8"), key="r_drill_csv",
                      file_name=f"{name}.csv", mime="text/csv")

    def with_transcripts() -> bytes:  # built only when downloaded
        with session_scope() as s:
            return drilldown.json_export(s, picked).encode("utf-8")

    b.download_button("Exportar seleção com transcrições (JSON)", with_transcripts, key="r_drill_json",
                      file_name=f"{name}.json", mime="application/json")
    labels = {r.key: " · ".join(str(_shown(v)) for v in list(r.columns.values())[:3]) for r in d.rows}
    key = st.selectbox("Abrir", list(labels), format_func=labels.get, key="r_drill_open")
    row = next(r for r in d.rows if r.key == key)
    if row.ticket_id is not None and st.button("Abrir no Chamado", key="r_drill_ticket"):
        ui.go(ui.TICKET, id=str(row.ticket_id))
    _transcript(row)
