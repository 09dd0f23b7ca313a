"""plotly figures of the reports (pure functions over the aggregated rows from helpdesk.services.metrics).

plotly reads a subset of HTML in labels (<a href>, <b>, <br>, entities), so every stored name
(customers, technicians, modules) is HTML-escaped before it becomes a label.
"""
from __future__ import annotations

import html
from datetime import date

import plotly.graph_objects as go

from helpdesk.models import TYPE_LABELS

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320, separators=",.")


def label(value: object) -> str:
    """A stored name as plotly text, shown as typed."""
    return html.escape(str(value), quote=True)


def per_day(rows: list[tuple[date, int]]) -> go.Figure:
    fig = go.Figure(go.Bar(x=[d for d, _ in rows], y=[c for _, c in rows], name="chamados",
                           hovertemplate="%{x|%d/%m/%Y}: %{y} chamados<extra></extra>"))
    fig.update_layout(title="Chamados por dia", xaxis_title="dia", yaxis_title="chamados", **_LAYOUT)
    fig.update_xaxes(tickformat="%d/%m")  # numeric dates: no English month names
    return fig


def per_module(rows: list[tuple[str, int, int]]) -> go.Figure:
    names = [label(m) for m, _, _ in rows]
    fig = go.Figure([
        go.Bar(x=names, y=[e for _, _, e in rows], name="erros"),
        go.Bar(x=names, y=[c - e for _, c, e in rows], name="outros tipos"),
    ])
    fig.update_layout(title="Chamados por módulo", barmode="stack", yaxis_title="chamados", **_LAYOUT)
    return fig


def per_customer(rows: list[tuple[str, int]]) -> go.Figure:
    rows = list(reversed(rows))
    fig = go.Figure(go.Bar(x=[c for _, c in rows], y=[label(n) for n, _ in rows], orientation="h"))
    fig.update_layout(title="Clientes com mais chamados", xaxis_title="chamados", **_LAYOUT)
    return fig


def per_type(rows: list[tuple[str, int]]) -> go.Figure:
    fig = go.Figure(go.Pie(labels=[label(TYPE_LABELS.get(t, t)) for t, _ in rows], values=[c for _, c in rows], hole=0.4))
    fig.update_layout(title="Chamados por tipo", **_LAYOUT)
    return fig


def per_technician(rows: list[tuple[str, int, int]]) -> go.Figure:
    names = [label(n) for n, _, _ in rows]
    fig = go.Figure([
        go.Bar(x=names, y=[c - o for _, c, o in rows], name="concluídos"),
        go.Bar(x=names, y=[o for _, _, o in rows], name="em aberto"),
    ])
    fig.update_layout(title="Carga por técnico", barmode="stack", yaxis_title="chamados", **_LAYOUT)
    return fig


def ratings(rows: list[tuple[int, int]]) -> go.Figure:
    fig = go.Figure(go.Bar(x=[f"{r} ★" for r, _ in rows], y=[c for _, c in rows]))
    fig.update_layout(title="Avaliações dos clientes", yaxis_title="conversas", **_LAYOUT)
    return fig
