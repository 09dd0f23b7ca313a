"""Hybrid retrieval: BM25 + dense (FAISS) with weighted score fusion, tuned per embedding model."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import faiss
import numpy as np

from . import expand
from .config import threads
from .embed import Embedder
from .index import LoadedIndex
from .models import Chunk
from .text import tokenize

log = logging.getLogger(__name__)

MODES = ("hybrid", "bm25", "dense")
OVERFETCH = 4
# one query at a time: OpenMP threads only add contention (measured 3x slower on a busy 2-core box).
# The OpenMP setting belongs to the calling thread, so every search sets it (a few nanoseconds).


@dataclass(frozen=True)
class Fusion:
    """Weighted fusion of max-normalised BM25 and min-max-normalised cosine over the candidates.

    The BM25 weight is tuned per embedding model on FaQuAD and knowledge/eval/demo_questions.jsonl
    (bench/knowledge_bench.py, docs/knowledge.md "Figures"): 0.5 for multilingual-e5-small, which reads
    Portuguese (dense alone beats BM25 at recall@1 on the own set); 0.8 for any other model, tuned for
    the English all-MiniLM-L6-v2, where BM25 must dominate and the dense score only reorders close
    BM25 candidates."""

    bm25_weight: float = 0.8
    candidates: int = 50


E5_FUSION = Fusion(bm25_weight=0.5)
# the search default: the fusion tuned for the model the index was built with (fusion_for)
DEFAULT_FUSION = Fusion()


def _is_e5(model_name: str) -> bool:
    return "multilingual-e5-small" in model_name.lower()


def fusion_for(model_name: str) -> Fusion:
    """The tuned fusion for an index built with that embedding model."""
    return E5_FUSION if _is_e5(model_name) else Fusion()


def dense_evidence_floor(model_name: str) -> float:
    """The best passage's cosine at or above which a question counts as covered by the docs when its
    terms are also partly covered (knowledge.answer.MIN_COVERAGE_DENSE): the answer gate's dense
    half. e5's cosines are compressed high (off-topic questions reach 0.86-0.87 on the demo docs),
    so its floor is 0.86, chosen with MIN_COVERAGE_DENSE = 0.30 on the tuning sets of
    bench/answer_gate.py (docs/knowledge.md "Answer gate"); MiniLM's 0.62 for any other model
    (knowledge.answer.MIN_DENSE)."""
    return 0.86 if _is_e5(model_name) else 0.62


class ModelMismatch(ValueError):
    """The query embedder is not the model the index was built with: its vectors are meaningless there."""


@dataclass
class Hit:
    chunk: Chunk
    index: int
    score: float
    bm25: float
    dense: float


def _allowed(idx: LoadedIndex, products: Sequence[str] | None) -> tuple[np.ndarray, Any] | None:
    """(mask, FAISS selector) for chunks whose product (or module) is one of the given codes, plus
    chunks without a product; cached per index. Module codes ("nfe") work as well as product codes."""
    if not products:
        return None
    wanted = tuple(sorted({p.strip().lower() for p in products if p and p.strip()}))
    if not wanted:
        return None
    cached = idx.filters.get(wanted)
    if cached is None:
        lowered = np.array([(p or "").lower() for p in idx.products], dtype=object)
        modules = np.array([(c.module or "").lower() for c in idx.chunks], dtype=object)
        mask = np.isin(lowered, np.array(list(wanted) + [""], dtype=object)) | np.isin(
            modules, np.array(list(wanted), dtype=object))
        selector = faiss.IDSelectorBatch(np.flatnonzero(mask).astype(np.int64)) if mask.any() else None
        cached = (mask, selector)
        if len(idx.filters) < 256:
            idx.filters[wanted] = cached
    return cached


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[0])
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def _dense_search(idx: LoadedIndex, qv: np.ndarray, k: int, filt: tuple[np.ndarray, Any] | None) -> np.ndarray:
    n = len(idx.chunks)
    faiss.omp_set_num_threads(threads().faiss)
    if filt is None:
        _, ids = idx.faiss_index.search(qv[None, :], min(k, n))
    else:
        # over-fetch without the filter (as fast as an unfiltered search), then keep allowed ids;
        # a selector search only when the product is too rare to fill k that way
        _, ids = idx.faiss_index.search(qv[None, :], min(k * OVERFETCH, n))
        found = ids[0][ids[0] >= 0]
        found = found[filt[0][found]]
        if len(found) >= min(k, int(filt[0].sum())):
            return found[:k]
        sel = filt[1]
        params = (faiss.SearchParametersHNSW(sel=sel, efSearch=max(k, 96))
                  if isinstance(idx.faiss_index, faiss.IndexHNSW) else faiss.SearchParameters(sel=sel))
        _, ids = idx.faiss_index.search(qv[None, :], min(k, n), params=params)
    return ids[0][ids[0] >= 0]


def bm25_scores(idx: LoadedIndex, query: str, products: Sequence[str] | None = None,
                expansion: expand.Catalog | None | bool = True) -> np.ndarray:
    """BM25 score of every chunk for the question's tokens, plus the score of its expansion tokens
    (knowledge/expand.py), codes at CODE_WEIGHT, synonyms at EXPANSION_WEIGHT. `expansion`: True = the
    configured catalog (codes found in the index are expanded even without one), False = none, or a
    Catalog."""
    n = len(idx.chunks)
    tokens = tokenize(query)
    bm = idx.bm25.get_scores(tokens).astype(np.float32) if tokens else np.zeros(n, np.float32)
    if expansion is False:
        return bm
    catalog = expand.configured_catalog() if expansion is True else expansion
    extra = expand.expand(query, products, idx.bm25.vocab_dict, catalog)
    for terms, weight in ((extra.codes, expand.CODE_WEIGHT), (extra.synonyms, expand.EXPANSION_WEIGHT)):
        if terms:
            bm += weight * idx.bm25.get_scores(list(terms)).astype(np.float32)
    return bm


def search(idx: LoadedIndex, embedder: Embedder | None, query: str, products: Sequence[str] | None = None,
           k: int = 10, mode: str = "hybrid", fusion: Fusion = DEFAULT_FUSION,
           expansion: expand.Catalog | None | bool = True) -> list[Hit]:
    """The best k chunks for the question. `expansion`: query expansion of the BM25 half (True: the
    configured catalog, knowledge/query_terms.yml; False: none; or a Catalog)."""
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r}")
    n = len(idx.chunks)
    if n == 0 or not query.strip():
        return []
    filt = _allowed(idx, products)
    if filt is not None and not filt[0].any():
        return []
    allowed = filt[0] if filt is not None else None
    if mode != "dense":
        bm = bm25_scores(idx, query, products, expansion)
        if allowed is not None:
            bm = np.where(allowed, bm, -1.0).astype(np.float32)
    else:
        bm = np.zeros(n, np.float32)
    if mode == "bm25":
        ids = [i for i in _top(bm, k) if bm[i] > 0]
        top = float(bm[ids[0]]) if ids else 1.0
        return [Hit(idx.chunks[i], int(i), float(bm[i]) / top, float(bm[i]), 0.0) for i in ids]
    if embedder is None:
        raise ValueError("dense and hybrid retrieval need the embedding model")
    name = getattr(embedder, "name", None)
    if name is not None and idx.model_name and name != idx.model_name:
        log.error("refusing a query: index %s was built with %s, the query embedder is %s",
                  idx.version, idx.model_name, name)
        raise ModelMismatch(f"index {idx.version} was built with embedding model {idx.model_name!r}, "
                            f"not {name!r}: ingest again with the new model")
    if fusion is DEFAULT_FUSION:
        fusion = fusion_for(idx.model_name)
    qv = embedder.encode_query(query)
    dense_ids = _dense_search(idx, qv, max(k, fusion.candidates), filt)
    if mode == "dense":
        sims = idx.embeddings[dense_ids] @ qv
        order = np.argsort(-sims, kind="stable")[:k]
        return [Hit(idx.chunks[int(dense_ids[j])], int(dense_ids[j]), float(sims[j]), 0.0, float(sims[j]))
                for j in order]
    bm_ids = [i for i in _top(bm, fusion.candidates) if bm[i] > 0]
    cand = np.array(sorted(set(int(i) for i in bm_ids) | set(int(i) for i in dense_ids)), dtype=np.int64)
    if cand.size == 0:
        return []
    sims = idx.embeddings[cand] @ qv
    bms = np.maximum(bm[cand], 0.0)
    bm_max = float(bms.max())
    bm_norm = bms / bm_max if bm_max > 0 else np.zeros_like(bms)
    lo, hi = float(sims.min()), float(sims.max())
    dn = (sims - lo) / (hi - lo) if hi - lo > 1e-6 else np.ones_like(sims)
    fused = fusion.bm25_weight * bm_norm + (1.0 - fusion.bm25_weight) * dn
    order = np.argsort(-fused, kind="stable")[:k]
    return [Hit(idx.chunks[int(cand[j])], int(cand[j]), float(fused[j]), float(bms[j]), float(sims[j]))
            for j in order]
