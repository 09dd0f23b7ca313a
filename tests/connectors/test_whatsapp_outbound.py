"""Outbound rendering and the durable store (pure: no server)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from pg_scratch import scratch_database
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "support"))

from fake_graph import validate_message  # noqa: E402

from connectors.whatsapp.outbound import render, split_text  # noqa: E402
from connectors.whatsapp.parse import InboundItem  # noqa: E402
from connectors.whatsapp.store import Store, make_engine  # noqa: E402


def _valid(out) -> None:  # type: ignore[no-untyped-def]
    for o in out:
        body = {"messaging_product": "whatsapp", "to": "5511987654321", **o.body}
        assert validate_message(body) == [], body


def test_split_at_4096_keeps_words_and_links() -> None:
    url = "https://docs.exemplo.com.br/gestor/nfe?x=1"
    text = ("palavra " * 700) + url + (" fim" * 300)
    chunks = split_text(text)
    assert all(len(c) <= 4096 for c in chunks) and len(chunks) == 2
    assert " ".join(chunks).split() == text.split()
    assert any(url in c for c in chunks)
    out = render({"text": text})
    assert [o.body["type"] for o in out] == ["text", "text"]
    _valid(out)


def test_hard_cut_without_spaces() -> None:
    chunks = split_text("x" * 10000)
    assert [len(c) for c in chunks] == [4096, 4096, 1808]


def test_three_options_become_reply_buttons_with_short_titles() -> None:
    out = render({"text": "Isso resolveu?", "buttons": [
        {"title": "Sim, resolveu meu problema", "payload": "/affirm"},
        {"title": "Não", "payload": "/deny"},
        {"title": "Sim, resolveu meu problemaaa", "payload": "/affirm2"}]})
    assert len(out) == 1
    inter = out[0].body["interactive"]
    assert inter["type"] == "button" and inter["body"]["text"] == "Isso resolveu?"
    titles = [b["reply"]["title"] for b in inter["action"]["buttons"]]
    assert all(len(t) <= 20 for t in titles) and len(set(titles)) == 3
    assert sorted(out[0].options.values()) == ["/affirm", "/affirm2", "/deny"]
    assert all(b["reply"]["id"].startswith(out[0].ref + ".") for b in inter["action"]["buttons"])
    _valid(out)


@pytest.mark.parametrize("n", [4, 7, 10])
def test_four_to_ten_options_become_a_list(n: int) -> None:
    opts = [{"title": f"Módulo número {i} com um nome bem comprido demais", "payload": f"/m{i}"} for i in range(n)]
    out = render({"text": "Qual módulo?", "buttons": opts})
    assert len(out) == 1 and out[0].body["interactive"]["type"] == "list"
    rows = out[0].body["interactive"]["action"]["sections"][0]["rows"]
    assert len(rows) == n
    assert all(len(r["title"]) <= 24 and len(r.get("description", "")) <= 72 for r in rows)
    assert rows[0]["description"].startswith("Módulo número 0")
    _valid(out)


def test_more_than_ten_options_become_several_lists() -> None:
    out = render({"text": "Escolha", "buttons": [{"title": f"Item {i}", "payload": f"/i{i}"} for i in range(23)]})
    assert [len(o.body["interactive"]["action"]["sections"][0]["rows"]) for o in out] == [10, 10, 3]
    _valid(out)


def test_link_buttons_stay_in_text_and_long_prompt_is_split() -> None:
    out = render({"text": "a " * 700, "buttons": [
        {"title": "Manual", "payload": "https://docs.exemplo.com.br/manual"},
        {"title": "Sim", "payload": "/affirm"}]})
    kinds = [o.body["type"] for o in out]
    assert kinds == ["text", "interactive"]
    # the prompt is longer than an interactive body (1024): it goes as text, with the link in it
    assert out[0].body["text"]["body"].endswith("Manual: https://docs.exemplo.com.br/manual")
    assert out[0].body["text"]["preview_url"] is True
    assert out[1].body["interactive"]["body"]["text"] == "Escolha uma opção:"
    assert len(out[1].body["interactive"]["action"]["buttons"]) == 1
    _valid(out)


def test_image_custom_and_empty() -> None:
    out = render({"image": "https://exemplo.com/a.png", "custom": {"whatsapp": {
        "type": "template", "template": {"name": "retomar_conversa", "language": {"code": "pt_BR"}}}}})
    assert [o.body["type"] for o in out] == ["template", "image"]
    _valid(out)
    assert render({"text": "   "}) == []


# ---- store ------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(make_engine(f"sqlite:///{tmp_path / 'wa.db'}"), unconfirmed_grace_s=0.2)
        s.create_tables()
        yield s
        return
    with scratch_database("wa_test") as url:
        s = Store(make_engine(url), unconfirmed_grace_s=0.2)
        s.create_tables()
        try:
            yield s
        finally:
            s.engine.dispose()


def _msg(mid: str, address: str = "5511987654321") -> InboundItem:
    return InboundItem(mid, "message", address, "rasa", text="oi", metadata={"whatsapp": {"message_id": mid}})


def test_replays_are_noops(store: Store) -> None:
    assert store.insert_items([_msg("w1"), _msg("w2")]) == 2
    assert store.insert_items([_msg("w1")]) == 0
    assert store.insert_items([_msg("w2"), _msg("w3")]) == 1
    row = store.next_pending("5511987654321")
    assert row is not None and row.item_id == "w1"


def test_statuses_never_move_backwards_and_131047_flags_template(store: Store) -> None:
    store.queue("w1", "5511987654321", render({"text": "olá"}) + render({"text": "tudo bem?"}))
    rows = store.pending_outbox("5511987654321")
    store.mark_accepted(rows[0].id, "wamid.out1")
    store.mark_accepted(rows[1].id, "wamid.out2")

    def status(wamid: str, st: str, code: int = 0) -> str:
        return store.apply_status({"wamid": wamid, "status": st,
                                   "errors": [{"code": code, "title": "x"}] if code else []})

    assert status("wamid.out1", "sent") == "None -> sent"
    assert status("wamid.out1", "read") == "sent -> read"
    assert status("wamid.out1", "delivered").startswith("ignored")
    assert status("wamid.out1", "failed").startswith("ignored")
    assert status("wamid.out2", "failed", 131047) == "None -> failed"
    assert status("wamid.out2", "delivered").startswith("ignored")
    assert status("wamid.unknown", "read") == "unknown message"
    with store.engine.connect() as c:
        got = c.execute(sa.text("select wamid, status, error_code, needs_template from whatsapp_outbox order by id")).all()
    assert [tuple(r) for r in got] == [("wamid.out1", "read", None, False), ("wamid.out2", "failed", 131047, True)]


def test_option_ids_resolve_only_for_their_recipient(store: Store) -> None:
    out = render({"text": "ok?", "buttons": [{"title": "Sim", "payload": "/affirm"}]})
    store.queue("w1", "5511987654321", out)
    oid = next(iter(out[0].options))
    assert store.resolve_option("5511987654321", oid) == "/affirm"
    assert store.resolve_option("5511000000000", oid) is None
    assert store.resolve_option("5511987654321", "callback_data") is None


def test_crash_mid_send_waits_for_confirmation_then_resends(store: Store) -> None:
    store.queue("w1", "55", render({"text": "um"}) + render({"text": "dois"}))
    first = store.pending_outbox("55")[0]
    store.mark_sending(first.id)
    assert store.recover_at_start() == 1
    assert store.pending_outbox("55") == []  # unconfirmed row blocks the later one (order)
    # Meta's status quoting the callback data proves the send happened: never resent
    assert store.apply_status({"wamid": "wamid.x", "status": "sent",
                               "biz_opaque_callback_data": f"atende-outbox:{first.id}"}) == "None -> sent"
    assert [r.idx for r in store.pending_outbox("55")] == [1]
    # without a confirmation the row is resent after the grace period
    second = store.pending_outbox("55")[0]
    store.mark_sending(second.id)
    store.recover_at_start()
    assert store.pending_outbox("55") == []
    time.sleep(0.3)
    assert [r.id for r in store.pending_outbox("55")] == [second.id]


def test_a_send_goes_to_the_phone_or_to_the_bsuid_as_recipient() -> None:
    from connectors.whatsapp.identity import recipient_fields

    assert recipient_fields("5511987654321") == {"to": "5511987654321"}
    assert recipient_fields("BR.1a2b3c") == {"recipient": "BR.1a2b3c"}  # a customer behind a username
