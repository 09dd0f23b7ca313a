"""Index types and filtered search on Flat and HNSW indexes (no model: query vectors given directly)."""
from __future__ import annotations

import numpy as np
import pytest

from knowledge.index import in_memory_index
from knowledge.models import Chunk
from knowledge.retrieve import search


class VectorQuery:
    """Stands in for the embedding model: returns the vector registered for a query text."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def encode_query(self, text: str) -> np.ndarray:
        return self.vectors[text]


def _corpus(n: int) -> tuple[list[Chunk], np.ndarray]:
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((n, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [Chunk(id=str(i), doc_key=f"d{i}", url=f"https://d/{'erp' if i % 2 else 'omni'}/{i}",
                    title=f"Página {i}", product="erp" if i % 2 else "omni", module=None, heading="",
                    text=f"texto número {i} sobre {'nota fiscal' if i % 2 else 'chatbot whatsapp'}")
              for i in range(n)]
    return chunks, vecs


@pytest.mark.parametrize("flat_limit,kind", [(10_000, "IndexFlatIP"), (100, "IndexHNSWFlat")])
def test_flat_or_hnsw_and_product_filter(flat_limit: int, kind: str) -> None:
    chunks, vecs = _corpus(400)
    idx = in_memory_index(chunks, vecs, flat_limit=flat_limit)
    assert type(idx.faiss_index).__name__ == kind
    q = VectorQuery({"nota fiscal": vecs[7], "chatbot": vecs[8]})
    dense = search(idx, q, "nota fiscal", mode="dense", k=5)  # type: ignore[arg-type]
    assert dense[0].index == 7 and dense[0].dense == pytest.approx(1.0, abs=1e-4)
    only_omni = search(idx, q, "nota fiscal", ["omni"], mode="dense", k=5)  # type: ignore[arg-type]
    assert only_omni and all(h.chunk.product == "omni" for h in only_omni)
    hybrid = search(idx, q, "nota fiscal", ["erp"], mode="hybrid", k=10)  # type: ignore[arg-type]
    assert hybrid[0].index == 7 and all(h.chunk.product == "erp" for h in hybrid)
    assert hybrid == sorted(hybrid, key=lambda h: -h.score)
    bm25 = search(idx, None, "chatbot", mode="bm25", k=5)
    assert bm25 and all(h.chunk.product == "omni" for h in bm25)
    assert search(idx, q, "chatbot", ["nada"], k=5) == []  # type: ignore[arg-type]
