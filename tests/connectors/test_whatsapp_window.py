"""The 24-hour window (issue #15 item 3): the store's window rule, templates per purpose, the
held free text and template rejections. Store and pure tests, then ``Worker`` objects over SQLite
with a recording assistant standing in for Rasa and the fake Graph API on loopback (the journey
over real Rasa is tests/conversation/test_whatsapp_window.py)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (bot env)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from atende_contract import tables, wa_window  # noqa: E402
from connectors.whatsapp import templates  # noqa: E402
from connectors.whatsapp.parse import InboundItem  # noqa: E402
from connectors.whatsapp.parse.statuses import status_item  # noqa: E402
from connectors.whatsapp.settings import WhatsAppSettings  # noqa: E402
from connectors.whatsapp.store import Store, make_engine  # noqa: E402
from connectors.whatsapp.store.engine import inbox, outbox, windows  # noqa: E402
from connectors.whatsapp.worker import Worker  # noqa: E402
from fake_graph import FakeGraph  # noqa: E402

pytestmark = pytest.mark.timeout(120)

CONFIG = json.dumps({
    "ticket_update": {"name": "atualizacao_chamado", "language": "pt_BR",
                      "parameters": ["ticket_number", "technician", "text"]},
    "satisfaction": {"name": "avaliacao_atendimento", "parameters": ["ticket_number"]},
})
TPL = templates.parse_config(CONFIG)
CUSTOMER = "5511987650001"
REPLY = {"text": "Ana: o backup foi restaurado.", "custom": {"purpose": "ticket_update",
                                                            "params": {"ticket_number": "#42", "technician": "Ana"}}}


# ---- the rule, the tables, the status parser -------------------------------------------------
def test_window_rule_last_message_plus_24h_or_meta_expiration() -> None:
    now = 1_800_000_000.0
    assert not wa_window.is_open(None, None, now)
    assert wa_window.is_open(now - 23 * 3600, None, now)
    assert not wa_window.is_open(now - 25 * 3600, None, now)
    assert wa_window.is_open(now - 25 * 3600, now + 60, now)  # Meta's conversation still open
    assert wa_window.window_until(now - 3600, now + 60) == now - 3600 + 24 * 3600


def test_tables_the_console_reads_exist() -> None:
    assert inbox.name == tables.WHATSAPP_INBOX and set(tables.WHATSAPP_INBOX_COLUMNS) <= set(inbox.c.keys())
    assert windows.name == tables.WHATSAPP_WINDOWS
    assert set(tables.WHATSAPP_WINDOWS_COLUMNS) <= set(windows.c.keys())


@pytest.mark.parametrize("raw,expected", [
    ("1900000000", 1_900_000_000.0), (1900000000, 1_900_000_000.0),
    ("-1", None), ("99999999999999", None), ("abc", None), (True, None), ({"x": 1}, None), ("12", None)])
def test_status_expiration_is_parsed_and_bounded(raw: Any, expected: Any) -> None:
    st = {"id": "wamid.A", "status": "sent", "recipient_id": CUSTOMER,
          "conversation": {"id": "c1", "expiration_timestamp": raw, "origin": {"type": "service"}}}
    assert status_item(st).status["conversation_expires_at"] == expected


# ---- configuration and the untrusted purpose ---------------------------------------------------
@pytest.mark.parametrize("raw,fragment", [
    ("{", "not JSON"), ("[]", "JSON object"), ('{"marketing": {"name": "x"}}', "unknown purpose"),
    ('{"ticket_update": {"name": "Bad Name"}}', "name must be"),
    ('{"ticket_update": {"name": "ok", "language": "pt-br"}}', "bad language"),
    ('{"ticket_update": {"name": "ok", "parameters": ["cpf"]}}', "parameters must be"),
    ('{"ticket_update": "x"}', "must be an object")])
def test_bad_template_configuration_is_refused_clearly(raw: str, fragment: str) -> None:
    with pytest.raises(templates.TemplateConfigError, match=fragment):
        templates.parse_config(raw)


def test_no_configuration_means_no_templates() -> None:
    assert templates.parse_config(None) == {} and templates.parse_config("  ") == {}
    assert TPL["satisfaction"].language == "pt_BR"


def test_purpose_and_params_from_custom_are_validated() -> None:
    assert templates.purpose_of({"custom": {"purpose": "drop table"}}) == (None, {})
    assert templates.purpose_of({"custom": "ticket_update"}) == (None, {})
    purpose, params = templates.purpose_of({"custom": {"purpose": "ticket_update", "params": {
        "ticket_number": "42; DROP", "technician": "A\nna\t" + "x" * 200, "cpf": "123"}}})
    assert purpose == "ticket_update" and "ticket_number" not in params and "cpf" not in params
    assert "\n" not in params["technician"] and len(params["technician"]) == 60
    assert params["technician"].endswith("…")
    assert templates.purpose_of({"custom": {"purpose": "satisfaction", "params": {"ticket_number": "42"}}})[1] \
        == {"ticket_number": "#42"}


def test_inside_the_window_the_message_goes_as_rendered() -> None:
    [m] = templates.plan(REPLY, True, TPL)
    assert m.kind == "text" and not m.hold


def test_outside_the_window_the_template_goes_and_the_text_is_held() -> None:
    long = {**REPLY, "text": "linha 1\n\nlinha\t2 " + "y" * 2000}
    tpl, held = templates.plan(long, False, TPL)
    assert tpl.kind == "template" and not tpl.hold
    t = tpl.body["template"]
    assert t["name"] == "atualizacao_chamado" and t["language"] == {"code": "pt_BR"}
    values = [p["text"] for p in t["components"][0]["parameters"]]
    assert values[:2] == ["#42", "Ana"]
    assert len(values[2]) == templates.PARAM_MAX["text"] and values[2].endswith("…")
    assert values[2].startswith("linha 1 linha 2 y") and "\n" not in values[2] and "\t" not in values[2]
    assert held.hold and not held.needs_template and held.kind == "text"
    assert held.body["text"]["body"].startswith("linha 1\n\nlinha")  # the free text is kept whole


def test_outside_the_window_without_a_template_the_text_needs_one() -> None:
    [held] = templates.plan({**REPLY, "custom": {"purpose": "handoff_return"}}, False, TPL)
    assert held.hold and held.needs_template and "handoff_return" in (held.reason or "")
    [held] = templates.plan({"text": "oi"}, False, TPL)
    assert held.needs_template and "sem finalidade" in (held.reason or "")


# ---- the store ---------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(make_engine(f"sqlite:///{tmp_path / 'wa.db'}", "NORMAL"))
        s.create_tables()
        yield s
        s.engine.dispose()
        return
    from pg_scratch import scratch_database
    with scratch_database("wa_win") as url:
        s = Store(make_engine(url))
        s.create_tables()
        yield s
        s.engine.dispose()


def _message(mid: str, text: str, sender: str = CUSTOMER) -> InboundItem:
    return InboundItem(mid, "message", sender, "rasa", text=text, metadata={"whatsapp": {"message_id": mid}})


def _age(store: Store, sender: str, hours: float) -> None:
    with store.engine.begin() as c:
        c.execute(sa.update(inbox).where(inbox.c.sender == sender).values(received_at=time.time() - hours * 3600))


def test_store_window_follows_the_last_message_and_meta_expiration(store: Store) -> None:
    assert store.window_of(CUSTOMER).until is None and not store.window_of(CUSTOMER).is_open()
    store.insert_items([_message("wamid.1", "oi")])
    assert store.window_of(CUSTOMER).is_open()
    _age(store, CUSTOMER, 25)
    assert not store.window_of(CUSTOMER).is_open()
    # a status of one of our sends carries Meta's expiration: later ones extend, older never shorten
    store.queue("push:x", CUSTOMER, templates.plan({"text": "a"}, True, TPL))
    [rid] = [r.id for r in store.pending_outbox(CUSTOMER)]
    store.mark_accepted(rid, "wamid.out")
    later = time.time() + 3600
    for exp in (later, later - 7200):
        store.apply_status({"wamid": "wamid.out", "status": "sent", "conversation_expires_at": exp})
    assert store.window_of(CUSTOMER).expires_at == later and store.window_of(CUSTOMER).is_open()
    assert store.window_of("5511000000000").expires_at is None  # per address


def test_held_rows_are_not_sent_until_released(store: Store) -> None:
    store.queue("push:y", CUSTOMER, templates.plan(REPLY, False, TPL))
    pending = store.pending_outbox(CUSTOMER)
    assert [r.body["type"] for r in pending] == ["template"]
    assert list(store.held(CUSTOMER).values())[0]["needs_template"] is False
    assert store.release_held(CUSTOMER) == 1
    assert [r.body["type"] for r in store.pending_outbox(CUSTOMER)] == ["template", "text"]
    assert store.held(CUSTOMER) == {}


RATING = {"text": "Como avalia o atendimento do chamado #42?",
          "custom": {"purpose": "satisfaction", "params": {"ticket_number": "#42"}}}


def test_a_refused_template_does_not_hold_later_messages_behind_it(store: Store) -> None:
    """Meta refused the template (132xxx, at send or by a failed status): its held text stays held
    (the console shows it as not delivered), but nothing waits behind it any more."""
    store.queue("push:a", CUSTOMER, templates.plan(REPLY, False, TPL))
    [tpl] = store.pending_outbox(CUSTOMER)
    assert store.template_awaiting(CUSTOMER)
    store.mark_rejected(tpl.id, 132001, "Template name does not exist in the translation")
    assert not store.template_awaiting(CUSTOMER)
    assert len(store.held(CUSTOMER)) == 1  # still visible as not delivered
    # a template Meta accepted and later failed (status) releases nothing either
    store.queue("push:b", CUSTOMER, templates.plan(RATING, False, TPL))
    [tpl2] = store.pending_outbox(CUSTOMER)
    store.mark_accepted(tpl2.id, "wamid.tpl2")
    assert store.template_awaiting(CUSTOMER)
    store.apply_status({"wamid": "wamid.tpl2", "status": "failed",
                        "errors": [{"code": 132015, "title": "Template is paused"}]})
    assert not store.template_awaiting(CUSTOMER)
    # text held quietly behind a template that is then refused no longer counts as awaiting
    store.queue("push:c", CUSTOMER, templates.plan(REPLY, False, TPL))
    [tpl3] = store.pending_outbox(CUSTOMER)
    store.queue("push:d", CUSTOMER, templates.plan({"text": "De 1 a 5?"}, False, TPL, template_awaiting=True))
    assert store.template_awaiting(CUSTOMER)
    store.mark_rejected(tpl3.id, 132000, "Number of parameters does not match")
    assert not store.template_awaiting(CUSTOMER)
    assert len(store.held(CUSTOMER)) == 4
    assert store.template_awaiting("5511000000000") is False


# ---- the worker over the fake Graph API ---------------------------------------------------------
class EchoAssistant:
    """Stands in for Rasa: answers every message with ``eco: <text>``."""

    def handler(self) -> Any:
        async def handle(msg: Any) -> None:
            await msg.output_channel.send_text_message(msg.sender_id, f"eco: {msg.text}")
        return handle

    def app(self) -> Any:
        class TrackerStore:
            async def retrieve(self, _sender: str) -> Any:
                return None
        agent = SimpleNamespace(is_ready=lambda: True, tracker_store=TrackerStore())
        return SimpleNamespace(ctx=SimpleNamespace(agent=agent))


def _settings(graph: FakeGraph, url: str) -> WhatsAppSettings:
    return WhatsAppSettings(app_secret="s", access_token="test-token", phone_number_id="1122334455667",
                            graph_url=graph.base_url, database_url=url, retry_base_s=0.05, retry_max_s=0.2,
                            graph_timeout_s=2.0, lease_s=3.0, resend_grace_s=0.5, sqlite_synchronous="NORMAL")


async def _wait(cond: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cond():
        await asyncio.sleep(0.05)


def _sent(graph: FakeGraph) -> List[Dict[str, Any]]:
    return [r.body for r in graph.sent() if r.body.get("to") == CUSTOMER and r.body.get("status") != "read"]


@pytest.fixture()
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as g:
        yield g


def _run(graph: FakeGraph, tmp_path: Path, scenario: Any) -> None:
    async def main() -> None:
        worker = Worker(_settings(graph, f"sqlite:///{tmp_path / 'w.db'}"), TPL)
        rasa = EchoAssistant()
        worker.start(rasa.app(), rasa.handler())
        try:
            await scenario(worker)
        finally:
            await worker.stop()
    asyncio.run(main())


def test_late_reply_goes_as_template_and_the_text_follows_the_customer(graph: FakeGraph, tmp_path: Path) -> None:
    async def scenario(worker: Worker) -> None:
        await worker.ingest([_message("wamid.in1", "oi")])
        worker.wake.set()
        await _wait(lambda: len(_sent(graph)) == 1)
        await worker.db(_age, worker.store, CUSTOMER, 25)
        await worker.push(CUSTOMER, REPLY)
        await _wait(lambda: len(_sent(graph)) == 2)
        await asyncio.sleep(0.5)
        bodies = _sent(graph)
        assert len(bodies) == 2 and bodies[1]["type"] == "template"  # no free text outside the window
        params = [p["text"] for p in bodies[1]["template"]["components"][0]["parameters"]]
        assert params == ["#42", "Ana", "Ana: o backup foi restaurado."]
        assert len(worker.store.held(CUSTOMER)) == 1
        await worker.ingest([_message("wamid.in2", "ok, obrigado")])
        worker.wake.set()
        await _wait(lambda: len(_sent(graph)) == 4)
        texts = [b["text"]["body"] for b in _sent(graph)[2:]]
        assert texts == ["Ana: o backup foi restaurado.", "eco: ok, obrigado"]  # held text first
        assert worker.store.held(CUSTOMER) == {}
    _run(graph, tmp_path, scenario)


def test_without_a_template_nothing_is_sent_and_the_reason_is_kept(graph: FakeGraph, tmp_path: Path) -> None:
    async def scenario(worker: Worker) -> None:
        await worker.ingest([_message("wamid.in1", "oi")])
        worker.wake.set()
        await _wait(lambda: len(_sent(graph)) == 1)
        await worker.db(_age, worker.store, CUSTOMER, 25)
        await worker.push(CUSTOMER, {"text": "Voltando ao assistente.", "custom": {"purpose": "handoff_return"}})
        await asyncio.sleep(1.0)
        assert len(_sent(graph)) == 1
        [row] = worker.store.held(CUSTOMER).values()
        assert row["needs_template"] and "sem modelo configurado para 'handoff_return'" in row["reason"]
    _run(graph, tmp_path, scenario)


def test_a_template_meta_rejects_is_stored_with_its_reason_and_not_retried(graph: FakeGraph,
                                                                           tmp_path: Path) -> None:
    async def scenario(worker: Worker) -> None:
        graph.inject(code=132001, times=5)  # template name does not exist in the translation
        await worker.push(CUSTOMER, REPLY)  # never wrote: no window
        await _wait(lambda: any(r.status == 400 for r in graph.requests))
        await asyncio.sleep(1.0)
        attempts = [r for r in graph.requests if (r.body or {}).get("type") == "template"]
        assert len(attempts) == 1  # rejected once, never retried
        with worker.store.engine.connect() as c:
            rows = c.execute(sa.select(outbox.c.kind, outbox.c.send_state, outbox.c.error_code,
                                       outbox.c.error_title).order_by(outbox.c.id)).all()
        assert rows[0].kind == "template" and rows[0].send_state == "rejected" and rows[0].error_code == 132001
        assert rows[0].error_title
        assert rows[1].send_state == "held"  # the free text still waits for the customer
    _run(graph, tmp_path, scenario)


def test_after_a_refused_template_the_next_message_tries_its_own(graph: FakeGraph, tmp_path: Path) -> None:
    """The ticket update's template is refused (132001). A message without a template of its own
    that follows is not held quietly behind the refused one: it is marked as needing a template
    (the console shows it). The rating request then gets its own template, and the refused one is
    never resent."""
    async def scenario(worker: Worker) -> None:
        graph.inject(code=132001, times=1)
        await worker.push(CUSTOMER, REPLY)  # never wrote: no window
        await _wait(lambda: len(worker.store.held(CUSTOMER)) == 1 and not worker.store.pending_outbox(CUSTOMER))
        await worker.push(CUSTOMER, {"text": "De 1 a 5?", "buttons": [{"title": "5", "payload": "/rate"}]})
        await worker.push(CUSTOMER, RATING)
        await _wait(lambda: len(_sent(graph)) >= 1)
        await asyncio.sleep(1.0)
        names = [r.body["template"]["name"] for r in graph.requests
                 if isinstance(r.body, dict) and r.body.get("type") == "template"]
        assert names == ["atualizacao_chamado", "avaliacao_atendimento"]  # the refused one only once
        assert all(b.get("type") == "template" for b in _sent(graph))  # no free text outside the window
        held = list(worker.store.held(CUSTOMER).values())
        assert [h["needs_template"] for h in held] == [False, True, False]
        assert "sem finalidade" in (held[1]["reason"] or "")
        with worker.store.engine.connect() as c:
            states = c.execute(sa.select(outbox.c.kind, outbox.c.send_state).order_by(outbox.c.id)).all()
        assert [tuple(r) for r in states] == [("template", "rejected"), ("text", "held"), ("interactive", "held"),
                                              ("template", "accepted"), ("text", "held")]
        assert worker.store.template_awaiting(CUSTOMER)  # the rating's template now awaits the answer
    _run(graph, tmp_path, scenario)


def test_templates_come_from_the_settings_and_a_bad_one_stops_the_worker(graph: FakeGraph, tmp_path: Path) -> None:
    env = {"WHATSAPP_TEMPLATES": CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}"}
    settings = WhatsAppSettings.from_env(env)
    assert templates.parse_config(settings.templates_json) == TPL
    bad = WhatsAppSettings.from_env({**env, "WHATSAPP_TEMPLATES": '{"ticket_update": {"name": "X"}}'})
    with pytest.raises(templates.TemplateConfigError):
        Worker(bad)


def test_purpose_from_the_response_rasa_uttered() -> None:
    """Rasa hands the output channel the response's name and arguments with the message."""
    msg = {"text": "Ana: pronto.", "utter_action": "utter_agent_reply", "agent_name": "Ana",
           "agent_text": "pronto.", "ticket_number": "7"}
    assert templates.purpose_of(msg) == ("ticket_update", {"ticket_number": "#7", "technician": "Ana"})
    assert templates.purpose_of({"utter_action": "utter_ticket_closed", "ticket_number": "9"}) == \
        ("satisfaction", {"ticket_number": "#9"})
    assert templates.purpose_of({"utter_action": "utter_greet"}) == (None, {})
    assert templates.purpose_of({"utter_action": ["utter_agent_reply"]}) == (None, {})  # unhashable: no crash


def test_a_message_after_a_sent_template_waits_behind_it_quietly() -> None:
    rating = {"text": "De 1 a 5?", "buttons": [{"title": "1", "payload": "/rate"}]}
    [held] = templates.plan(rating, False, TPL, template_awaiting=True)
    assert held.hold and not held.needs_template and held.kind == "interactive"
    [held] = templates.plan(rating, False, TPL, template_awaiting=False)
    assert held.needs_template


def test_the_fake_graph_refuses_template_parameters_meta_refuses() -> None:
    from fake_graph import validate_message
    base = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "template"}
    for bad in ("a\nb", "a\tb", "a     b", "", "x" * 1025):
        body = {**base, "template": {"name": "t", "language": {"code": "pt_BR"},
                                     "components": [{"type": "body", "parameters": [{"type": "text", "text": bad}]}]}}
        assert validate_message(body), bad
    [good] = templates.plan({**REPLY, "text": "a\n\tb" + " " * 8 + "c" * 3000}, False, TPL)[:1]
    assert validate_message({**base, **good.body}) == []


def test_the_tables_the_console_reads_include_the_aliases() -> None:
    from connectors.whatsapp.store.engine import aliases
    assert aliases.name == tables.WHATSAPP_ALIASES
    assert set(tables.WHATSAPP_ALIASES_COLUMNS) <= set(aliases.c.keys())


def test_zapi_has_no_window_the_free_text_goes_at_once(tmp_path: Path) -> None:
    """With WHATSAPP_PROVIDER=zapi (a WhatsApp Web session: no 24-hour window, no templates) a late
    message is sent as rendered, never as a template and never held."""
    from fake_graph import FakeZapi
    from connectors.whatsapp.settings import ZapiSettings

    with FakeZapi() as z:
        settings = WhatsAppSettings(
            database_url=f"sqlite:///{tmp_path / 'z.db'}", retry_base_s=0.05, retry_max_s=0.2, graph_timeout_s=2.0,
            lease_s=3.0, resend_grace_s=0.5, sqlite_synchronous="NORMAL", provider="zapi",
            zapi=ZapiSettings(instance_id=z.instance_id, instance_token=z.instance_token,
                              client_token=z.client_token, base_url=z.base_url))

        async def main() -> None:
            worker = Worker(settings, TPL)
            rasa = EchoAssistant()
            worker.start(rasa.app(), rasa.handler())
            try:
                await worker.push(CUSTOMER, REPLY)  # the customer never wrote
                await _wait(lambda: len(z.requests) >= 1)
                await asyncio.sleep(0.5)
            finally:
                await worker.stop()
            assert worker.store.held(CUSTOMER) == {}
        asyncio.run(main())
        assert len(z.requests) == 1 and "o backup foi restaurado" in json.dumps(z.requests[0].__dict__,
                                                                                 ensure_ascii=False)
