"""TEMPORARY stand-in for `knowledge.answer` until the knowledge package provides it.

A real but simple implementation: keyword overlap over the paragraphs of Markdown files in
KNOWLEDGE_FALLBACK_DOCS (default knowledge/demo_docs). Remove once knowledge.answer lands.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .common import fold

ROOT = Path(__file__).resolve().parent.parent
STOPWORDS = set("""a o e de da do das dos um uma no na nos nas em para pra por com como que qual
quais eu vc voce meu minha se nao sim ja faz faco fazer tem ter the isso esse essa ao aos as os
ou mais mas sobre onde quando porque pq tb tbm e""".split())


@dataclass(frozen=True)
class Source:
    title: str
    url: str
    score: float


@dataclass(frozen=True)
class Answer:
    answer: str
    sources: list[Source]
    grounded: bool
    mode: str


def _tokens(text: str) -> set[str]:
    return {t for t in re.findall(r"[a-z0-9\-]+", fold(text)) if len(t) > 1 and t not in STOPWORDS}


@lru_cache(maxsize=4)
def _load(folder: str) -> list[tuple[str, str, str, str | None, set[str]]]:
    chunks = []
    for path in sorted(Path(folder).glob("*.md")):
        text = path.read_text(encoding="utf-8")
        title = path.stem
        url = ""
        product = None
        for line in text.splitlines()[:8]:
            if line.startswith("# "):
                title = line[2:].strip()
            if line.lower().startswith(("url:", "fonte:")):
                url = line.split(":", 1)[1].strip()
            if line.lower().startswith("produto:"):
                product = line.split(":", 1)[1].strip().lower()
        for para in re.split(r"\n\s*\n", text):
            para = para.strip()
            if para and not para.startswith("# ") and len(para) > 30:
                chunks.append((title, url or f"file://{path}", para, product, _tokens(para)))
    return chunks


def answer(question: str, products: list[str] | None = None) -> Answer:
    folder = os.environ.get("KNOWLEDGE_FALLBACK_DOCS") or str(ROOT / "knowledge" / "demo_docs")
    q = _tokens(question)
    best: tuple[float, tuple[str, str, str, str | None, set[str]]] | None = None
    for chunk in _load(folder):
        overlap = len(q & chunk[4])
        if not overlap:
            continue
        score = overlap / max(len(q), 1) + (0.1 if products and chunk[3] in products else 0.0)
        if best is None or score > best[0]:
            best = (score, chunk)
    if best is None or best[0] < 0.5:
        return Answer(answer="", sources=[], grounded=False, mode="extractive")
    title, url, para, _product, _tok = best[1]
    return Answer(answer=para, sources=[Source(title, url, round(best[0], 3))], grounded=True, mode="extractive")
