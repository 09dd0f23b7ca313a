"""Problemas do WhatsApp (issue #15): the inbox rows the connector stored as ``ignored`` with a
reason, listed for technicians and managers, newest first, in a period, by bounded pages; reason in
pt-BR, sender masked, the customer's text inert. The service on SQLite and PostgreSQL (db_url),
then the page through AppTest.

The connector's table is created by the `connector_tables` fixture (tests/console/conftest.py) with
the columns the console reads (atende_contract.tables.WHATSAPP_INBOX_PROBLEM_COLUMNS), as the bot env
creates it in production (tests/connectors/test_contract_tables.py pins them against the connector's
definition)."""
from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from atende_contract import tables
from helpdesk.db import session_scope
from helpdesk.errors import InvalidInput
from helpdesk.services import wa_problems
from helpdesk.services.metrics import Period

from . import dataset
from .apphelpers import EVIL, assert_no_markup_from, goto, login, menu, messages, metrics
from .conftest import WA_INBOX as INBOX

PHONE = "5511987650001"
BSUID = "BR.13491208655302741918"
MARCH = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31))


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


def _data(mtype: Any) -> str:
    return json.dumps({"metadata": {"whatsapp": {"message_id": "wamid.x", "type": mtype}}, "action": "ignore"})


def _row(s: Any, **values: Any) -> None:
    base = {"sender": PHONE, "kind": "message", "state": "ignored", "text": None, "data": _data("system"),
            "reason": "system event 'customer_identity_changed' recorded, nothing for the assistant",
            "received_at": _at("2026-03-10T12:00:00")}
    s.execute(INBOX.insert().values(**{**base, **values}))


def test_the_table_declared_here_is_the_contract() -> None:
    assert set(tables.WHATSAPP_INBOX_PROBLEM_COLUMNS) == set(INBOX.c.keys())


@pytest.fixture()
def inbox(data: dataset.Ids, connector_tables: sa.MetaData) -> dataset.Ids:
    return data


# ---- the service, SQLite and PostgreSQL ------------------------------------------------------------
def test_ignored_rows_of_the_period_newest_first_with_the_reason_in_portuguese(inbox: dataset.Ids) -> None:
    with session_scope() as s:
        _row(s, received_at=_at("2026-03-10T12:00:00"))
        _row(s, sender=BSUID, data=_data("system"), reason="number change without a usable new number",
             received_at=_at("2026-03-12T08:30:00"))
        _row(s, kind="call", data=_data(None), reason="business-initiated call: not an inbound call",
             received_at=_at("2026-03-11T00:00:00"))
        _row(s, sender="apagado:9f8e7d", reason=None, received_at=_at("2026-03-05T00:00:00"))
        _row(s, reason="a reason the console does not know", received_at=_at("2026-03-04T00:00:00"))
        _row(s, state="done", received_at=_at("2026-03-15T00:00:00"))  # handled: not a problem
        _row(s, state="pending", received_at=_at("2026-03-15T00:00:00"))
        _row(s, received_at=_at("2026-04-01T00:00:00"))  # after the period (its end is exclusive)
        _row(s, received_at=_at("2026-02-28T23:59:59"))  # before it
    with session_scope() as s:
        page = wa_problems.problems(s, MARCH, page_size=25)
    assert page.total == 5 and page.pages == 1
    assert [p.received_at for p in page.rows] == [datetime(2026, 3, 12, 8, 30), datetime(2026, 3, 11),
                                                  datetime(2026, 3, 10, 12), datetime(2026, 3, 5), datetime(2026, 3, 4)]
    assert [p.reason for p in page.rows] == [
        "Troca de número sem um número novo válido.", "Chamada iniciada pela empresa, não pelo cliente.",
        "Evento do sistema do WhatsApp registrado; nada para o assistente.", "Sem motivo registrado.",
        "Outro motivo (veja o detalhe)."]
    assert [p.kind for p in page.rows] == ["mensagem (system)", "chamada", "mensagem (system)",
                                           "mensagem (system)", "mensagem (system)"]
    assert [p.sender for p in page.rows] == ["BR.1•••••••••••••••1918", "5511•••••0001", "5511•••••0001",
                                             "(apagado)", "5511•••••0001"]
    assert page.rows[-1].detail == "a reason the console does not know"


def test_pages_are_bounded_and_a_bad_page_changes_nothing(inbox: dataset.Ids) -> None:
    with session_scope() as s:
        for i in range(7):
            _row(s, text=f"m{i}", received_at=_at("2026-03-10T12:00:00") + i)
    with session_scope() as s:
        first = wa_problems.problems(s, MARCH, page=1, page_size=3)
        last = wa_problems.problems(s, MARCH, page=3, page_size=3)
        beyond = wa_problems.problems(s, MARCH, page=4, page_size=3)
    assert [p.text for p in first.rows] == ["m6", "m5", "m4"] and first.pages == 3 and first.total == 7
    assert [p.text for p in last.rows] == ["m0"] and beyond.rows == [] and beyond.total == 7
    for bad in ({"page_size": 0}, {"page_size": wa_problems.MAX_PAGE_SIZE + 1}, {"page_size": True},
                {"page_size": "5"}, {"page": 0}, {"page": -1}, {"page": 1.5}, {"page": wa_problems.MAX_PAGE + 1}):
        with session_scope() as s, pytest.raises(InvalidInput) as err:
            wa_problems.problems(s, MARCH, **bad)
        assert err.value.message_pt in ("Tamanho de página inválido.", "Página inválida.")
    with session_scope() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(INBOX)).scalar_one() == 7


def test_hostile_values_come_out_bounded_one_line_and_typed(inbox: dataset.Ids) -> None:
    long_text = "linha 1\n\nlinha\t2\u202e\u200b " + EVIL + " " + "x" * 1000
    with session_scope() as s:
        _row(s, sender="<b>" + "9" * 125, text=long_text, data=_data("<script>alert(1)</script>"),
             reason="sender '<img src=x onerror=alert(1)>\n" + "y" * 1000 + "' is neither a phone nor a LID")
        _row(s, data="{not json", received_at=_at("2026-03-09T00:00:00"))
        _row(s, data=json.dumps(["a"]), kind="<i>x</i>", received_at=_at("2026-03-08T00:00:00"))
        _row(s, data=json.dumps({"metadata": {"whatsapp": {"type": "t" * 5000}}}),
             received_at=_at("2026-03-07T00:00:00"))
    with session_scope() as s:
        hostile, bad_json, bad_kind, huge_type = wa_problems.problems(s, MARCH).rows
    assert hostile.reason == "Remetente que não é um telefone nem um LID válido (Z-API)."
    assert hostile.kind == "mensagem"  # a type that is not a plain name is not shown
    assert len(hostile.text) == wa_problems.TEXT_MAX and hostile.text.endswith("…")
    assert hostile.text.startswith("linha 1 linha 2 ") and not any(ch in hostile.text for ch in "\n\t\u202e\u200b")
    assert len(hostile.detail) == wa_problems.DETAIL_MAX and "\n" not in hostile.detail
    assert hostile.sender.startswith("<b>9") and "9" * 20 not in hostile.sender
    assert bad_json.kind == "mensagem" and bad_kind.kind == "outro" and huge_type.kind == "mensagem"


def test_without_the_connectors_table_there_is_nothing_to_list(data: dataset.Ids) -> None:
    with session_scope() as s:
        page = wa_problems.problems(s, MARCH)
    assert (page.rows, page.total, page.pages) == ([], 0, 1)


@pytest.mark.parametrize("sender,shown", [
    ("5511987650001", "5511•••••0001"), ("12345678", "12••••78"), ("123456", "••••••"), ("", "—"), (None, "—"),
    ("apagado:abc", "(apagado)"), ("120363025246125486@lid", "1203••••••••••••••@lid")])
def test_the_sender_is_masked(sender: Any, shown: str) -> None:
    assert wa_problems.mask_sender(sender) == shown


# ---- the page ----------------------------------------------------------------------------------------
def _page_text(at: Any) -> str:
    return "\n".join(str(node.proto) for node in at._tree if getattr(node, "proto", None) is not None)


def test_technicians_and_managers_see_the_page_with_the_problems(inbox: dataset.Ids) -> None:
    now = time.time()
    with session_scope() as s:
        _row(s, text=EVIL, reason="reaction recorded, nothing for the assistant", data=_data("reaction"),
             received_at=now - 60)
        _row(s, sender=BSUID, reason="BSUID change without a usable previous and new user id", received_at=now - 3600)
        _row(s, state="done", text="tratada", received_at=now - 30)
        _row(s, text="antiga", received_at=now - 30 * 86400)  # before the default period (7 days)
    for email in ("tiago@teste.dev", "marta@teste.dev"):
        at = goto(login(email, dataset.PASSWORD), wa_problems_url())
        assert not at.exception and "Problemas do WhatsApp" in menu(at)
        assert [h.value for h in at.header] == ["Problemas do WhatsApp"]
        assert metrics(at)["Problemas no período"] == "2"
        table = at.dataframe[0].value
        assert list(table["Motivo"]) == ["Reação a uma mensagem registrada; nada para o assistente.",
                                         "Troca de identificador do usuário (BSUID) sem identificadores válidos."]
        assert list(table["Remetente"]) == ["5511•••••0001", "BR.1•••••••••••••••1918"]
        assert list(table["Texto"]) == [EVIL, ""]  # as typed, in the data grid (text, never Markdown)
        assert list(table["Tipo"]) == ["mensagem (reaction)", "mensagem (system)"]
        page = _page_text(at)
        assert PHONE not in page and BSUID not in page and "tratada" not in page and "antiga" not in page
        assert_no_markup_from(at, "negrito", "onerror", "rastreador", "vermelho")
        assert not any("negrito" in str(m.value) for m in at.markdown)  # no Markdown element carries it


def test_the_page_filters_the_period_and_pages(inbox: dataset.Ids) -> None:
    now = time.time()
    with session_scope() as s:
        for i in range(30):
            _row(s, text=f"m{i:02}", received_at=now - 3600 - i)
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), wa_problems_url())
    assert len(at.dataframe[0].value) == 25 and at.dataframe[0].value["Texto"].iloc[0] == "m00"
    at.number_input(key="wp_page").set_value(2).run()
    assert list(at.dataframe[0].value["Texto"]) == [f"m{i:02}" for i in range(25, 30)]
    at.number_input(key="wp_page").set_value(3).run()
    assert messages(at, "warning") == ["Página 3 vazia: o período tem 2 página(s)."] and not at.dataframe
    at.number_input(key="wp_page").set_value(1)
    at.selectbox(key="wp_size").set_value(50).run()
    assert len(at.dataframe[0].value) == 30
    today = datetime.now(timezone.utc).date()
    at.date_input(key="wp_to").set_value(today - timedelta(days=10)).run()  # before "De" (today - 6)
    assert messages(at, "error") == ["Período inválido: a data final é anterior à inicial."] and not at.dataframe
    at.date_input(key="wp_from").set_value(today - timedelta(days=40))
    at.date_input(key="wp_to").set_value(today - timedelta(days=35)).run()
    assert metrics(at)["Problemas no período"] == "0" and messages(at, "info") == [
        "Nenhum problema do WhatsApp no período."]


def wa_problems_url() -> str:
    from console.screens import wa_problems as screen

    return screen.URL_PATH


def test_the_service_and_the_page_import_neither_rasa_nor_the_connector() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = "import helpdesk.services.wa_problems, console.screens.wa_problems\nimport sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.split())
    assert "helpdesk.services.wa_problems" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("rasa", "connectors", "rasa_sdk")}
