"""Documentation gaps (issue 16 item 6): the period's unanswered questions grouped by meaning, each
group linked to the documentation candidates and articles that answer it.

The distinct unanswered questions (case and spaces folded, as ``metrics.documentation_gaps``
counts them) are embedded with the knowledge embedder (the model the index uses) and grouped by
leader clustering: in order of frequency (then text), a question joins the first group whose
leader, its most frequent question, is at least ``group_threshold`` cosine-similar; otherwise it
leads a new group. The order is fixed, so the grouping is deterministic. Each group's leader is
compared, as a query, with every candidate (pending or under review) and approved article, as a
passage; those at least ``match_threshold`` similar answer it.

Thresholds depend on the embedding model's scale: e5 models (``query:``/``passage:`` prefixes)
give unrelated Portuguese questions about 0.80-0.89, MiniLM about 0.1-0.6, so each family has its
own defaults, measured on pt-BR help-desk questions (tests/helpdesk/test_articles_gaps.py holds
the cases; docs/operations.md "Artigos" gives the figures).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Sequence

import numpy as np
from sqlalchemy.orm import Session

from ..models import KnowledgeArticle
from . import articles, metrics

MAX_QUESTIONS = 500  # distinct questions embedded per report (the most frequent)
MAX_EXAMPLES = 3
MAX_MATCHES = 3
# (group, match) cosine thresholds per embedding model family
THRESHOLDS = {"e5": (0.91, 0.88), "default": (0.70, 0.55)}


class Encoder(Protocol):
    def encode(self, texts: list[str], *, is_query: bool = False) -> np.ndarray: ...


@dataclass(frozen=True)
class ArticleMatch:
    id: int
    title: str
    state: str
    score: float
    url: str


@dataclass(frozen=True)
class GapGroup:
    count: int  # unanswered questions in the group (every repeat counted)
    examples: list[str]  # distinct texts, most frequent first
    last_at: datetime
    matches: list[ArticleMatch] = field(default_factory=list)


def thresholds_for(model_name: str) -> tuple[float, float]:
    return THRESHOLDS["e5" if "e5" in (model_name or "").lower() else "default"]


def _default_encoder() -> tuple[Encoder, str]:
    from knowledge.config import Settings
    from knowledge.embed import get_embedder

    name = Settings.from_env().embedding_model
    return get_embedder(name), name


def _article_text(a: KnowledgeArticle) -> str:
    if a.title or a.body:
        return f"{a.title}\n\n{a.body}"[:2000]
    return f"{a.question}\n\n{a.solution}"[:2000]


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1.0, norms)


def cluster(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Leader clustering of rows already in priority order: lists of row indices, leader first."""
    leaders: list[int] = []
    groups: list[list[int]] = []
    for i in range(len(vectors)):
        if leaders:
            sims = vectors[leaders] @ vectors[i]
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                groups[best].append(i)
                continue
        leaders.append(i)
        groups.append([i])
    return groups


def gap_groups(s: Session, period: metrics.Period, *, encoder: Encoder | None = None, model_name: str = "",
               group_threshold: float | None = None, match_threshold: float | None = None,
               limit: int = 20) -> list[GapGroup]:
    """The period's unanswered questions grouped by meaning (largest first), with their answers."""
    rows = metrics.documentation_gaps(s, period, limit=MAX_QUESTIONS)
    if not rows:
        return []
    if encoder is None:
        encoder, model_name = _default_encoder()
    g_default, m_default = thresholds_for(model_name)
    g_t = g_default if group_threshold is None else group_threshold
    m_t = m_default if match_threshold is None else match_threshold
    rows = sorted(rows, key=lambda r: (-r[1], r[0].strip().lower()))
    vectors = _unit(encoder.encode([q for q, _, _ in rows], is_query=True))
    groups = cluster(vectors, g_t)
    candidates = [a for a in articles.listing(s, ("pending", "needs_review", "approved")) if _article_text(a).strip()]
    art_vecs = _unit(encoder.encode([_article_text(a) for a in candidates], is_query=False)) if candidates else None
    base = _console_base()
    out = []
    for members in groups:
        leader = members[0]
        matches: list[ArticleMatch] = []
        if art_vecs is not None:
            sims = art_vecs @ vectors[leader]
            order = sorted(range(len(candidates)), key=lambda j: (-float(sims[j]), candidates[j].id))
            matches = [ArticleMatch(candidates[j].id, candidates[j].title, candidates[j].state, round(float(sims[j]), 3),
                                    articles.article_url(candidates[j].id, base))
                       for j in order if sims[j] >= m_t][:MAX_MATCHES]
        out.append(GapGroup(count=sum(rows[i][1] for i in members),
                            examples=[rows[i][0].strip() for i in members[:MAX_EXAMPLES]],
                            last_at=max(rows[i][2] for i in members), matches=matches))
    out.sort(key=lambda g: (-g.count, g.examples[0].lower()))
    return out[:limit]


def _console_base() -> str:
    try:
        return articles.console_url()
    except Exception:  # noqa: BLE001 - a bad setting must not hide the report; links are relative then
        return ""


def as_table(groups: Sequence[GapGroup]) -> list[dict[str, Any]]:
    """Rows for the Relatórios page and its CSV (pt-BR column names)."""
    return [{"Perguntas": g.count, "Exemplos": " | ".join(g.examples),
             "Última vez": g.last_at.strftime("%d/%m/%Y %H:%M"),
             "Artigos que respondem": "; ".join(
                 f"#{m.id} {m.title or '(sem título)'} ({articles.STATE_LABELS.get(m.state, m.state)})"
                 for m in g.matches) or "—",
             "Link": g.matches[0].url if g.matches else None} for g in groups]
