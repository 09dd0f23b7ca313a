"""Embedding model: loaded once per process (per model name), thread-safe encode."""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from .config import threads

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

QUERY_CACHE_SIZE = 4096
# torch intra-op threads (knowledge.config.threads), set explicitly on every call: the OpenMP thread count is per calling thread
# and shared with FAISS (knowledge.retrieve sets FAISS to one thread, which used to leave torch on one
# thread too in the importing thread, and on the default in every other thread).
# One short question is too small a job to split across cores: on a shared 2-core machine a second
# intra-op thread mostly waits for a busy core (see bench/knowledge_bench.py). Batches use every core.
_models: dict[str, "Embedder"] = {}
_models_lock = threading.Lock()
# how many models this process has loaded (tests check that a preloaded model is not loaded again)
model_loads = 0


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block on n intra-op threads, then restore the calling thread's previous setting."""
    import torch

    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)


class Embedder:
    def __init__(self, name: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.model: SentenceTransformer = SentenceTransformer(name, device="cpu")
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        lowered = name.lower()
        # e5 models expect "query: " / "passage: " prefixes
        self._e5 = "e5" in lowered
        self._lock = threading.Lock()
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.query_threads = threads().query
        self.batch_threads = threads().embed
        # the direct single-text path needs sentence-transformers' preprocess() (>= 5)
        self._direct = callable(getattr(self.model, "preprocess", None))

    def encode(self, texts: list[str], *, is_query: bool = False, batch_size: int = 64,
               show_progress: bool = False, threads: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._e5:
            texts = [("query: " if is_query else "passage: ") + t for t in texts]
        with self._lock, torch_threads(threads or self.batch_threads):
            vecs = self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=show_progress)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def _encode_one(self, text: str) -> np.ndarray:
        """One text through the model's modules, without encode()'s batching machinery (length sort,
        per-batch bookkeeping), on `query_threads` intra-op threads. Same vector as encode([text])."""
        import torch

        if self._e5:
            text = "query: " + text
        with self._lock, torch_threads(self.query_threads), torch.inference_mode():
            out = self.model(self.model.preprocess([text]))
            vec = torch.nn.functional.normalize(out["sentence_embedding"], p=2, dim=1)[0]
        return np.ascontiguousarray(vec.float().numpy(), dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector, with a bounded LRU cache (customers repeat questions)."""
        with self._lock:
            hit = self._query_cache.get(text)
            if hit is not None:
                self._query_cache.move_to_end(text)
                return hit
        if self._direct:
            vec = self._encode_one(text)
        else:
            vec = self.encode([text], is_query=True, threads=self.query_threads)[0]
        vec.setflags(write=False)  # shared through the cache: nobody may modify it
        with self._lock:
            self._query_cache[text] = vec
            if len(self._query_cache) > QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return vec

    def prime_queries(self, texts: list[str]) -> None:
        """Embed many queries in one batch and keep them in the query cache (evaluation)."""
        vecs = self.encode(list(dict.fromkeys(texts)), is_query=True)
        with self._lock:
            for text, vec in zip(dict.fromkeys(texts), vecs):
                self._query_cache[text] = vec
            while len(self._query_cache) > max(QUERY_CACHE_SIZE, len(texts)):
                self._query_cache.popitem(last=False)

    def clear_query_cache(self) -> None:
        with self._lock:
            self._query_cache.clear()

    def encode_batches(self, texts: list[str], block: int = 2048) -> Iterable[np.ndarray]:
        for start in range(0, len(texts), block):
            yield self.encode(texts[start:start + block])


def get_embedder(name: str) -> Embedder:
    """The process-wide model of that name. Concurrent first callers wait for one load (the lock
    is held while loading); every later call only reads the dict under the lock."""
    global model_loads
    with _models_lock:
        emb = _models.get(name)
        if emb is None:
            log.info("loading embedding model %s", name)
            emb = Embedder(name)
            _models[name] = emb
            model_loads += 1
        return emb
