"""Fuzzing the WhatsApp parsers (Cloud API and Z-API) with deterministic mutations of the real
payloads in ../shared/fixtures/whatsapp, then the same kind of malformed deliveries, signed, through
the real webhook (the gateway process, which serves the same ``connectors.whatsapp.webhook`` code as Rasa's channel).

The properties (docs/whatsapp.md, "Malformed deliveries"):
- a parser raises nothing but ``NotificationError`` (the webhook's 400), whatever the body;
- whatever it accepts can be stored: sender ids are bounded strings (phones: ASCII digits; user
  ids: ``[A-Za-z0-9._-]``; Z-API: digits with a LID/group suffix), item ids fit their column, every
  string is valid UTF-8 without NUL, and no user text reaching Rasa starts with ``/``;
- over HTTP a malformed signed delivery gets 400 (never 500) and stores nothing.

The bounds are written out here rather than imported, so that this test states the contract.
"""

from __future__ import annotations

import copy
import json
import random
import re
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whatsapp_rasa import Gateway, notification, text_notification  # noqa: E402

from connectors.whatsapp.parse import (  # noqa: E402
    INBOUND_CALL_TEXT, MEDIA_RECEIVED_TEXT, InboundItem, NotificationError, parse_notification)
from connectors.whatsapp.store import Store  # noqa: E402
from connectors.whatsapp.parse import parse_callback  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "whatsapp"
if not FIXTURES.exists():
    FIXTURES = Path("/work/shared/fixtures/whatsapp")

MAX_ID = 64
PHONE = re.compile(r"[0-9]{1,64}")
USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ZAPI_ID = re.compile(r"[0-9][0-9a-z@.-]{0,63}")
SENDER_KEYS = ("from", "wa_id", "user_id", "from_user_id", "recipient_id", "recipient_user_id", "to",
               "phone", "chatLid", "senderLid")
ID_KEYS = ("id", "messageId", "ids", "event", "status")
COLUMN_CHARS = {"item_id": 255, "sender": 128, "button_id": 255, "kind": 16, "state": 16}
SEED = 20261122
TOKEN = "zapi-fuzz-secret"


# ---- seeds: the real payloads -------------------------------------------------------------------
def _meta_seeds() -> List[Tuple[str, Any]]:
    seeds = []
    for f in sorted((FIXTURES / "pywa").glob("*.json")):
        for name, body in json.loads(f.read_text()).items():
            seeds.append((f"pywa/{f.stem}:{name}", body))
    for f in sorted((FIXTURES / "meta_docs").glob("*.json")):
        seeds.append((f"meta_docs/{f.stem}", json.loads(f.read_text())))
    # shapes the fixtures lack: a BSUID-only sender, a user-initiated call, a status by user id
    bsuid = text_notification("5511900000001", "wamid.seed.bsuid", "oi")
    msg = bsuid["entry"][0]["changes"][0]["value"]["messages"][0]
    msg["from_user_id"] = msg.pop("from").replace("5511900000001", "BR.1234567890ABCDEF")
    bsuid["entry"][0]["changes"][0]["value"]["contacts"] = [{"user_id": "BR.1234567890ABCDEF",
                                                             "profile": {"name": "Ana"}}]
    seeds.append(("synthetic:bsuid_text", bsuid))
    seeds.append(("synthetic:user_call", notification("calls", {
        "contacts": [{"wa_id": "5511900000002", "profile": {"name": "C"}}],
        "calls": [{"id": "wacid.seed.1", "from": "5511900000002", "to": "551140040000", "event": "terminate",
                   "direction": "USER_INITIATED", "status": "COMPLETED", "duration": "42", "timestamp": "1"}]})))
    seeds.append(("synthetic:status_user_id", notification("messages", {"statuses": [{
        "id": "wamid.seed.out", "status": "failed", "timestamp": "1", "recipient_user_id": "US.998877",
        "biz_opaque_callback_data": "atende-outbox:7", "errors": [{"code": 131047, "title": "Re-engagement"}]}]})))
    return seeds


def _zapi_seeds() -> List[Tuple[str, Any]]:
    seeds = [(f"zapi/{f.stem}", json.loads(f.read_text())) for f in sorted((FIXTURES / "zapi").glob("*.json"))]
    # the status callbacks are several objects back to back, as in Z-API's docs
    raw = (FIXTURES / "zapi" / "zapi_message_status_callbacks.verbatim.txt").read_text()
    for i, chunk in enumerate(re.findall(r"^\{.*?^\}", raw, re.S | re.M)):
        seeds.append((f"zapi/status_callback_{i}", json.loads(chunk)))
    return seeds


META_SEEDS = _meta_seeds()
ZAPI_SEEDS = _zapi_seeds()
FOREIGN = [(f"ultramsg/{f.stem}", json.loads(f.read_text())) for f in sorted((FIXTURES / "ultramsg").glob("*.json"))]


# ---- mutations ----------------------------------------------------------------------------------
def _deep(depth: int) -> Any:
    v: Any = []
    for _ in range(depth):
        v = [v]
    return v


BAD_IDS = ["9" * 65, "9" * 10_000, "US." + "1" * 80, "+5511987654321", "55 11 98765-4321", "5511\n", "",
           "٥٥١١٩٨٧٦٥٤٣٢١", "55¹1", "US.1/../x", "whatsapp:5511", "a@b c", "\x00", "\ud800", "🙂", "<USER>",
           "BR.ok_id-1", "81896604192873@lid", "120363019502650977-group", "5511987654321"]

VALUES: List[Callable[[random.Random, Any], Any]] = [
    lambda r, v: None,
    lambda r, v: 0,
    lambda r, v: -1,
    lambda r, v: 10 ** 30,
    lambda r, v: 1.5,
    lambda r, v: float("nan"),
    lambda r, v: float("inf"),
    lambda r, v: True,
    lambda r, v: False,
    lambda r, v: "",
    lambda r, v: "x",
    lambda r, v: "/restart",
    lambda r, v: "²",
    lambda r, v: "\ud83d",  # half of a surrogate pair
    lambda r, v: "a\x00b",
    lambda r, v: "🙂" * r.randint(1, 300),
    lambda r, v: "x" * r.choice((100, 5_000, 200_000)),
    lambda r, v: "9" * r.choice((20, 65, 4_000)),
    lambda r, v: [],
    lambda r, v: {},
    lambda r, v: [None],
    lambda r, v: [[[]]],
    lambda r, v: {"a": {"b": [1, "2", None]}},
    lambda r, v: _deep(r.choice((5, 200))),
    lambda r, v: [v],
    lambda r, v: {"value": v},
    lambda r, v: [v, v],
    lambda r, v: str(v),
    lambda r, v: len(v) if isinstance(v, (str, list, dict)) else v,
    lambda r, v: list(v.values()) if isinstance(v, dict) else v,
    lambda r, v: v[0] if isinstance(v, list) and v else v,
    lambda r, v: int(v) if isinstance(v, str) and re.fullmatch(r"[0-9]{1,99}", v) else v,
    lambda r, v: (v * r.choice((2, 50))) if isinstance(v, str) and len(v) < 10_000 else v,
    lambda r, v: r.choice(BAD_IDS),
]


def _slots(doc: Any) -> List[Tuple[Any, Any]]:
    """Every (container, key) of ``doc`` below the root."""
    out: List[Tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                out.append((node, k))
                stack.append(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                out.append((node, i))
                stack.append(v)
    return out


def mutate(doc: Any, r: random.Random) -> Tuple[Any, List[str]]:
    """1-3 random mutations of a copy of ``doc``; returns it with a description of each."""
    doc = copy.deepcopy(doc)
    done: List[str] = []
    for _ in range(r.randint(1, 3)):
        slots = _slots(doc)
        if not slots or r.random() < 0.03:
            doc = r.choice(VALUES)(r, doc)
            done.append("root replaced")
            continue
        ids = [s for s in slots if s[1] in SENDER_KEYS or s[1] in ID_KEYS]
        parent, key = r.choice(ids) if ids and r.random() < 0.35 else r.choice(slots)
        op = r.random()
        if op < 0.12 and isinstance(parent, dict):
            del parent[key]
            done.append(f"del {key!r}")
        elif op < 0.18 and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]) if r.random() < 0.5 else r.choice(VALUES)(r, None))
            done.append(f"list item added at {key}")
        elif op < 0.22 and isinstance(parent, dict):
            parent[r.choice(("text", "from", "errors", "statuses", "calls", "messages", "contacts", "type"))] = \
                r.choice(VALUES)(r, None)
            done.append("key added")
        else:
            fn = r.choice(VALUES)
            parent[key] = fn(r, parent[key])
            done.append(f"{key!r} replaced")
    return doc, done


# ---- what an accepted result must be ----------------------------------------------------------
def _printable_text(value: Any, where: str, problems: List[str]) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(f"{where} is not valid UTF-8")
        if "\x00" in value:
            problems.append(f"{where} holds NUL")


def item_problems(item: InboundItem, zapi: bool) -> List[str]:
    problems: List[str] = []
    address = item.address
    address_ok = isinstance(address, str) and len(address) <= MAX_ID and (
        (ZAPI_ID if zapi else USER_ID).fullmatch(address) is not None or address == "unknown")
    if item.kind in ("message", "call") and not zapi:
        wa = (item.metadata or {}).get("whatsapp") or {}
        wa_id, user_id = wa.get("wa_id"), wa.get("user_id")
        address_ok = address_ok and address in (wa_id, user_id)
        if wa_id is not None and not (isinstance(wa_id, str) and PHONE.fullmatch(wa_id)):
            problems.append(f"metadata wa_id {wa_id!r:.60} is not a bounded phone")
        if user_id is not None and not (isinstance(user_id, str) and USER_ID.fullmatch(user_id)):
            problems.append(f"metadata user_id {user_id!r:.60} is not a bounded user id")
    if not address_ok:
        problems.append(f"address {address!r:.60} is not a bounded id")
    if not (isinstance(item.item_id, str) and item.item_id):
        problems.append("item id is not a string")
    if item.button_id is not None and not isinstance(item.button_id, str):
        problems.append("button id is not a string")
    if item.action == "rasa":
        if not isinstance(item.text, str) or not item.text:
            problems.append("no text for Rasa")
        elif item.text.startswith(("/", "\\")) and item.text not in (INBOUND_CALL_TEXT, MEDIA_RECEIVED_TEXT):
            problems.append(f"user text reaches Rasa as an intent: {item.text!r:.60}")
    if item.action == "ignore" and not (isinstance(item.reason, str) and 0 < len(item.reason) < 1000):
        problems.append("ignored without a bounded reason")
    try:
        (row,) = Store._rows([item])  # exactly what the inbox would store
        json.loads(row["data"])
    except Exception as exc:  # not JSON-serialisable, ...
        return problems + [f"cannot be stored: {exc!r:.100}"]
    for col, value in row.items():
        _printable_text(value, col, problems)
        if col in COLUMN_CHARS and value is not None:
            if not isinstance(value, str):
                problems.append(f"{col} is a {type(value).__name__}, not a string")
            elif len(value) > COLUMN_CHARS[col]:
                problems.append(f"{col} longer than its column ({len(value)} > {COLUMN_CHARS[col]})")
    return problems


def run_fuzz(seeds: List[Tuple[str, Any]], parse: Callable[[Any], Any], n: int, seed: int,
             zapi: bool) -> Dict[str, Any]:
    r = random.Random(seed)
    stats = {"accepted": 0, "rejected": 0, "items": 0}
    failures: List[str] = []
    for i in range(n):
        name, base = seeds[i % len(seeds)] if i < len(seeds) else r.choice(seeds)
        doc, how = (copy.deepcopy(base), ["unchanged"]) if i < len(seeds) else mutate(base, r)
        snapshot = copy.deepcopy(doc) if i % 25 == 0 else None
        try:
            result = parse(doc)
        except NotificationError:
            stats["rejected"] += 1
            continue
        except Exception as exc:
            failures.append(f"{name} {how}: raised {type(exc).__name__}: {exc}"[:300])
            continue
        stats["accepted"] += 1
        stats["items"] += len(result.items)
        if snapshot is not None and doc != snapshot:
            failures.append(f"{name} {how}: the parser mutated its input")
        for reason in result.ignored:
            if not (isinstance(reason, str) and len(reason) < 1000):
                failures.append(f"{name} {how}: unbounded ignored reason")
        for item in result.items:
            failures += [f"{name} {how}: {p}" for p in item_problems(item, zapi)]
    assert not failures, f"{len(failures)} failures in {n} mutations, e.g.:\n" + "\n".join(failures[:15])
    return stats


def test_cloud_api_parser_survives_mutations_of_the_real_payloads() -> None:
    t0 = time.monotonic()
    stats = run_fuzz(META_SEEDS + FOREIGN, parse_notification, 6000, SEED, zapi=False)
    # the fuzz must exercise both sides: many mutants are accepted (and checked), many rejected
    assert stats["accepted"] > 1000 and stats["rejected"] > 1000 and stats["items"] > 500, stats
    assert time.monotonic() - t0 < 20


def test_zapi_parser_survives_mutations_of_the_real_payloads() -> None:
    stats = run_fuzz(ZAPI_SEEDS + FOREIGN, parse_callback, 3000, SEED + 1, zapi=True)
    assert stats["accepted"] > 500 and stats["rejected"] > 300, stats


def test_the_unchanged_seeds_are_accepted() -> None:
    """The fuzz starts from valid payloads: each real one parses (checked like the mutants)."""
    for name, doc in META_SEEDS:
        for item in parse_notification(doc).items:
            assert item_problems(item, zapi=False) == [], name
    for name, doc in ZAPI_SEEDS:
        for item in parse_callback(doc).items:
            assert item_problems(item, zapi=True) == [], name
    assert len(META_SEEDS) == 78 and len(ZAPI_SEEDS) == 14


# ---- through the real webhook -------------------------------------------------------------------
@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway alone (nobody to wake): what it stores is what the inbox holds."""
    wd = tmp_path_factory.mktemp("wa-fuzz")
    gw = Gateway(wd, wd / "atende.db", extra_env={"ZAPI_WEBHOOK_TOKEN": TOKEN}).start()
    yield gw
    gw.stop()


def inbox(gw: Gateway) -> List[Tuple[str, str]]:
    with sqlite3.connect(gw.db_path, timeout=30) as c:
        return c.execute("select item_id, sender from whatsapp_inbox order by id").fetchall()


def post_zapi(gw: Gateway, body: bytes) -> Tuple[int, Any]:
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"{gw.url}/webhooks/whatsapp/zapi?token={TOKEN}", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def _text(**change: Callable[[Dict[str, Any]], Any]) -> Callable[[], bytes]:
    def build() -> bytes:
        doc = text_notification("5511977770000", "wamid.fuzz.bad", "oi")
        value = doc["entry"][0]["changes"][0]["value"]
        for fn in change.values():
            fn(value)
        return json.dumps(doc).encode()
    return build


MALFORMED: Dict[str, Callable[[], bytes]] = {
    "entry is an object": lambda: json.dumps({"object": "whatsapp_business_account", "entry": {"a": 1}}).encode(),
    "changes item is a string": lambda: json.dumps({"object": "whatsapp_business_account",
                                                    "entry": [{"changes": ["messages"]}]}).encode(),
    "value.messages is a string": _text(m=lambda v: v.__setitem__("messages", "oi")),
    "message.text is a string": _text(m=lambda v: v["messages"][0].__setitem__("text", "oi")),
    "message.text.body is an int": _text(m=lambda v: v["messages"][0]["text"].__setitem__("body", 42)),
    "contacts[0].wa_id is a list (sender by user id)": _text(m=lambda v: (
        v["messages"][0].__setitem__("from_user_id", v["messages"][0].pop("from") and "US.1"),
        v["contacts"][0].__setitem__("wa_id", ["5511977770000"]))),
    "value.errors is a number": _text(e=lambda v: v.__setitem__("errors", 7)),
    "message.interactive.button_reply is a string": _text(m=lambda v: v["messages"][0].update(
        type="interactive", interactive={"type": "button_reply", "button_reply": "sim"})),
    "a lone surrogate in the text": _text(m=lambda v: v["messages"][0]["text"].__setitem__("body", "oi \ud800")),
    "statuses[0].errors is a number": lambda: json.dumps(notification("messages", {"statuses": [{
        "id": "wamid.fuzz.st", "status": "failed", "recipient_id": "5511977770000", "errors": 5}]})).encode(),
    "statuses[0].recipient_id is an object": lambda: json.dumps(notification("messages", {"statuses": [{
        "id": "wamid.fuzz.st", "status": "read", "recipient_id": {"wa_id": "5511977770000"}}]})).encode(),
    "calls[0].duration is a list": lambda: json.dumps(notification("calls", {"calls": [{
        "id": "wacid.fuzz", "from": "5511977770000", "event": "terminate", "duration": [60]}]})).encode(),
    "calls is an object": lambda: json.dumps(notification("calls", {"calls": {"id": "wacid.fuzz"}})).encode(),
    "nested 100,000 lists deep": lambda: b"[" * 100_000 + b"]" * 100_000,
}


def test_signed_malformed_deliveries_get_400_and_store_nothing(gateway: Gateway) -> None:
    for name, build in MALFORMED.items():
        status, body = gateway.post(build())
        assert status == 400, f"{name}: {status} {body}"
        assert isinstance(body, dict) and body.get("error"), name
    assert inbox(gateway) == []


def test_out_of_bounds_sender_ids_skip_their_item_only(gateway: Gateway) -> None:
    good = text_notification("5511977771111", "wamid.fuzz.good", "oi")
    value = good["entry"][0]["changes"][0]["value"]
    for i, bad in enumerate(("9" * 65, "5511 97777", "٥٥١١٩٧٧٧٧", "US.x/y")):
        value["messages"].append({"from": bad, "id": f"wamid.fuzz.skip{i}", "type": "text", "text": {"body": "oi"}})
    value["statuses"] = [{"id": "wamid.fuzz.out", "status": "read", "recipient_id": "x" * 500}]
    assert gateway.post(json.dumps(good).encode()) == (200, {"status": "ok", "items": 1, "new": 1})
    assert [r for r in inbox(gateway) if r[0].startswith("wamid.fuzz.")] == [("wamid.fuzz.good", "5511977771111")]


def test_malformed_zapi_callbacks_get_400_and_store_nothing(gateway: Gateway) -> None:
    def received(**kw: Any) -> bytes:
        return json.dumps({"type": "ReceivedCallback", "messageId": "ZFUZZ1", "phone": "5511977772222",
                           "fromMe": False, "isGroup": False, **kw}).encode()

    before = inbox(gateway)
    for name, body in {
        "text.message is a number": received(text={"message": 5}),
        "text is a list": received(text=["oi"]),
        "phone is a number": received(phone=5511977772222, text={"message": "oi"}),
        "fromMe is a string": received(fromMe="false", text={"message": "oi"}),
        "buttonsResponseMessage.buttonId is an object": received(buttonsResponseMessage={"buttonId": {}}),
        "chatLid is a list": received(chatLid=["1@lid"], text={"message": "oi"}),
        "status ids hold a number": json.dumps({"type": "MessageStatusCallback", "status": "READ",
                                                "ids": [1]}).encode(),
        "a lone surrogate": received(text={"message": "\udfff"}),
        "nested too deep": b"[" * 100_000 + b"]" * 100_000,
    }.items():
        status, payload = post_zapi(gateway, body)
        assert status == 400, f"{name}: {status} {payload}"
    assert post_zapi(gateway, received(phone="9" * 200, text={"message": "oi"})) == (
        200, {"status": "ok", "items": 0, "new": 0})  # out of bounds: skipped, nothing stored
    assert inbox(gateway) == before


def test_fuzzed_deliveries_over_http_get_200_or_400_and_store_what_the_parser_accepted(gateway: Gateway) -> None:
    """Signed mutants through the real webhook: never a 500, 400 exactly when the parser says
    malformed, and the inbox holds exactly the items of the accepted ones."""
    r = random.Random(SEED + 2)
    expected: Set[str] = {row[0] for row in inbox(gateway)}
    for _ in range(300):
        name, base = r.choice(META_SEEDS)
        doc, how = mutate(base, r)
        body = json.dumps(doc).encode()
        if len(body) > 1024 * 1024:
            continue
        try:
            parsed: Optional[Any] = parse_notification(json.loads(body))
        except NotificationError:
            parsed = None
        status, payload = gateway.post(body)
        assert status == (400 if parsed is None else 200), f"{name} {how}: {status} {payload}"
        if parsed is not None:
            expected |= {i.item_id for i in parsed.items}
    assert {row[0] for row in inbox(gateway)} == expected
