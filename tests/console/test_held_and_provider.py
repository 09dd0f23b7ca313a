"""Issue #15, the console's remaining WhatsApp gaps:

- the "Responder" tab knows the deployment's provider (WHATSAPP_PROVIDER): Z-API has no 24-hour
  window and no templates, so a Z-API conversation never reads "fora da janela" nor names a template;
- messages the connector holds outside the window (``held``, with or without ``needs_template``) and
  templates Meta refused (132xxx) are listed on the ticket with their reason in pt-BR, never silently;
- a customer's text in those lists is shown inert (no HTML, no Markdown).

The connector's tables are created by the `connector_tables` fixture (tests/console/conftest.py)
with the columns the console reads (atende_contract.tables), as the bot env creates them in production."""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from atende_contract import tables
from helpdesk.db import session_scope
from helpdesk.models import Ticket
from helpdesk.services import transcripts, wa_window

from . import dataset
from .apphelpers import goto, login, messages, shown, texts
from .conftest import WA_INBOX as INBOX
from .conftest import WA_OUTBOX as OUTBOX

TEMPLATES = json.dumps({"ticket_update": {"name": "atualizacao_chamado", "language": "pt_BR",
                                          "parameters": ["ticket_number", "technician", "text"]}})
PHONE = "5511987654321"  # ticket t1's conversation (opened 2026-03-02 09:00 UTC)
OPENED = datetime(2026, 3, 2, 9, 0)
HOSTILE = '<img src=x onerror="alert(1)"> **urgente** [clique](javascript:alert(2)) <script>x</script>'


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


def _text(body: str) -> str:
    return json.dumps({"type": "text", "text": {"body": body}})


def _row(s, **values) -> None:  # type: ignore[no-untyped-def]
    base = {"recipient": PHONE, "body": _text("oi"), "send_state": "accepted", "status": None, "error_code": None,
            "error_title": None, "needs_template": False, "created_at": _at("2026-03-02T12:00:00")}
    s.execute(OUTBOX.insert().values(**{**base, **values}))


def test_the_tables_declared_here_are_the_contract() -> None:
    assert set(tables.WHATSAPP_OUTBOX_COLUMNS) <= set(OUTBOX.c.keys())  # what the console reads is here
    assert set(tables.WHATSAPP_INBOX_COLUMNS) <= set(INBOX.c.keys())


# ---- services, SQLite and PostgreSQL ------------------------------------------------------------------
@pytest.fixture()
def outbox(data: dataset.Ids, connector_tables: sa.MetaData) -> dataset.Ids:
    return data


def test_held_messages_are_listed_in_their_order_with_the_reason(outbox: dataset.Ids) -> None:
    with session_scope() as s:
        _row(s, send_state="held", needs_template=True, body=_text("segunda"), created_at=_at("2026-03-02T12:05:00"),
             error_title="fora da janela de 24 h e sem modelo configurado para 'ticket_update'")
        _row(s, send_state="held", body=_text("primeira"), created_at=_at("2026-03-02T12:00:00"),
             error_title="fora da janela de 24 h: enviado o modelo atualizacao_chamado; segue quando o cliente responder")
        _row(s, send_state="held", body="{not json", created_at=_at("2026-03-02T12:06:00"))  # garbled: no crash
        _row(s, send_state="held", body=json.dumps(["a list"]), created_at=_at("2026-03-02T12:07:00"))
        _row(s, send_state="held", body=_text("antes do chamado"), created_at=_at("2026-03-01T12:00:00"))
        _row(s, send_state="held", recipient="5521998765432", body=_text("de outro cliente"))
        _row(s, send_state="pending", body=_text("já liberada"))
    with session_scope() as s:
        held = transcripts.whatsapp_held(s, f"whatsapp:{PHONE}", since=OPENED)
        assert [h.text for h in held] == ["primeira", "segunda", "", ""]
        assert [h.needs_template for h in held] == [False, True, False, False]
        assert "enviado um modelo" in held[0].message_pt and "segue quando o cliente responder" in held[0].message_pt
        assert "sem modelo configurado" in held[1].message_pt and "não foi entregue" in held[1].message_pt
        assert held[1].reason.endswith("'ticket_update'")
        assert transcripts.whatsapp_held(s, PHONE, since=OPENED) == held  # a legacy bare id is the same address
        assert transcripts.whatsapp_held(s, "whatsapp:não é um id", since=OPENED) == []
        assert transcripts.whatsapp_held(s, "", since=OPENED) == []


def test_a_template_meta_rejects_says_why_in_portuguese_and_is_not_resent(outbox: dataset.Ids) -> None:
    template = json.dumps({"type": "template", "template": {"name": "atualizacao_chamado",
                                                           "language": {"code": "pt_BR"}}})
    with session_scope() as s:
        _row(s, send_state="rejected", status="failed", error_code=132001, body=template,
             error_title="Template name does not exist in the translation")
        _row(s, send_state="rejected", status="failed", error_code=132015, body=template,
             error_title="Template is Paused", created_at=_at("2026-03-02T13:00:00"))
        _row(s, send_state="rejected", status="failed", error_code=132999, body=template,
             created_at=_at("2026-03-02T14:00:00"))
    with session_scope() as s:
        failures = transcripts.whatsapp_failures(s, PHONE, since=OPENED)
    assert [f.error_code for f in failures] == [132999, 132015, 132001]  # newest first
    assert failures[2].message_pt == (
        "Modelo atualizacao_chamado recusado pelo WhatsApp (erro 132001): o modelo não existe com esse nome e "
        "idioma (ou ainda não foi aprovado). Não será reenviado; corrija o modelo no WhatsApp Manager ou em "
        "WHATSAPP_TEMPLATES. A mensagem retida segue quando o cliente escrever.")
    assert "pausado" in failures[1].message_pt
    assert "a Meta recusou o modelo" in failures[0].message_pt
    assert transcripts.template_error_pt(131026) is None and transcripts.template_error_pt(True) is None


def test_a_text_held_behind_a_refused_template_says_it_was_not_delivered(outbox: dataset.Ids) -> None:
    def template(name: str) -> str:
        return json.dumps({"type": "template", "template": {"name": name, "language": {"code": "pt_BR"}}})

    with session_scope() as s:  # one batch (same time): the template, then the free text held behind it
        _row(s, send_state="rejected", status="failed", error_code=132001, body=template("atualizacao_chamado"),
             created_at=_at("2026-03-02T12:00:00"))
        _row(s, send_state="held", body=_text("a correção está pronta"), created_at=_at("2026-03-02T12:00:00"),
             error_title="fora da janela de 24 h: enviado o modelo atualizacao_chamado; segue quando o cliente responder")
        # later, the rating request: its template was accepted, the question waits behind it
        _row(s, send_state="accepted", body=template("avaliacao_atendimento"), created_at=_at("2026-03-03T12:00:00"))
        _row(s, send_state="held", body=_text("Que nota você dá?"), created_at=_at("2026-03-03T12:00:00"))
        _row(s, send_state="held", body=_text("fala de template sem ser um"), created_at=_at("2026-03-03T12:01:00"))
    with session_scope() as s:
        held = transcripts.whatsapp_held(s, PHONE, since=OPENED)
    assert [(h.text, h.template_refused, h.delivered_nothing) for h in held] == [
        ("a correção está pronta", 132001, True), ("Que nota você dá?", None, False),
        ("fala de template sem ser um", None, False)]
    assert held[0].message_pt.startswith("Mensagem retida: o modelo que a levaria foi recusado pela Meta "
                                         "(erro 132001). Ela não foi entregue")


def test_provider_is_read_like_the_connector() -> None:
    assert wa_window.provider({}) == ("cloud", None)
    assert wa_window.provider({"WHATSAPP_PROVIDER": ""}) == ("cloud", None)
    assert wa_window.provider({"WHATSAPP_PROVIDER": " ZAPI "}) == ("zapi", None)
    name, problem = wa_window.provider({"WHATSAPP_PROVIDER": "<b>twilio</b>" * 20})
    assert name == "cloud" and problem is not None and "WHATSAPP_PROVIDER" in problem and len(problem) < 120


# ---- the ticket screen (AppTest) ---------------------------------------------------------------------
@pytest.fixture()
def whatsapp(ids: dataset.Ids, connector_tables: sa.MetaData, monkeypatch: pytest.MonkeyPatch) -> int:
    """Ticket t1 in progress (WhatsApp), with the connector's tables; the customer wrote 25 h ago."""
    monkeypatch.delenv("WHATSAPP_TEMPLATES", raising=False)
    monkeypatch.delenv("WHATSAPP_PROVIDER", raising=False)
    with session_scope() as s:
        t = s.get(Ticket, ids.tickets["t1"])
        t.status, t.resolved_at = "em_atendimento", None
        s.execute(INBOX.insert().values(sender=PHONE, kind="message", received_at=time.time() - 25 * 3600))
    return ids.tickets["t1"]


def _open(tid: int):  # type: ignore[no-untyped-def]
    return goto(login("tiago@teste.dev", dataset.PASSWORD), "chamado", id=tid)


def test_zapi_conversation_shows_no_window_and_no_template(whatsapp: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_TEMPLATES", TEMPLATES)
    at = _open(whatsapp)  # Cloud API (the default): outside the window, the template
    assert any("Fora da janela de 24 horas" in m for m in messages(at, "warning"))
    monkeypatch.setenv("WHATSAPP_PROVIDER", "zapi")
    at = _open(whatsapp)
    assert messages(at, "info") == ["WhatsApp pelo Z-API: não há janela de 24 horas nem modelos; a resposta vai "
                                    "como mensagem comum."]
    shown_all = " ".join(messages(at, "warning") + messages(at, "error") + [str(c.value) for c in at.caption])
    assert "janela de 24 horas:" not in shown_all and "Fora da janela" not in shown_all
    assert "atualizacao_chamado" not in shown_all and "modelo" not in " ".join(messages(at, "warning"))
    assert not list(at.get("link_button"))  # no "use the e-mail" instead of a template either


def test_an_unknown_provider_is_said_and_the_cloud_rule_applies(whatsapp: int,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_PROVIDER", "twilio")
    at = _open(whatsapp)
    assert messages(at, "error")[0].startswith("Fora da janela de 24 horas e sem modelo configurado")
    assert any("WHATSAPP_PROVIDER" in str(c.value) and "twilio" in str(c.value) for c in at.caption)


def test_held_and_rejected_messages_are_on_the_ticket_inert(whatsapp: int) -> None:
    now = time.time()
    with session_scope() as s:
        _row(s, send_state="held", needs_template=True, body=_text(HOSTILE), created_at=now - 60,
             error_title="fora da janela de 24 h e sem modelo configurado para 'ticket_update' " + HOSTILE)
        _row(s, send_state="held", body=_text("Bom dia, segue a correção"), created_at=now - 30,
             error_title="fora da janela de 24 h: enviado o modelo atualizacao_chamado; segue quando o cliente responder")
        _row(s, send_state="rejected", status="failed", error_code=132000, created_at=now - 10,
             body=json.dumps({"type": "template", "template": {"name": "atualizacao_chamado"}}),
             error_title="Number of parameters does not match the expected number of params")
    at = _open(whatsapp)
    errors, warnings = messages(at, "error"), messages(at, "warning")
    assert any("Modelo atualizacao_chamado recusado pelo WhatsApp (erro 132000): o número de parâmetros não "
               "corresponde ao modelo aprovado. Não será reenviado" in m for m in errors)
    assert any(m.endswith("Mensagem retida: fora da janela de 24 horas e sem modelo configurado. Ela não foi "
                          "entregue e só segue quando o cliente escrever; se for urgente, use o e-mail ou ligue.")
               for m in errors)
    assert any(m.endswith("Mensagem aguardando o cliente: fora da janela de 24 horas, foi enviado um modelo; "
                          "esta mensagem segue quando o cliente responder.") for m in warnings)
    # the customer's text as typed, in a plain-text element (never Markdown or HTML)
    assert f"Mensagem retida: {HOSTILE}" in texts(at)
    assert "Mensagem retida: Bom dia, segue a correção" in texts(at)
    [reason] = [c for c in at.caption if "Motivo registrado pelo conector" in shown(str(c.value))
                and "onerror" in str(c.value)]
    raw = str(reason.value)
    assert shown(raw).endswith(HOSTILE)  # reads as typed ...
    # ... and every Markdown/HTML character is escaped: no tag, emphasis or link survives
    assert not re.search(r"(?<!\\)[<>*\[\]()]", raw.partition("update")[2]), raw
