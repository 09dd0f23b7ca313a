"""Fixtures for the action tests: a real migrated SQLite database and rasa-sdk trackers."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

MARIA_PHONE = "5511987654321"
MARIA_EMAIL = "maria@padaria.com.br"
JOAO_PHONE = "5521999990000"
JWT_SECRET = "test-webchat-secret-with-32-bytes-or-more"
# The key the connectors sign identity attestations with (atende_contract.attestation).
ATTESTATION_SECRET = "test-attestation-secret-with-32-bytes-or-more"


def make_cnpj(base12: str) -> str:
    from helpdesk.cnpj import check_digits

    return base12 + check_digits(base12)


MARIA_CNPJ = make_cnpj("112223330001")
JOAO_CNPJ = make_cnpj("457231740001")


@dataclass
class Demo:
    url: str
    maria_id: int
    joao_id: int
    maria_ticket: int
    joao_ticket: int


@pytest.fixture()
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    from helpdesk import config, db as hdb, demo
    from helpdesk.services import customers, tickets

    url = f"sqlite:///{tmp_path / 'actions.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("WEBCHAT_JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("ATENDE_ATTESTATION_SECRET", ATTESTATION_SECRET)
    config.reset_settings()
    hdb.dispose_engines()
    hdb.upgrade(url)
    with hdb.session_scope() as s:
        demo.load_catalog(s)  # the catalog of helpdesk/demo_data/catalog.yml
        maria = customers.create(
            s, responsible_name="Maria Souza", legal_name="Padaria Pão Quente Ltda", trade_name="Pão Quente",
            cnpj=MARIA_CNPJ, tax_regime="simples_nacional", phones=["+55 (11) 98765-4321"],
            emails=[MARIA_EMAIL],
            licenses=[customers.LicenseSpec(module="pdv"), customers.LicenseSpec(module="nfe"),
                      customers.LicenseSpec(module="gestor")])
        joao = customers.create(
            s, responsible_name="João Lima", legal_name="Lima Comunicação SA", cnpj=JOAO_CNPJ,
            tax_regime="lucro_real", phones=[JOAO_PHONE],
            licenses=[customers.LicenseSpec(module="omnicrm")])
        t1 = tickets.open_ticket(s, customer_id=maria.id, channel="web", type="erro", module="pdv",
                                 description="PDV travando", conversation_id="old-maria")
        t2 = tickets.open_ticket(s, customer_id=joao.id, channel="whatsapp", type="duvida", module="omnicrm",
                                 description="Segredo do João: senha do CRM", conversation_id="old-joao")
        demo_ids = Demo(url, maria.id, joao.id, t1.id, t2.id)
    yield demo_ids
    hdb.dispose_engines()
    config.reset_settings()


def attestation_for(conversation: str, subject: str, message_id: str, *, channel: str | None = None,
                    key: str = ATTESTATION_SECRET, now: float | None = None,
                    alt: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a connector attaches after verifying `subject` (as the WhatsApp / website connectors do)."""
    from atende_contract import attestation, channels

    return attestation.sign(key.encode(), channel=channel or channels.channel_of(conversation) or "rest",
                            conversation_id=conversation, subject=subject, message_id=message_id, now=now,
                            alt=alt)


def user_event(text: str, intent: str, *, channel: str = "rest", entities: list[dict[str, Any]] | None = None,
               metadata: dict[str, Any] | None = None, message_id: str = "m-1") -> dict[str, Any]:
    return {"event": "user", "text": text, "input_channel": channel, "metadata": metadata or {},
            "message_id": message_id,
            "parse_data": {"intent": {"name": intent, "confidence": 0.99}, "entities": entities or [],
                           "text": text, "message_id": message_id, "metadata": metadata or {}}}


def make_tracker(text: str = "", intent: str = "greet", *, sender: str = "conv-1", channel: str = "rest",
                 slots: dict[str, Any] | None = None, entities: list[dict[str, Any]] | None = None,
                 metadata: dict[str, Any] | None = None, history: list[dict[str, Any]] | None = None,
                 active_loop: str | None = None, attest: str | None = None, message_id: str = "m-1",
                 attest_alt: tuple[str, ...] = ()) -> Tracker:
    """A tracker whose latest message is `text`.

    On channel whatsapp, a bare sender (a phone) becomes the conversation `whatsapp:<phone>` and
    the message carries the attestation the WhatsApp connector signs for its verified sender.
    `attest` attaches an attestation of that subject (``id:42``, ``email:...``) on any channel.
    """
    from atende_contract import attestation

    metadata = dict(metadata or {})
    if channel == "whatsapp" and ":" not in sender:
        attest = attest or f"phone:{sender}"
        sender = f"whatsapp:{sender}"
    if attest is not None:
        metadata[attestation.METADATA_KEY] = attestation_for(sender, attest, message_id, channel=channel,
                                                             alt=attest_alt)
    latest = user_event(text, intent, channel=channel, entities=entities, metadata=metadata, message_id=message_id)
    events = [*(history or []), {"event": "action", "name": "action_listen"}, latest]
    message = {"text": text, "intent": latest["parse_data"]["intent"], "entities": entities or [],
               "metadata": metadata, "input_channel": channel, "message_id": message_id}
    return Tracker(sender, dict(slots or {}), message, events, False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


def run_action(action: Any, tracker: Tracker, domain: dict[str, Any] | None = None
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    result = action.run(dispatcher, tracker, domain or DOMAIN)
    events = asyncio.run(result) if asyncio.iscoroutine(result) else result
    return dispatcher.messages, events


def load_domain() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((Path(__file__).resolve().parents[2] / "domain.yml").read_text(encoding="utf-8"))


DOMAIN = load_domain()


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def responses(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("response") or m.get("text") or "" for m in messages]
