"""Points in the worker's crash windows where a test harness can step in (no-op in production).

The worker calls ``current()`` at two moments that the exactly-once argument of docs/whatsapp.md
is about: after Rasa handled a message (its turn is saved, the inbox row is still pending) and
after the provider accepted a send (the outbox row still says ``sending``). Production never
installs anything, and nothing here reads the environment: the crash tests start Rasa through
their own launcher (tests/connectors/wa_faults.py), which calls ``install`` with hooks that kill
the process in those windows.
"""

from __future__ import annotations


class WorkerHooks:
    """The default: do nothing."""

    def after_rasa(self, item_id: str, attempts: int) -> None:
        """Rasa handled inbox item ``item_id`` (``attempts`` earlier attempts); replies not queued yet."""

    def after_accepted(self, outbox_id: int, attempt: int) -> None:
        """The provider accepted outbox row ``outbox_id`` (send number ``attempt``); not recorded yet."""


_current = WorkerHooks()


def current() -> WorkerHooks:
    return _current


def install(hooks: WorkerHooks) -> WorkerHooks:
    """Use ``hooks`` from now on (test harnesses only); returns the previous ones."""
    global _current
    previous, _current = _current, hooks
    return previous
