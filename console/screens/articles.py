"""Artigos: solutions suggested as documentation (managers) and the read-only view of an approved
article (everyone signed in: it is the link the bot cites, ``/artigos?id=N``); and the
Relatórios section of documentation gaps grouped by similarity (``gaps_section``).

A manager picks a candidate (pending, or flagged for review after an erasure), reads the ticket's
question and solution, writes the article (title, module, steps) and approves or discards it.
helpdesk.services.articles validates and checks for the customer's personal data; a refusal shows
its pt-BR reason and saves nothing. Stored text (the ticket's, the article's) is customer text:
it goes to ``st.text`` or through ``ui.md``, never rendered as Markdown or HTML.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console import ui
from console.auth import User
from helpdesk.config import get_settings
from helpdesk.db import session_scope
from helpdesk.errors import PermissionDenied
from helpdesk.models import KnowledgeArticle, KnowledgeQuery
from helpdesk.services import articles, gaps, metrics

log = logging.getLogger(__name__)

URL_PATH = articles.URL_PATH
REFUSED = PermissionDenied.message_pt + " Esta página é só para gestores."
NOT_PUBLISHED = "Artigo não encontrado ou não publicado."
OPEN_STATES = ("pending", "needs_review")


def _requested_id() -> int | None:
    raw = str(st.query_params.get("id") or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _view(article: KnowledgeArticle, modules: dict[str, str]) -> None:
    """The published article, read-only."""
    st.header(ui.md(article.title))
    st.caption(f"Módulo: {ui.md(modules.get(article.module or '', article.module or '—'))} · "
               f"publicado em {ui.fmt_dt(article.decided_at)}")
    st.text(article.body)


def _label(a: KnowledgeArticle) -> str:
    what = a.title or (a.question.splitlines()[0] if a.question else "") or "(sem título)"
    flag = " · revisar: titular apagado" if a.review_reason else ""
    ticket = f"chamado #{a.ticket_id}" if a.ticket_id else "sem chamado"
    return f"#{a.id} · {articles.STATE_LABELS.get(a.state, a.state)}{flag} · {ticket} · {what[:80]}"


def _approve(article_id: int, user: User) -> str:
    key = f"art_{article_id}"
    with session_scope() as s:
        a = articles.approve(s, article_id, manager_id=user.id, title=ui.value(f"{key}_title", ""),
                             module=ui.value(f"{key}_module", "") or None, body=ui.value(f"{key}_body", ""),
                             confirm_personal_data=bool(ui.value(f"{key}_confirm", False)))
        url = articles.article_url(a.id)
    return (f"Artigo #{article_id} aprovado. Ele entra na documentação do assistente na próxima ingestão "
            f"(python -m knowledge ingest), com o link {url}.")


def _discard(article_id: int, user: User) -> str:
    with session_scope() as s:
        articles.discard(s, article_id, manager_id=user.id)
    return f"Sugestão #{article_id} descartada."


def _editor(a: KnowledgeArticle, modules: dict[str, str], user: User) -> None:
    key = f"art_{a.id}"
    if a.review_reason:
        ui.alert("warning", f"Marcado para revisão: {a.review_reason}. O cliente deste chamado pediu a exclusão "
                            "dos seus dados; confira que o artigo não o cita antes de aprová-lo de novo.")
    st.markdown("**Pergunta do chamado**")
    st.text(a.question or "—")
    st.markdown("**Solução registrada**")
    st.text(a.solution or "—")
    found = articles.personal_data(f"{a.question}\n{a.solution}")
    if found:
        ui.alert("info", "O texto do chamado contém " + ", ".join(found) + ": não o copie para o artigo.")
    options = ["", *modules]
    with st.form(f"{key}_form"):
        st.text_input("Título", value=a.title, max_chars=articles.MAX_TITLE, key=f"{key}_title")
        st.selectbox("Módulo", options, index=options.index(a.module) if a.module in modules else 0,
                     format_func=lambda c: modules.get(c, "— nenhum —"), key=f"{key}_module")
        st.text_area("Texto do artigo (passos da solução)", value=a.body or a.solution, height=220,
                     max_chars=articles.MAX_BODY, key=f"{key}_body")
        st.checkbox("Confirmo que o texto não contém dados pessoais do cliente (nome, CNPJ, telefone, e-mail)",
                    key=f"{key}_confirm")
        c1, c2 = st.columns(2)
        c1.form_submit_button("Aprovar e publicar", key=f"{key}_approve", type="primary", on_click=ui.action,
                              args=(lambda: _approve(a.id, user),))
        c2.form_submit_button("Descartar", key=f"{key}_discard", on_click=ui.action,
                              args=(lambda: _discard(a.id, user),))


def render(user: User) -> None:
    requested = _requested_id()
    with session_scope() as s:
        modules = articles.module_names(s)
        article = s.get(KnowledgeArticle, requested) if requested is not None else None
        if article is not None and article.state == "approved" and not user.is_manager:
            _view(article, modules)
            return
        if not user.is_manager:
            ui.alert("error", NOT_PUBLISHED if requested is not None else REFUSED)
            return
        if article is not None and article.state == "approved":
            _view(article, modules)
            st.divider()
            st.subheader("Editar")
            _editor(article, modules, user)
            return
        open_rows = articles.listing(s, OPEN_STATES)
        published = articles.approved(s)
        flagged = [a for a in published if a.review_reason]
    st.header("Artigos")
    st.caption("Soluções registradas que os técnicos sugeriram como documentação. Revise, escreva o artigo "
               "e aprove: artigos aprovados entram na documentação que o assistente cita, com um link para "
               "esta página.")
    choices = {a.id: _label(a) for a in [*open_rows, *flagged]}
    if article is not None and article.id not in choices:
        choices = {article.id: _label(article), **choices}
    if not choices:
        ui.alert("info", "Nenhuma sugestão de artigo pendente.")
    else:
        ids = list(choices)
        first = ids.index(article.id) if article is not None else 0
        chosen = st.selectbox("Sugestão", ids, index=first, format_func=choices.get, key="art_pick")
        with session_scope() as s:
            current = articles.get(s, int(chosen))
            if current.state == "discarded":
                ui.alert("info", "Esta sugestão foi descartada.")
            else:
                _editor(current, modules, user)
    st.subheader("Publicados")
    if not published:
        st.caption("Nenhum artigo publicado ainda.")
        return
    for a in published:
        st.text(f"#{a.id} · {a.title} · {modules.get(a.module or '', a.module or '—')} · "
                f"{articles.article_url(a.id)}")


# ---- Relatórios: documentation gaps grouped by meaning ------------------------------------------

def _gap_fingerprint(s: Session, period: metrics.Period) -> tuple[Any, ...]:
    """What the grouping depends on, cheap to read: a new question or article edit misses the cache."""
    q = KnowledgeQuery
    n, last = s.execute(select(func.count(), func.max(q.id)).where(
        q.at >= period.start, q.at < period.end, q.answered.is_(False))).one()
    edited = s.scalar(select(func.max(KnowledgeArticle.updated_at)))
    return (get_settings().database_url, int(n or 0), last, edited)


@st.cache_data(ttl=300, show_spinner="Agrupando perguntas sem resposta…", max_entries=32)
def _gap_rows(start: datetime, end: datetime, fingerprint: str) -> list[dict[str, Any]]:
    with session_scope() as s:
        return gaps.as_table(gaps.gap_groups(s, metrics.Period(start, end)))


def gaps_section(period: metrics.Period) -> None:
    """The period's unanswered questions grouped by similarity, with the articles that answer them."""
    st.subheader("Lacunas da documentação por assunto")
    st.caption("Perguntas sem resposta no período agrupadas por semelhança (embeddings da base de "
               "conhecimento), com exemplos e as sugestões ou artigos que as respondem.")
    with session_scope() as s:
        key = repr(_gap_fingerprint(s, period))
    try:
        rows = _gap_rows(period.start, period.end, key)
    except Exception:  # noqa: BLE001 - the embedder failing must not take the report down
        log.exception("documentation gap grouping failed")
        ui.alert("warning", "Agrupamento por semelhança indisponível agora. A lista de perguntas sem "
                            "resposta acima continua valendo.")
        return
    if not rows:
        st.caption("Nenhuma pergunta sem resposta no período.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="r_gap_groups",
                 column_config={"Link": st.column_config.LinkColumn("Link", display_text="abrir artigo")})
