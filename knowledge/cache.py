"""Repeat questions answered once: a process-wide cache of LLM answers.

Key: the question normalised (accents, case, punctuation and spacing folded), the product scope
(as a set), the index version and the LLM model. So the cache is invalidated by construction when
an ingestion swaps the index (a new version), and a change of model or of scope misses. Only what
the LLM itself decided is cached (a grounded answer, or its "not found"): extractive fallbacks after
a timeout, an error or a spent budget are not, so the next asker gets the LLM again.

Bounded (LRU, `KNOWLEDGE_ANSWER_CACHE_SIZE`, default 1024 entries; 0 turns it off) and with a
time-to-live (`KNOWLEDGE_ANSWER_CACHE_TTL_S`, default 86400), read through knowledge.config.Settings.
Answers hold no personal data of the asker (they are built from the documentation only), so one
customer's cached answer can be served to another.
"""
from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from typing import Callable, Sequence

from .models import Answer
from .text import fold

_PUNCT = re.compile(r"[^\w\s-]+")


def normalise(question: str) -> str:
    return " ".join(_PUNCT.sub(" ", fold(question or "")).split())


def key(question: str, products: Sequence[str] | None, index_version: str, model: str) -> tuple:
    scope = tuple(sorted({(p or "").strip().lower() for p in products or [] if p and p.strip()}))
    return normalise(question), scope, index_version, model


class AnswerCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[tuple, tuple[float, Answer]] = OrderedDict()
        self._lock = threading.Lock()
        self._clock = clock
        self.hits = 0
        self.misses = 0

    def get(self, k: tuple, ttl_s: float) -> Answer | None:
        now = self._clock()
        with self._lock:
            item = self._data.get(k)
            if item is None or now - item[0] > ttl_s:
                if item is not None:
                    del self._data[k]
                self.misses += 1
                return None
            self._data.move_to_end(k)
            self.hits += 1
            return item[1]

    def put(self, k: tuple, value: Answer, size: int) -> None:
        if size <= 0:
            return
        with self._lock:
            self._data[k] = (self._clock(), value)
            self._data.move_to_end(k)
            while len(self._data) > size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


answer_cache = AnswerCache()
