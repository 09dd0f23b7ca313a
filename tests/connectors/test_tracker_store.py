"""connectors.tracker_store.AtendeSQLTrackerStore against Rasa's own SQLTrackerStore.

Each scenario runs on both stores, each on its own fresh database (SQLite and PostgreSQL); the
retrieved trackers and the rows of the `events` table must be the same.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from connectors.tracker_store import AtendeSQLTrackerStore
from pg_scratch import scratch_database

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, inform_cnpj]
entities: [cnpj]
slots:
  cnpj:
    type: text
    influence_conversation: false
    mappings: [{type: from_entity, entity: cnpj}]
responses:
  utter_greet: [{text: "Olá!"}]
""")

run = asyncio.run


@contextlib.contextmanager
def database(kind: str) -> Iterator[Callable[[], str]]:
    """Yields a factory of fresh database URLs of the given kind."""
    if kind == "sqlite":
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            n = iter(range(100))
            yield lambda: f"sqlite:///{Path(tmp) / f'db{next(n)}.db'}"
        return
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(scratch_database("ts_test"))


def make(cls: type, url: str) -> SQLTrackerStore:
    if url.startswith("sqlite:///"):
        return cls(domain=DOMAIN, dialect="sqlite", db=url[len("sqlite:///"):])
    return cls(domain=DOMAIN, dialect="postgresql", host=url)


@pytest.fixture(params=["sqlite", "postgresql"])
def urls(request: Any) -> Iterator[Callable[[], str]]:
    with database(request.param) as factory:
        yield factory


def turn(tracker: DialogueStateTracker, text: str, t: float, cnpj: str | None = None) -> None:
    """One user turn: message, optional slot, bot reply, listen."""
    entities = [{"entity": "cnpj", "value": cnpj, "start": 0, "end": len(cnpj)}] if cnpj else []
    tracker.update(UserUttered(text, {"name": "greet", "confidence": 0.99}, entities, timestamp=t))
    if cnpj:
        tracker.update(SlotSet("cnpj", cnpj, timestamp=t + 0.01))
    tracker.update(ActionExecuted("utter_greet", timestamp=t + 0.02))
    tracker.update(BotUttered("Olá!", {"elements": None}, {"utter_action": "utter_greet"}, timestamp=t + 0.02))
    tracker.update(ActionExecuted("action_listen", timestamp=t + 0.03))


def session_start(tracker: DialogueStateTracker, t: float) -> None:
    tracker.update(ActionExecuted("action_session_start", timestamp=t))
    tracker.update(SessionStarted(timestamp=t + 0.001))
    tracker.update(ActionExecuted("action_listen", timestamp=t + 0.002))


def rows(store: SQLTrackerStore) -> list[tuple]:
    with store.engine.connect() as conn:
        result = conn.execute(sa.text(
            "SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id"))
        return [tuple(r) for r in result]


def dump(tracker: DialogueStateTracker | None) -> Any:
    if tracker is None:
        return None
    return [e.as_dict() for e in tracker.events], tracker.current_slot_values(), tracker.latest_message.text


def conversation(store: SQLTrackerStore, t0: float) -> list[Any]:
    """A conversation as Rasa's processor drives it: retrieve, update, save, for three turns, then a
    new session; returns what the store hands back along the way."""
    seen = []
    tracker = run(store.get_or_create_tracker("5511999990001", append_action_listen=False))
    session_start(tracker, t0)
    turn(tracker, "oi", t0 + 1)
    run(store.save(tracker))
    for i, cnpj in enumerate((None, "11222333000181")):
        tracker = run(store.retrieve("5511999990001"))
        seen.append(dump(tracker))
        turn(tracker, f"mensagem {i}", t0 + 2 + i, cnpj)
        run(store.save(tracker))
        run(store.save(tracker))  # saving again stores nothing twice
    tracker = run(store.retrieve("5511999990001"))
    session_start(tracker, t0 + 100)  # the session expired: a new one starts on the same tracker
    turn(tracker, "voltei", t0 + 101)
    run(store.save(tracker))
    seen.append(dump(run(store.retrieve("5511999990001"))))
    seen.append(dump(run(store.retrieve_full_tracker("5511999990001"))))
    seen.append(dump(run(store.retrieve("nobody"))))
    seen.append(sorted(run(store.keys())))
    return seen


def test_conversation_round_trips_equal_rasas_store(urls: Callable[[], str]) -> None:
    t0 = time.time()
    rasa, ours = make(SQLTrackerStore, urls()), make(AtendeSQLTrackerStore, urls())
    theirs_seen, ours_seen = conversation(rasa, t0), conversation(ours, t0)
    assert ours_seen == theirs_seen
    assert rows(ours) == rows(rasa)
    # the last session only: from its session_started on, with the slot it set
    last = run(ours.retrieve("5511999990001"))
    assert [e.type_name for e in last.events][:2] == ["session_started", "action"]
    assert last.get_slot("cnpj") is None and last.latest_message.text == "voltei"
    full = run(ours.retrieve_full_tracker("5511999990001"))
    assert len(full.events) == len(rows(ours)) == 23
    assert [e.type_name for e in full.events].count("session_started") == 2


def test_tracker_not_loaded_by_the_store_is_saved_as_rasa_does(urls: Callable[[], str]) -> None:
    """A tracker built elsewhere (HTTP API, another process) is appended after the stored events of
    the last session, as Rasa's count-based rule does."""
    t0 = time.time()
    stores = make(SQLTrackerStore, urls()), make(AtendeSQLTrackerStore, urls())
    for store in stores:
        first = store.init_tracker("web-1")
        session_start(first, t0)
        turn(first, "oi", t0 + 1)
        run(store.save(first))
        rebuilt = DialogueStateTracker.from_events("web-1", list(first.events), DOMAIN.slots)
        turn(rebuilt, "tudo bem?", t0 + 2, "11222333000181")
        run(store.save(rebuilt))
    assert rows(stores[1]) == rows(stores[0])
    # Rasa's rule counts the session's events from session_started on, so the action_session_start
    # before it shifts the slice by one and the last stored event is stored again: 7 + 1 + 5
    assert len(rows(stores[1])) == 13
    assert run(stores[1].retrieve("web-1")).get_slot("cnpj") == "11222333000181"


def test_two_replicas_on_one_database(urls: Callable[[], str]) -> None:
    url, t0 = urls(), time.time()
    a, b = make(AtendeSQLTrackerStore, url), make(AtendeSQLTrackerStore, url)
    tracker = run(a.get_or_create_tracker("5511999990002", append_action_listen=False))
    session_start(tracker, t0)
    turn(tracker, "oi", t0 + 1)
    run(a.save(tracker))
    # turns alternate between replicas (as the Redis lock store orders them)
    for i, (store, other) in enumerate(((b, a), (a, b), (b, a))):
        tracker = run(store.retrieve("5511999990002"))
        turn(tracker, f"turno {i}", t0 + 2 + i, "11222333000181" if i == 1 else None)
        run(store.save(tracker))
        assert dump(run(other.retrieve("5511999990002"))) == dump(tracker)
    assert len(rows(a)) == 7 + 4 + 5 + 4
    # A keeps an old tracker object: saving it after B wrote must not duplicate or lose events
    stale = run(a.retrieve("5511999990002"))
    fresh = run(b.retrieve("5511999990002"))
    turn(fresh, "de b", t0 + 10)
    run(b.save(fresh))
    turn(stale, "de a", t0 + 11)
    run(a.save(stale))
    texts = [e.text for e in run(b.retrieve("5511999990002")).events if isinstance(e, UserUttered)]
    assert texts == ["oi", "turno 0", "turno 1", "turno 2", "de b", "de a"]
    assert len(rows(a)) == 20 + 2 * 4


def test_parsed_events_never_outlive_their_rows(urls: Callable[[], str]) -> None:
    """The store keeps parsed events between retrieves; what it returns is still exactly the rows."""
    url, t0 = urls(), time.time()
    ours, other = make(AtendeSQLTrackerStore, url), make(AtendeSQLTrackerStore, url)
    tracker = run(ours.get_or_create_tracker("5511999990003", append_action_listen=False))
    session_start(tracker, t0)
    turn(tracker, "oi", t0 + 1)
    run(ours.save(tracker))
    first = run(ours.retrieve("5511999990003"))
    turn(first, "nunca salvo", t0 + 2, "11222333000181")  # changes to a returned tracker stay there
    again = run(ours.retrieve("5511999990003"))
    assert dump(again) == dump(run(make(SQLTrackerStore, url).retrieve("5511999990003")))
    assert again.get_slot("cnpj") is None and len(again.events) == len(first.events) - 5
    # the conversation is erased and written again by another replica (SQLite may reuse the ids)
    with ours.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM events WHERE sender_id = '5511999990003'"))
    assert run(ours.retrieve("5511999990003")) is None
    rewritten = run(other.get_or_create_tracker("5511999990003", append_action_listen=False))
    session_start(rewritten, t0 + 5)
    turn(rewritten, "outra conversa", t0 + 6, "11222333000181")
    run(other.save(rewritten))
    fresh = make(SQLTrackerStore, url)
    for store in (ours, other):
        assert dump(run(store.retrieve("5511999990003"))) == dump(run(fresh.retrieve("5511999990003")))
    assert run(ours.retrieve("5511999990003")).get_slot("cnpj") == "11222333000181"


def test_parsed_events_kept_for_a_bounded_number_of_conversations(urls: Callable[[], str], monkeypatch: Any) -> None:
    import connectors.tracker_store as module

    monkeypatch.setattr(module, "PARSED_CACHE_CONVERSATIONS", 3)
    url, t0 = urls(), time.time()
    store = make(AtendeSQLTrackerStore, url)
    for i in range(6):
        tracker = run(store.get_or_create_tracker(f"c{i}"))
        turn(tracker, f"oi {i}", t0 + i)
        run(store.save(tracker))
        run(store.retrieve(f"c{i}"))
    assert list(store._parsed) == ["c3", "c4", "c5"]
    fresh = make(SQLTrackerStore, url)
    for i in range(6):  # evicted or not, the same trackers
        assert dump(run(store.retrieve(f"c{i}"))) == dump(run(fresh.retrieve(f"c{i}")))


def test_loaded_by_rasa_from_endpoint_config(urls: Callable[[], str]) -> None:
    url = urls()
    kwargs: dict[str, Any] = ({"dialect": "sqlite", "db": url[len("sqlite:///"):]} if url.startswith("sqlite")
                              else {"dialect": "postgresql"})
    config = EndpointConfig(url=None if url.startswith("sqlite") else url,
                            type="connectors.tracker_store.AtendeSQLTrackerStore", **kwargs)
    store = TrackerStore.create(config, DOMAIN)
    assert isinstance(store, AtendeSQLTrackerStore)  # not Rasa's silent in-memory fallback
    tracker = run(store.get_or_create_tracker("x"))
    turn(tracker, "oi", time.time())
    run(store.save(tracker))
    assert sa.inspect(store.engine).get_table_names() == ["events"]
    assert len(rows(store)) == 1 + 4  # the created tracker's action_listen, then the turn


def test_unknown_dialect_is_a_clear_error(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="supports the dialects sqlite, postgresql; got 'mysql'"):
        AtendeSQLTrackerStore(domain=DOMAIN, dialect="mysql", db=str(tmp_path / "x.db"))
    with pytest.raises(ValueError, match="got 'oracle"):
        AtendeSQLTrackerStore(domain=DOMAIN, host="oracle://u@h/db")
    assert list(tmp_path.iterdir()) == []  # nothing created
