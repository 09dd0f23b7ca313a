"""Rasa's SQL tracker store with a lighter per-turn path (bot env).

Rasa 3.6's `SQLTrackerStore` costs, on every message: a `retrieve` through the ORM that builds
one `SQLEvent` object per stored event of the session, and a `save` that first runs
`SELECT count(*)` over the session's events (to know which of the tracker's events are new) and
then inserts the new ones through the ORM's unit of work. With one custom action per turn that
was about 30% of the Rasa server's CPU (py-spy, bench/assistant_bench.py).

`AtendeSQLTrackerStore` keeps the table (`events`, created by Rasa's own model: the console
reads it), the endpoint keys and the semantics, and changes how it gets there:

- `retrieve` selects only the `data` column of the last session (the same filter as Rasa: the
  events whose timestamp is at or after the latest `session_started`, ordered by id);
  `retrieve_full_tracker` selects every event of the conversation.
- `save` knows which events are new without counting: a tracker that this store loaded (or
  saved) carries how many of its events are stored, and the identity of the last of them. Only
  the events after it are inserted, in one multi-row INSERT. A tracker the store did not load
  (e.g. one built by the HTTP API) falls back to Rasa's own rule: count the stored events of
  the last session and insert the rest.

  Replicas: the count is taken from what this turn loaded, never from a per-process cache, so a
  conversation that another replica wrote since (the Redis lock store serialises the turns of a
  conversation across replicas) is read fresh on the next turn. Should two replicas ever save
  the same conversation concurrently without a lock, each appends only its own new events
  (Rasa's count-based rule would drop the second replica's events instead).
- Parsed events are kept per conversation (the last 1,000 conversations), keyed by the exact
  `data` text of their row: a retrieve still reads every row of the session from the database,
  and parses only the rows it has not seen (the new turn's, or those another replica wrote).
  Rows are never updated, and a row whose text differs is parsed again, so the result is what
  a full parse gives. Rasa's own trackers share event objects in the same way (`copy()`).
- SQLite: connections are pooled (SQLAlchemy 1.4 opens a new SQLite connection per session by
  default, and each new connection parses the whole schema again).
"""
from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Text

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event, SessionStarted, deserialise_events
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

logger = logging.getLogger(__name__)

SUPPORTED_DIALECTS = ("sqlite", "postgresql")

# Attribute set on trackers this store loaded or saved: (number of stored events, last stored event).
_STORED = "_atende_stored"
# How many conversations keep their parsed events.
PARSED_CACHE_CONVERSATIONS = 1000


class AtendeSQLTrackerStore(SQLTrackerStore):
    """`SQLTrackerStore` without the ORM and the COUNT query on the per-turn path."""

    def __init__(self, domain: Any = None, dialect: Text = "sqlite", **kwargs: Any) -> None:
        name = str(dialect or "").split("+")[0].lower()
        host = kwargs.get("host")
        if host and "://" in str(host):  # Rasa accepts a full URL as the host
            name = str(host).split("://", 1)[0].split("+")[0].lower()
        if name == "postgres":
            name = "postgresql"
        if name not in SUPPORTED_DIALECTS:
            raise ValueError(
                f"AtendeSQLTrackerStore supports the dialects {', '.join(SUPPORTED_DIALECTS)}; "
                f"got {name!r}"
            )
        super().__init__(domain=domain, dialect=dialect, **kwargs)
        if self.engine.dialect.name == "sqlite" and isinstance(self.engine.pool, sa.pool.NullPool):
            url = self.engine.url
            self.engine.dispose()
            # Rasa runs the store on its event loop thread; the pool hands a connection to one
            # thread at a time, so sharing it across threads is safe.
            self.engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=2, max_overflow=8,
                                           connect_args={"check_same_thread": False})
            self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self._table: sa.Table = self.SQLEvent.__table__
        # sender id -> {row data text: parsed event (None when Rasa skips the row)}, least recent first
        self._parsed: "OrderedDict[Text, Dict[Text, Optional[Event]]]" = OrderedDict()
        self._parsed_lock = threading.Lock()  # Rasa calls the store from its event loop; be safe anyway
        self._last_session_query = self._data_query(last_session_only=True)
        self._all_sessions_query = self._data_query(last_session_only=False)

    # -- queries -------------------------------------------------------------------------------

    def _data_query(self, last_session_only: bool) -> Any:
        t = self._table
        query = sa.select(t.c.data).where(t.c.sender_id == sa.bindparam("sender_id"))
        if last_session_only:
            session_start = (
                sa.select(sa.func.max(t.c.timestamp))
                .where(t.c.sender_id == sa.bindparam("sender_id"),
                       t.c.type_name == SessionStarted.type_name)
                .scalar_subquery()
            )
            query = query.where(sa.or_(t.c.timestamp >= session_start, session_start.is_(None)))
        return query.order_by(t.c.id)

    def _count_query(self) -> Any:
        t = self._table
        return sa.select(sa.func.count()).select_from(
            self._last_session_query.with_only_columns([t.c.id]).order_by(None).subquery()
        )

    # -- retrieve ------------------------------------------------------------------------------

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The tracker of the conversation's latest session, or None."""
        return self._load(sender_id, self._last_session_query)

    async def retrieve_full_tracker(self, conversation_id: Text) -> Optional[DialogueStateTracker]:
        """The tracker with every event of every session, or None."""
        return self._load(conversation_id, self._all_sessions_query)

    def _load(self, sender_id: Text, query: Any) -> Optional[DialogueStateTracker]:
        with self.engine.connect() as conn:
            rows = conn.execute(query, {"sender_id": sender_id}).fetchall()
        with self._parsed_lock:
            known = self._parsed.pop(sender_id, {})
        if not rows or not self.domain:
            logger.debug(f"Can't retrieve tracker matching sender id '{sender_id}' from SQL storage.")
            return None
        parsed: Dict[Text, Optional[Event]] = {}
        events: List[Event] = []
        for (data,) in rows:
            if data in parsed:
                event = parsed[data]
            elif data in known:
                event = parsed[data] = known[data]
            else:  # as DialogueStateTracker.from_dict does, one row at a time
                found = deserialise_events([json.loads(data)])
                event = parsed[data] = found[0] if found else None
            if event is not None:
                events.append(event)
        with self._parsed_lock:
            self._parsed[sender_id] = parsed
            while len(self._parsed) > PARSED_CACHE_CONVERSATIONS:
                self._parsed.popitem(last=False)
        tracker = DialogueStateTracker.from_events(sender_id, events, self.domain.slots)
        self._mark_stored(tracker)
        return tracker

    # -- save ----------------------------------------------------------------------------------

    async def create_tracker(self, sender_id: Text, append_action_listen: bool = True) -> DialogueStateTracker:
        tracker = await super().create_tracker(sender_id, append_action_listen=append_action_listen)
        self._mark_stored(tracker)
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Insert the tracker's events that are not stored yet."""
        await self.stream_events(tracker)
        stored = self._stored_count(tracker)
        if stored == len(tracker.events) or not tracker.events:  # nothing new: no transaction at all
            self._mark_stored(tracker)
            return
        with self.engine.begin() as conn:
            if stored is None:
                stored = conn.execute(self._count_query(), {"sender_id": tracker.sender_id}).scalar() or 0
            rows = self._rows(tracker, list(tracker.events)[stored:])
            if rows:
                conn.execute(self._table.insert(), rows)
        self._mark_stored(tracker)
        logger.debug(f"Tracker with sender_id '{tracker.sender_id}' stored to database")

    @staticmethod
    def _rows(tracker: DialogueStateTracker, events: List[Any]) -> List[Dict[Text, Any]]:
        rows = []
        for event in events:
            data = event.as_dict()
            rows.append({
                "sender_id": tracker.sender_id,
                "type_name": event.type_name,
                "timestamp": data.get("timestamp"),
                "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                "action_name": data.get("name"),
                "data": json.dumps(data),
            })
        return rows

    @staticmethod
    def _mark_stored(tracker: DialogueStateTracker) -> None:
        count = len(tracker.events)
        setattr(tracker, _STORED, (count, tracker.events[-1] if count else None))

    @staticmethod
    def _stored_count(tracker: DialogueStateTracker) -> Optional[int]:
        """How many of the tracker's events are stored, when this store knows; else None."""
        mark = getattr(tracker, _STORED, None)
        if mark is None or tracker._max_event_history is not None:
            return None
        count, last = mark
        if len(tracker.events) < count:
            return None
        if count and tracker.events[count - 1] is not last:
            return None
        return count


__all__ = ["AtendeSQLTrackerStore", "SUPPORTED_DIALECTS"]
