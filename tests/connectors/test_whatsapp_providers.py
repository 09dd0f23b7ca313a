"""Both WhatsApp providers keep to the worker's contract (connectors/whatsapp/providers/base.py).

The worker only calls what ``Provider`` declares. ``typing.runtime_checkable`` checks that the
members exist; this test also compares every member's signature (parameter names, kinds,
defaults, resolved annotations, return type, coroutine or not) with the Protocol's, so a provider
whose ``mark_read`` loses ``typing`` or whose ``send`` is renamed or becomes synchronous fails here
rather than in production. The last tests send through each provider to a real loopback server.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import typing
from pathlib import Path
from typing import Any, Iterator, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fake_graph import FakeGraph, FakeZapi  # noqa: E402

from connectors.whatsapp.providers import GraphClient, Provider, ZapiClient, provider_for  # noqa: E402
from connectors.whatsapp.providers.base import SendResult  # noqa: E402
from connectors.whatsapp.settings import WhatsAppSettings, ZapiSettings  # noqa: E402

PROVIDERS = [GraphClient, ZapiClient]


def _members(protocol: type) -> List[str]:
    return sorted(n for n, v in vars(protocol).items() if inspect.isfunction(v) and not n.startswith("_"))


def drift(cls: type, protocol: type = Provider) -> List[str]:
    """How ``cls`` differs from ``protocol``, member by member (empty: it conforms)."""
    problems: List[str] = []
    for name in _members(protocol):
        want = getattr(protocol, name)
        got = getattr(cls, name, None)
        if got is None or not callable(got):
            problems.append(f"{name}: missing")
            continue
        if inspect.iscoroutinefunction(want) != inspect.iscoroutinefunction(got):
            problems.append(f"{name}: async differs")
        ws, gs = inspect.signature(want), inspect.signature(got)
        wp = [(p.name, p.kind, p.default) for p in ws.parameters.values()]
        gp = [(p.name, p.kind, p.default) for p in gs.parameters.values()]
        if wp != gp:
            problems.append(f"{name}: parameters {gp} != {wp}")
        wh = typing.get_type_hints(want, vars(sys.modules[want.__module__]))
        gh = typing.get_type_hints(got, vars(sys.modules[got.__module__]))
        if wh != gh:
            problems.append(f"{name}: annotations {gh} != {wh}")
    return problems


def test_the_protocol_lists_what_the_worker_calls() -> None:
    """Every provider method the worker calls is in the Protocol, and nothing else is."""
    source = (Path(__file__).resolve().parents[2] / "connectors" / "whatsapp" / "worker.py").read_text()
    called = {m for m in ("send", "mark_read", "close", "post") if f"self.provider.{m}(" in source}
    assert called == set(_members(Provider)) == {"send", "mark_read", "close"}


@pytest.mark.parametrize("cls", PROVIDERS, ids=lambda c: c.__name__)
def test_each_provider_matches_the_protocol(cls: type) -> None:
    assert drift(cls) == []
    instance = (cls(ZapiSettings()) if cls is ZapiClient else cls("http://127.0.0.1:9", "v21.0", "1", "t"))
    assert isinstance(instance, Provider)


def test_a_drifted_provider_is_caught() -> None:
    """The check itself: each kind of drift is reported."""

    class NoTyping:
        async def send(self, body: typing.Dict[str, Any]) -> SendResult: ...
        async def mark_read(self, wamid: str, address: str) -> SendResult: ...
        async def close(self) -> None: ...

    class Sync:
        def send(self, body: typing.Dict[str, Any]) -> SendResult: ...
        async def mark_read(self, wamid: str, address: str, typing: bool = True) -> SendResult: ...
        async def close(self) -> None: ...

    class WrongTypes:
        async def send(self, body: str) -> SendResult: ...
        async def mark_read(self, wamid: str, address: str, typing: bool = True) -> bool: ...
        async def close(self) -> None: ...

    class Missing:
        async def post(self, body: typing.Dict[str, Any]) -> SendResult: ...
        async def mark_read(self, wamid: str, address: str, typing: bool = True) -> SendResult: ...
        async def close(self) -> None: ...

    assert {p.split(":")[0] for p in drift(NoTyping)} == {"mark_read"}
    assert drift(Sync) == ["send: async differs"]
    assert {p.split(":")[0] for p in drift(WrongTypes)} == {"mark_read", "send"}
    assert all("annotations" in p for p in drift(WrongTypes))
    assert drift(Missing) == ["send: missing"] and not isinstance(Missing(), Provider)


def test_the_setting_picks_the_provider() -> None:
    assert isinstance(provider_for(WhatsAppSettings()), GraphClient)
    assert isinstance(provider_for(WhatsAppSettings(provider="zapi")), ZapiClient)
    with pytest.raises(ValueError, match="WHATSAPP_PROVIDER must be 'cloud' or 'zapi'"):
        provider_for(WhatsAppSettings(provider="twilio"))


@pytest.fixture()
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as g:
        yield g


def test_graph_provider_sends_and_marks_read_with_typing(graph: FakeGraph) -> None:
    async def run() -> List[SendResult]:
        p: Provider = GraphClient(graph.base_url, "v21.0", "1122334455667", "test-token")
        try:
            return [await p.send({"messaging_product": "whatsapp", "recipient_type": "individual",
                                  "to": "5511987654321", "type": "text", "text": {"body": "olá"}}),
                    await p.mark_read("wamid.in1", "5511987654321")]
        finally:
            await p.close()

    sent, read = asyncio.run(run())
    assert sent.outcome == "ok" and sent.wamid and read.outcome == "ok"
    assert [r.body["text"]["body"] for r in graph.sent() if r.body.get("to") == "5511987654321"] == ["olá"]
    assert [(r.body["message_id"], r.body["typing_indicator"]) for r in graph.reads()] == [
        ("wamid.in1", {"type": "text"})]


def test_zapi_provider_sends_the_same_body_and_marks_read_by_phone() -> None:
    with FakeZapi() as z:
        async def run() -> List[SendResult]:
            p: Provider = ZapiClient(ZapiSettings("INST1", "itoken", "ctoken", "", z.base_url))
            try:
                return [await p.send({"messaging_product": "whatsapp", "recipient_type": "individual",
                                      "to": "5511988887777", "type": "text", "text": {"body": "olá"}}),
                        await p.mark_read("Z1", "5511988887777"),
                        await p.mark_read("Z2", ""),
                        await p.send({"to": "5511988887777", "type": "sticker", "sticker": {"id": "x"}})]
            finally:
                await p.close()

        sent, read, no_phone, unsendable = asyncio.run(run())
        assert sent.outcome == "ok" and sent.wamid and read.outcome == "ok"
        assert z.messages_to("5511988887777") == [("send-text", "olá")]
        assert [r.body for r in z.requests if r.path.endswith("/read-message")] == [
            {"phone": "5511988887777", "messageId": "Z1"}]
        assert no_phone.outcome == unsendable.outcome == "reject"  # nothing sent for either
