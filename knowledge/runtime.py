"""Process-wide state: the embedding model and the live index, loaded once and reloaded on swap."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from atende_contract.text import MAX_MESSAGE_CHARS

from .answer import evidence, extractive_answer, idf_of, llm_answer, not_found
from .budget import llm_budget
from .cache import answer_cache
from .cache import key as cache_key
from .config import Settings
from .embed import Embedder, get_embedder
from .index import IndexNotFound, IndexStore, LoadedIndex
from .models import Answer
from .retrieve import Hit, search

log = logging.getLogger(__name__)

RETRIEVE_K = 8
# an LLM call is not started with less than this left of the question's deadline: extractive instead
MIN_LLM_TIME_S = 0.5


class Runtime:
    """One per index directory. `current()` returns the live index, reloading after a swap."""

    def __init__(self, index_dir: Path) -> None:
        self.store = IndexStore(index_dir)
        self._lock = threading.Lock()
        self._index: LoadedIndex | None = None
        self.index_loads = 0  # index versions loaded by this process (checked by the warm-start tests)

    def current(self) -> LoadedIndex | None:
        version = self.store.current_version()
        index = self._index
        if version is None:
            return index  # pointer vanished: keep serving what we have (or nothing)
        if index is not None and index.version == version:
            return index
        with self._lock:
            if self._index is None or self._index.version != version:
                try:
                    self._index = self.store.load(version)
                    self.index_loads += 1
                    log.info("knowledge index %s loaded (%d chunks)", version, len(self._index.chunks))
                except (IndexNotFound, OSError, ValueError, RuntimeError) as exc:
                    log.error("cannot load knowledge index %s: %s", version, exc)
            return self._index

    def embedder(self, index: LoadedIndex, settings: Settings) -> Embedder:
        # queries must use the model the index was built with
        return get_embedder(index.model_name or settings.embedding_model)

    def retrieve(self, question: str, products: Sequence[str] | None, settings: Settings,
                 k: int = RETRIEVE_K) -> tuple[LoadedIndex | None, list[Hit]]:
        index = self.current()
        if index is None or not index.chunks:
            return index, []
        return index, search(index, self.embedder(index, settings), question, products, k=k)


    def preload(self, settings: Settings) -> bool:
        """Load the live index and its embedding model now, and run one query through them (torch's
        first forward pass is slow), so the first customer question is as fast as the others.
        False when there is no index yet (nothing to warm: the model to load is the index's)."""
        index = self.current()
        if index is None:
            return False
        embedder = self.embedder(index, settings)
        if index.chunks:
            search(index, embedder, "como instalar", None, k=1)
        return True


_runtimes: dict[Path, Runtime] = {}
_runtimes_lock = threading.Lock()


def get_runtime(index_dir: Path) -> Runtime:
    key = Path(index_dir).resolve()
    with _runtimes_lock:
        rt = _runtimes.get(key)
        if rt is None:
            rt = _runtimes[key] = Runtime(key)
        return rt


def preload(index_dir: str | Path | None = None) -> bool:
    """Warm start: load the index and its model (knowledge/runtime.py `Runtime.preload`). Never raises."""
    started = time.monotonic()
    try:
        settings = Settings.from_env(index_dir)
        done = get_runtime(settings.index_dir).preload(settings)
    except Exception:  # noqa: BLE001 - a failed preload only means the first question loads lazily
        log.exception("knowledge preload failed; the first question will load the model and index")
        return False
    if done:
        log.info("knowledge model and index preloaded in %.1f s", time.monotonic() - started)
    else:
        log.info("knowledge preload: no index yet in %s", settings.index_dir)
    return done


def _cache_key(question: str, products: list[str] | None, index: LoadedIndex, settings: Settings) -> tuple:
    return cache_key(question, products, index.version, settings.openai_model)


def _cached(question: str, products: list[str] | None, index: LoadedIndex, settings: Settings) -> Answer | None:
    if settings.answer_cache_size <= 0:
        return None
    hit = answer_cache.get(_cache_key(question, products, index, settings), settings.answer_cache_ttl_s)
    return None if hit is None else replace(hit, llm_tokens=0, cached=True)


def answer(question: str, products: list[str] | None = None, *, index_dir: str | Path | None = None,
           conversation_id: str | None = None, timeout_s: float | None = None) -> Answer:
    """Answer a customer question from the documentation (see docs/contracts.md).

    conversation_id: the conversation asking; it gets at most KNOWLEDGE_LLM_CALLS_PER_HOUR LLM
    calls in any hour, then extractive answers (see knowledge/budget.py). None: no budget.
    timeout_s: overall deadline for the question; the LLM call gets what is left of it (no retry),
    and with less than MIN_LLM_TIME_S left, or once it runs out, the answer is extractive.
    Thread-safe: the action server calls it from a thread pool."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    settings = Settings.from_env(index_dir)
    mode = "llm" if settings.llm_enabled else "extractive"
    question = (question or "").strip()[:MAX_MESSAGE_CHARS]
    if not question:
        return not_found(mode)
    runtime = get_runtime(settings.index_dir)
    index, hits = runtime.retrieve(question, products, settings)
    if index is None or not hits:
        return not_found(mode)
    found = evidence(index, question, hits)
    if not found.strong(settings.llm_enabled):
        return not_found(mode)
    if settings.llm_enabled:
        cached = _cached(question, products, index, settings)
        if cached is not None:
            return cached  # a repeat question: no LLM call, no budget spent
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left < MIN_LLM_TIME_S:
            log.warning("%.1f s left of the question's deadline: answering extractively", max(left, 0.0))
            if not found.strong(False):
                return not_found("extractive")
        elif conversation_id is None or llm_budget.try_acquire(conversation_id, settings.llm_calls_per_hour):
            try:
                result = llm_answer(question, hits, settings, timeout_s=left, idf=idf_of(index))
            except Exception as exc:  # network, HTTP or API errors: fall back to the extractive answer
                log.warning("LLM unavailable (%s: %s); answering extractively", type(exc).__name__, exc)
            else:
                answer_cache.put(_cache_key(question, products, index, settings), result, settings.answer_cache_size)
                return result
        else:
            log.warning("conversation %s used its %d LLM calls of the last hour; answering extractively",
                        conversation_id, settings.llm_calls_per_hour)
            if not found.strong(False):  # without the LLM as second judge the stricter gate applies
                return not_found("extractive")
    return extractive_answer(question, hits)
