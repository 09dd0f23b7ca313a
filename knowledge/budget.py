"""Per-conversation budget of LLM calls in a sliding hour (in process, bounded).

`knowledge_queries` records each question with its conversation but not whether the LLM was
called, so the calls are counted here, in the answering process: each action server keeps its own
count (with N action servers a conversation gets at most N times the budget) and a restart starts
from zero. Memory is bounded: at most `limit` timestamps per conversation and `max_conversations`
conversations; past that, the conversation touched least recently is forgotten first.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Callable

WINDOW_S = 3600.0
MAX_CONVERSATIONS = 20_000


class CallBudget:
    def __init__(self, window_s: float = WINDOW_S, max_conversations: int = MAX_CONVERSATIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.max_conversations = max_conversations
        self._clock = clock
        self._calls: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def try_acquire(self, key: str, limit: int) -> bool:
        """Record one call for key if fewer than limit were made in the window; False otherwise.
        limit 0 means no limit (nothing is recorded)."""
        if limit <= 0:
            return True
        now = self._clock()
        with self._lock:
            calls = self._calls.get(key)
            if calls is None:
                calls = self._calls[key] = deque()
            self._calls.move_to_end(key)
            while calls and calls[0] <= now - self.window_s:
                calls.popleft()
            while len(calls) > limit:  # the limit was lowered since: keep only what can matter
                calls.popleft()
            if len(calls) >= limit:
                return False
            calls.append(now)
            while len(self._calls) > self.max_conversations:
                self._calls.popitem(last=False)
            return True

    def used(self, key: str) -> int:
        """Calls recorded for key in the current window."""
        now = self._clock()
        with self._lock:
            return sum(1 for t in self._calls.get(key, ()) if t > now - self.window_s)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


llm_budget = CallBudget()
