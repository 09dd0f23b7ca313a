"""The cost of WhatsApp messages (issue #15 item 4), bot env: Meta's ``pricing`` object of the
statuses is parsed (untrusted: never rejects the status), stored per message in
``whatsapp_pricing`` by the status handler, on SQLite and PostgreSQL, and through a real
``Worker`` over the fake Graph API. The payloads are in fixtures/whatsapp_pricing (source in its
README); the console's side is tests/helpdesk/test_wa_cost.py."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (bot env)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from atende_contract import tables, wa_pricing  # noqa: E402
from connectors.whatsapp.parse import parse_notification  # noqa: E402
from connectors.whatsapp.parse.pricing import MAX_REASON_CHARS, parse_pricing  # noqa: E402
from connectors.whatsapp.settings import WhatsAppSettings  # noqa: E402
from connectors.whatsapp.store import Store, make_engine  # noqa: E402
from connectors.whatsapp.store.engine import outbox, pricing  # noqa: E402
from connectors.whatsapp.store.pricing import status_time  # noqa: E402
from connectors.whatsapp.outbound import Outgoing  # noqa: E402
from connectors.whatsapp.worker import Worker  # noqa: E402
from fake_graph import FakeGraph  # noqa: E402

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "whatsapp_pricing"
CUSTOMER = "5511987654321"


def _fixture(name: str) -> Dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _statuses(doc: Dict[str, Any]) -> Any:
    return doc["entry"][0]["changes"][0]["value"]["statuses"]


def _with_pricing(value: Any, **status: Any) -> Dict[str, Any]:
    doc = _fixture("pmp_utility_template_sent.json")
    st = _statuses(doc)[0]
    st.update(status)
    if value is _ABSENT:
        st.pop("pricing")
    else:
        st["pricing"] = value
    return doc


_ABSENT = object()


# ---- the parser ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name,expected", [
    ("pmp_utility_template_sent.json", (True, "utility", "PMP", "regular")),
    ("pmp_service_free_customer_service_delivered.json", (False, "service", "PMP", "free_customer_service")),
    ("pmp_free_entry_point_read.json", (False, "referral_conversion", "PMP", "free_entry_point")),
    ("pmp_marketing_username_only.json", (True, "marketing", "PMP", "regular")),
    ("cbp_authentication_with_conversation.json", (True, "authentication", "CBP", None)),
])
def test_meta_reference_payloads_parse_to_their_pricing(name: str, expected: Any) -> None:
    [item] = parse_notification(_fixture(name)).items
    assert item.kind == "status" and item.action == "status"
    p = item.status["pricing"]
    assert (p["billable"], p["category"], p["pricing_model"], p["pricing_type"]) == expected
    assert p["reason"] is None
    st = _statuses(_fixture(name))[0]
    assert item.status["recipient"] == (st.get("recipient_id") or st["recipient_user_id"])


def test_a_status_without_pricing_has_none_and_both_statuses_of_one_message_are_kept() -> None:
    [item] = parse_notification(_with_pricing(_ABSENT)).items
    assert item.action == "status" and item.status["pricing"] is None
    items = parse_notification(_fixture("pmp_sent_then_delivered.json")).items
    assert [i.status["status"] for i in items] == ["sent", "delivered"]
    assert all(i.status["pricing"]["category"] == "utility" for i in items)


HUGE = "marketing" + "x" * 100_000


@pytest.mark.parametrize("value,fields,fragment", [
    (["utility"], (None, None, None, None), "is not an object"),
    ("utility", (None, None, None, None), "is not an object"),
    (7, (None, None, None, None), "is not an object"),
    ({}, (None, None, None, None), "no category"),
    ({"billable": "true", "category": "utility", "pricing_model": "PMP", "type": "regular"},
     (None, "utility", "PMP", "regular"), "billable 'true' dropped"),
    ({"billable": 1, "category": "utility", "pricing_model": "PMP", "type": "regular"},
     (None, "utility", "PMP", "regular"), "billable 1 dropped"),
    ({"billable": True, "category": HUGE, "pricing_model": "PMP", "type": "regular"},
     (True, None, "PMP", "regular"), "category 'marketingxxx"),
    ({"billable": True, "category": {"name": "utility"}, "pricing_model": "PMP", "type": "regular"},
     (True, None, "PMP", "regular"), "not a category name"),
    ({"billable": True, "category": "Marketing; DROP TABLE", "pricing_model": "PMP", "type": "regular"},
     (True, None, "PMP", "regular"), "not a category name"),
    ({"billable": True, "category": "premium_ai", "pricing_model": "PMP", "type": "regular"},
     (True, "premium_ai", "PMP", "regular"), "unknown category 'premium_ai'"),
    ({"billable": True, "category": "utility", "pricing_model": "XYZ", "type": "regular"},
     (True, "utility", "XYZ", "regular"), "unknown pricing_model 'XYZ'"),
    ({"billable": True, "category": "utility", "pricing_model": ["PMP"], "type": "regular"},
     (True, "utility", None, "regular"), "pricing_model ['PMP'] dropped"),
    ({"billable": True, "category": "utility", "pricing_model": "PMP", "type": 3.5},
     (True, "utility", "PMP", None), "type 3.5 dropped"),
    ({"billable": True, "category": "utility", "pricing_model": "PMP"},
     (True, "utility", "PMP", None), "no type"),
    ({"category": "utility", "pricing_model": "PMP", "type": "free_forever"},
     (None, "utility", "PMP", "free_forever"), "unknown type 'free_forever'"),
    ({"category": "utility", "pricing_model": "PMP", "type": "regular", "price": "9" * 5000},
     (None, "utility", "PMP", "regular"), None),  # fields nobody reads are not looked at
])
def test_untrusted_pricing_never_rejects_the_status(value: Any, fields: Any, fragment: Any) -> None:
    result = parse_notification(_with_pricing(value))  # never raises NotificationError
    [item] = result.items
    assert item.action == "status" and item.status["status"] == "sent"
    p = item.status["pricing"]
    assert (p["billable"], p["category"], p["pricing_model"], p["pricing_type"]) == fields
    if fragment is None:
        assert p["reason"] is None
    else:
        assert fragment in p["reason"]
        assert len(p["reason"]) <= MAX_REASON_CHARS
    assert all(len(v) <= 40 for v in (p["category"], p["pricing_type"]) if v)


def test_the_reason_stays_bounded_however_many_fields_are_bad() -> None:
    p = parse_pricing({"billable": "x" * 9000, "category": "y" * 9000, "pricing_model": "z" * 9000,
                       "type": "w" * 9000})
    assert p is not None and len(p["reason"]) <= MAX_REASON_CHARS
    assert p["billable"] is p["category"] is p["pricing_model"] is p["pricing_type"] is None


def test_charged_rule() -> None:
    assert wa_pricing.charged(True, "regular") is True
    assert wa_pricing.charged(None, "regular") is True  # PMP without the deprecated billable
    assert wa_pricing.charged(True, None) is True  # CBP
    assert wa_pricing.charged(True, "free_customer_service") is False  # the type wins
    assert wa_pricing.charged(False, None) is False
    assert wa_pricing.charged(None, None) is None and wa_pricing.charged(None, "novo") is None


@pytest.mark.parametrize("raw,expected", [
    ("1764680400", 1764680400.0), (1764680400, 1764680400.0), ("abc", None), (True, None), (None, None),
    ("12", None), ("99999999999", None), ([1], None), (" 1764680400 ", 1764680400.0)])
def test_status_time_is_meta_timestamp_when_plausible(raw: Any, expected: Any) -> None:
    now = 1_800_000_000.0
    assert status_time(raw, now) == (now if expected is None else expected)


# ---- the store ------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(make_engine(f"sqlite:///{tmp_path / 'wa.db'}", "NORMAL"))
        s.create_tables()
        yield s
        s.engine.dispose()
        return
    from pg_scratch import scratch_database
    with scratch_database("wa_price") as url:
        s = Store(make_engine(url))
        s.create_tables()
        yield s
        s.engine.dispose()


def _sent(store: Store, address: str, wamid: str) -> int:
    store.queue(f"push:{wamid}", address, [Outgoing({"type": "text", "text": {"body": "oi"}})])
    [row] = [r for r in store.pending_outbox(address) if r.source_key == f"push:{wamid}"]
    store.mark_accepted(row.id, wamid)
    return row.id


def _rows(store: Store) -> Dict[str, Dict[str, Any]]:
    with store.engine.connect() as c:
        return {r["wamid"]: dict(r) for r in c.execute(sa.select(pricing)).mappings()}


def _apply(store: Store, doc: Dict[str, Any]) -> list:
    return [store.apply_status(i.status) for i in parse_notification(doc).items]


def test_the_status_handler_stores_pricing_per_message(store: Store) -> None:
    doc = _fixture("pmp_sent_then_delivered.json")
    wamid = _statuses(doc)[0]["id"]
    rid = _sent(store, CUSTOMER, wamid)
    assert _apply(store, doc) == ["None -> sent", "sent -> delivered"]  # the statuses still apply
    row = _rows(store)[wamid]
    assert row == {"wamid": wamid, "recipient": CUSTOMER, "conversation": f"whatsapp:{CUSTOMER}",
                   "billable": True, "category": "utility", "pricing_model": "PMP", "pricing_type": "regular",
                   "reason": None, "recorded_at": 1764690000.0}  # the first status's time
    with store.engine.connect() as c:
        assert c.execute(sa.select(outbox.c.status).where(outbox.c.id == rid)).scalar() == "delivered"
    assert tables.WHATSAPP_PRICING == pricing.name


def test_a_later_status_updates_what_it_states_only(store: Store) -> None:
    wamid = "wamid.later"
    _sent(store, CUSTOMER, wamid)
    _apply(store, _with_pricing({"billable": True, "category": "utility", "pricing_model": "PMP", "type": "regular"},
                                id=wamid, status="sent"))
    # Meta's delivered status says more precisely it was free; a garbled one changes nothing
    _apply(store, _with_pricing({"billable": False, "category": "service", "pricing_model": "PMP",
                                 "type": "free_customer_service"}, id=wamid, status="delivered",
                                timestamp="1764690999"))
    _apply(store, _with_pricing(["garbage"], id=wamid, status="read"))
    row = _rows(store)[wamid]
    assert (row["billable"], row["category"], row["pricing_type"]) == (False, "service", "free_customer_service")
    assert row["reason"] == "pricing ['garbage'] is not an object"
    assert row["recorded_at"] == 1764680400.0  # never moved by a later status


def test_bad_pricing_is_stored_with_its_reason_and_the_status_still_applies(store: Store) -> None:
    wamid = "wamid.bad"
    rid = _sent(store, CUSTOMER, wamid)
    assert _apply(store, _with_pricing({"billable": "sim", "category": HUGE, "type": "regular"},
                                       id=wamid, status="delivered")) == ["None -> delivered"]
    row = _rows(store)[wamid]
    assert row["billable"] is None and row["category"] is None and row["pricing_type"] == "regular"
    assert "billable 'sim' dropped" in row["reason"] and "no pricing_model" in row["reason"]
    with store.engine.connect() as c:
        assert c.execute(sa.select(outbox.c.status).where(outbox.c.id == rid)).scalar() == "delivered"


def test_a_message_sent_elsewhere_is_priced_and_a_number_change_keeps_the_conversation(store: Store) -> None:
    # Meta charges messages sent to this number by other tools too: their statuses are unknown here
    doc = _fixture("pmp_marketing_username_only.json")
    assert _apply(store, doc) == ["unknown message"]
    bsuid = _statuses(doc)[0]["recipient_user_id"]
    row = _rows(store)[_statuses(doc)[0]["id"]]
    assert row["recipient"] == bsuid and row["conversation"] == f"whatsapp:{bsuid}"
    # the customer moved to a new number: its messages cost in the first number's conversation
    new = "5511912345678"
    store.set_alias(new, CUSTOMER)
    _sent(store, new, "wamid.new-number")
    _apply(store, _with_pricing({"category": "utility", "pricing_model": "PMP", "type": "regular"},
                                id="wamid.new-number", recipient_id=new, recipient_user_id=None))
    row = _rows(store)["wamid.new-number"]
    assert row["recipient"] == new and row["conversation"] == f"whatsapp:{CUSTOMER}"


def test_an_implausible_timestamp_records_the_arrival_time(store: Store) -> None:
    before = time.time()
    _apply(store, _with_pricing({"category": "utility", "pricing_model": "PMP", "type": "regular"},
                                id="wamid.future", timestamp="4102444800"))
    assert before - 1 <= _rows(store)["wamid.future"]["recorded_at"] <= time.time() + 1


# ---- the worker over the fake Graph API -------------------------------------------------------
class Quiet:
    def handler(self) -> Any:
        async def handle(_msg: Any) -> None:
            return None
        return handle

    def app(self) -> Any:
        agent = SimpleNamespace(is_ready=lambda: True, tracker_store=None)
        return SimpleNamespace(ctx=SimpleNamespace(agent=agent))


def test_worker_records_pricing_of_its_own_send(tmp_path: Path) -> None:
    async def main(graph: FakeGraph) -> None:
        settings = WhatsAppSettings(app_secret="s", access_token="test-token", phone_number_id="1122334455667",
                                    graph_url=graph.base_url, database_url=f"sqlite:///{tmp_path / 'w.db'}",
                                    retry_base_s=0.05, retry_max_s=0.2, graph_timeout_s=2.0, lease_s=3.0,
                                    resend_grace_s=0.5, sqlite_synchronous="NORMAL")
        worker = Worker(settings, {})
        rasa = Quiet()
        worker.start(rasa.app(), rasa.handler())
        try:
            with worker.store.engine.begin() as c:  # the customer wrote a minute ago: the window is open
                c.execute(sa.text("INSERT INTO whatsapp_inbox (item_id, kind, sender, state, data, attempts, "
                                  "received_at) VALUES ('wamid.in', 'message', :s, 'done', '{}', 1, :t)"),
                          {"s": CUSTOMER, "t": time.time() - 60})
            await worker.push(CUSTOMER, {"text": "Seu chamado #42 foi atualizado."})
            wamid = await _until(lambda: _accepted(worker))
            doc = copy.deepcopy(_fixture("pmp_service_free_customer_service_delivered.json"))
            _statuses(doc)[0]["id"] = wamid
            await worker.ingest(parse_notification(doc).items)
            worker.wake.set()
            row = await _until(lambda: _rows(worker.store).get(wamid))
            assert (row["category"], row["pricing_type"], row["billable"]) == ("service", "free_customer_service",
                                                                               False)
            assert row["conversation"] == f"whatsapp:{CUSTOMER}"
            with worker.store.engine.connect() as c:
                assert c.execute(sa.select(outbox.c.status).where(outbox.c.wamid == wamid)).scalar() == "delivered"
        finally:
            await worker.stop()

    with FakeGraph() as graph:
        asyncio.run(main(graph))


def _accepted(worker: Worker) -> Any:
    with worker.store.engine.connect() as c:
        return c.execute(sa.select(outbox.c.wamid).where(outbox.c.send_state == "accepted")).scalar()


async def _until(fn: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def _random_json(rng: Any, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 7, 2 ** 63, 1e308, float("nan"), 3.5])
    if kind == 3:
        return rng.choice(["utility", "PMP", "regular", "", " ", "x" * rng.randrange(1, 5000), "é\u0000\u202e",
                           "free_customer_service", "CBP", "null", "<script>"])
    if kind in (4, 5):
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(0, 60)))
    if kind in (6, 7):
        keys = ["billable", "category", "pricing_model", "type", "price", "currency"]
        return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(0, 6))}
    return [_random_json(rng, depth + 1) for _ in range(rng.randrange(0, 4))]


def test_random_pricing_objects_never_break_the_status(tmp_path: Path) -> None:
    import random

    rng = random.Random(15)
    store = Store(make_engine(f"sqlite:///{tmp_path / 'fuzz.db'}", "NORMAL"))
    store.create_tables()
    priced = 0
    try:
        for i in range(400):
            value = _random_json(rng)
            [item] = parse_notification(_with_pricing(value, id=f"wamid.fuzz{i}", status="delivered")).items
            assert item.action == "status"
            p = item.status["pricing"]
            assert p is not None or value is None
            if p is not None:
                priced += 1
                assert set(p) == {"billable", "category", "pricing_model", "pricing_type", "reason"}
                assert p["billable"] in (None, True, False)
                assert all(v is None or (isinstance(v, str) and len(v) <= 40)
                           for v in (p["category"], p["pricing_model"], p["pricing_type"]))
                assert p["reason"] is None or len(p["reason"]) <= MAX_REASON_CHARS
            assert store.apply_status(item.status) == "unknown message"
        assert len(_rows(store)) == priced > 300  # every priced status has its row
    finally:
        store.engine.dispose()
