"""The "Responder" tab shows WhatsApp's 24-hour window before the technician types (issue #15
item 3): open until HH:MM, the template that will be sent, or no template and the customer's
e-mail. The connector's tables are created here with the columns the console reads
(atende_contract.tables), as the bot env creates them in production."""
from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Iterator

import pytest
import sqlalchemy as sa

from atende_contract import tables
from helpdesk.db import get_engine, session_scope
from helpdesk.models import Ticket
from helpdesk.services import wa_window

from . import dataset
from .apphelpers import goto, login, messages

_foreign = sa.MetaData()
INBOX = sa.Table(tables.WHATSAPP_INBOX, _foreign, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("sender", sa.String(128)), sa.Column("kind", sa.String(16)), sa.Column("received_at", sa.Float))
WINDOWS = sa.Table(tables.WHATSAPP_WINDOWS, _foreign, sa.Column("recipient", sa.String(128), primary_key=True),
                   sa.Column("expires_at", sa.Float), sa.Column("updated_at", sa.Float))
ALIASES = sa.Table(tables.WHATSAPP_ALIASES, _foreign, sa.Column("wa_id", sa.String(128), primary_key=True),
                   sa.Column("conversation", sa.String(128)), sa.Column("changed_at", sa.Float))
TEMPLATES = json.dumps({"ticket_update": {"name": "atualizacao_chamado", "language": "pt_BR",
                                          "parameters": ["ticket_number", "technician", "text"]}})


def test_the_tables_declared_here_are_the_contract() -> None:
    for table, cols in ((INBOX, tables.WHATSAPP_INBOX_COLUMNS), (WINDOWS, tables.WHATSAPP_WINDOWS_COLUMNS),
                        (ALIASES, tables.WHATSAPP_ALIASES_COLUMNS)):
        assert set(cols) <= set(table.c.keys())


@pytest.fixture()
def whatsapp(ids: dataset.Ids, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Tickets t1 (customer with e-mail) and t6 (no e-mail) in progress, with the connector's tables."""
    monkeypatch.delenv("WHATSAPP_TEMPLATES", raising=False)
    engine = get_engine()
    _foreign.create_all(engine)
    with session_scope() as s:
        for key in ("t1", "t6"):
            t = s.get(Ticket, ids.tickets[key])
            t.status, t.resolved_at = "em_atendimento", None
    try:
        yield {"t1": ids.tickets["t1"], "t6": ids.tickets["t6"]}
    finally:
        _foreign.drop_all(engine)


def _inbound(sender: str, hours_ago: float) -> float:
    at = time.time() - hours_ago * 3600
    with session_scope() as s:
        s.execute(INBOX.insert().values(sender=sender, kind="message", received_at=at))
        s.execute(INBOX.insert().values(sender=sender, kind="status", received_at=time.time()))  # not the customer
    return at


def _open(tid: int):  # type: ignore[no-untyped-def]
    return goto(login("tiago@teste.dev", dataset.PASSWORD), "chamado", id=tid)


def test_open_window_shows_until_when(whatsapp: dict[str, int]) -> None:
    at_ = _inbound("5511987654321", 2)
    until = datetime.fromtimestamp(at_ + 24 * 3600, wa_window.DISPLAY_TZ).strftime("%H:%M")
    at = _open(whatsapp["t1"])
    assert messages(at, "info") == [f"Janela do WhatsApp aberta até {until}: a resposta vai como mensagem comum."]
    assert not messages(at, "warning") and not messages(at, "error")


def test_outside_the_window_names_the_template(whatsapp: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_TEMPLATES", TEMPLATES)
    _inbound("5511987654321", 25)
    at = _open(whatsapp["t1"])
    assert messages(at, "warning") == ["Fora da janela de 24 horas: será enviado o modelo atualizacao_chamado. "
                                       "A sua mensagem segue quando o cliente responder."]


def test_outside_the_window_without_a_template_offers_the_masked_email(whatsapp: dict[str, int]) -> None:
    _inbound("5511987654321", 25)
    at = _open(whatsapp["t1"])
    assert messages(at, "error") == ["Fora da janela de 24 horas e sem modelo configurado: use o e-mail do "
                                     "cliente a***@alfa.com.br."]
    [link] = [b for b in at.get("link_button")]
    assert link.proto.url == "mailto:ana@alfa.com.br"
    assert "ana@alfa.com.br" not in " ".join(messages(at, "error"))


def test_without_template_and_without_email_no_link_is_offered(whatsapp: dict[str, int]) -> None:
    at = _open(whatsapp["t6"])  # the customer never wrote: no window at all
    assert messages(at, "error") == ["Fora da janela de 24 horas e sem modelo configurado: a mensagem só segue "
                                     "quando o cliente escrever, e ele não tem e-mail cadastrado. Ligue para o cliente."]
    assert not list(at.get("link_button"))


def test_meta_expiration_and_a_changed_number_keep_the_window_open(whatsapp: dict[str, int]) -> None:
    _inbound("5511987654321", 30)
    with session_scope() as s:
        s.execute(WINDOWS.insert().values(recipient="5511987654321", expires_at=time.time() + 600,
                                          updated_at=time.time()))
        w = wa_window.reply_window(s, "whatsapp:5511987654321")
        assert w is not None and w.state == "open"
        s.execute(WINDOWS.delete())
        assert wa_window.reply_window(s, "whatsapp:5511987654321").state == "no_template"  # type: ignore[union-attr]
        # the customer moved to a new number and wrote from it an hour ago
        s.execute(ALIASES.insert().values(wa_id="5511911112222", conversation="5511987654321", changed_at=time.time()))
    _inbound("5511911112222", 1)
    with session_scope() as s:
        assert wa_window.reply_window(s, "whatsapp:5511987654321").state == "open"  # type: ignore[union-attr]
        assert wa_window.reply_window(s, "web-sess-a2") is None  # another channel: no window


def test_bad_template_configuration_is_said_not_crashed(whatsapp: dict[str, int],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_TEMPLATES", '{"ticket_update": {"name": "Nome Ruim"}}')
    at = _open(whatsapp["t1"])
    assert messages(at, "error")[0].startswith("Fora da janela de 24 horas e sem modelo configurado")
    assert any("WHATSAPP_TEMPLATES" in str(c.value) for c in at.caption)


def test_no_notice_when_the_tables_do_not_exist_yet(ids: dataset.Ids) -> None:
    with session_scope() as s:
        w = wa_window.reply_window(s, "whatsapp:5511987654321", template="")
    assert w is not None and w.state == "no_template"
