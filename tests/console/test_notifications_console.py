"""Notifications in the console, through AppTest: a notification pops up (st.toast and the desktop
frame) in exactly one of two open console sessions of the technician; customer text shows as typed
and cannot break out of the desktop script; channel choices; managers see and retry failures."""
from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from console import notices
from helpdesk.db import session_scope
from helpdesk.models import Notification, NotificationPreference, utcnow
from helpdesk.services import notifications, notify_channels, tickets
from helpdesk.services.notify_channels import Notice

from . import dataset
from .apphelpers import EVIL, assert_plain, current_path, goto, login, menu, messages, shown
from tests.helpdesk.test_notifications_channels import free_port


@pytest.fixture(autouse=True)
def _no_channel_settings(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    import os

    for key in list(os.environ):
        if key.startswith(("ATENDE_SMTP_", "ATENDE_NOTIFY_", "ATENDE_CONSOLE_URL")):
            monkeypatch.delenv(key)
    notify_channels.reset_notify_settings()
    yield
    notify_channels.reset_notify_settings()


def _dispatch(now=None) -> None:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        notifications.run(s, now=now)


def _new_ticket(customer_id: int | None = None, name: str | None = None, text: str = "PDV travou") -> int:
    with session_scope() as s:
        return tickets.open_ticket(s, customer_id=customer_id, channel="whatsapp", type="erro", module="pdv",
                                   description=text, conversation_id=None, contact_name=name).id


def _toasts(at: AppTest) -> list[str]:
    return [shown(t.value).replace("**", "") for t in at.toast]


def _frames(at: AppTest) -> list[str]:
    return [e.proto.srcdoc for e in at.get("iframe")]


def test_a_notification_pops_up_in_one_of_two_open_sessions(ids: dataset.Ids) -> None:
    _dispatch()  # the first run: the data set's history is not notified
    first = login("tiago@teste.dev", dataset.PASSWORD)
    second = login("tiago@teste.dev", dataset.PASSWORD)
    other = login("bruno@teste.dev", dataset.PASSWORD)
    assert _toasts(first) == [] and _toasts(second) == []
    number = _new_ticket(ids.a)
    _dispatch()
    second.run()
    toast, = _toasts(second)
    assert toast.startswith(f"Novo chamado #{number} transferido pelo assistente") and "PDV travou" in toast
    frame, = _frames(second)
    assert f"Novo chamado #{number}" in frame and "requestPermission" in frame
    first.run()
    assert _toasts(first) == [] and _frames(first) == []  # the other tab does not show it again
    second.run()
    assert _toasts(second) == []  # nor does the same tab on its next poll
    other.run()  # another technician has their own
    assert any(f"#{number}" in t for t in _toasts(other))


def test_customer_text_shows_as_typed_and_stays_inside_the_script(ids: dataset.Ids) -> None:
    _dispatch()
    at = login("tiago@teste.dev", dataset.PASSWORD)
    evil = EVIL + " </script><script>alert(2)</script>\r\nBcc: x@y"
    number = _new_ticket(None, name=evil, text=evil)
    _dispatch()
    at.run()
    toast, = [t.value for t in at.toast]
    assert_plain(toast.split("  \n", 1)[1])
    assert f"#{number}" in shown(toast)
    frame, = _frames(at)
    assert frame.count("<script>") == 1 and frame.count("</script>") == 1  # no way out of the literal
    items = json.loads(re.search(r"const items=(\[.*?\]);", frame).group(1))  # type: ignore[union-attr]
    assert "</script><script>alert(2)</script>" in items[0]["body"] and "\n" not in items[0]["body"]


def test_many_notifications_are_summarised(ids: dataset.Ids) -> None:
    _dispatch()
    at = login("tiago@teste.dev", dataset.PASSWORD)
    for i in range(notices.MAX_TOASTS + 3):
        _new_ticket(ids.a, text=f"Problema {i}")
    _dispatch()
    at.run()
    assert len(at.toast) == notices.MAX_TOASTS + 1
    assert _toasts(at)[-1] == "E mais 3 avisos: veja a fila."


def test_a_technician_turns_console_notifications_off(ids: dataset.Ids) -> None:
    _dispatch()
    at = login("tiago@teste.dev", dataset.PASSWORD)
    box = at.checkbox(key="notify_pref_console")
    assert box.value is True
    assert at.checkbox(key="notify_pref_email").disabled  # no SMTP configured
    box.uncheck().run()
    with session_scope() as s:
        pref = s.get(NotificationPreference, (ids.tiago, "console"))
        assert pref is not None and pref.enabled is False
    _new_ticket(ids.a)
    _dispatch()
    at.run()
    assert _toasts(at) == []
    with session_scope() as s:
        assert s.scalars(select(Notification).where(Notification.technician_id == ids.tiago)).all() == []


def test_managers_see_failed_notifications_and_retry(ids: dataset.Ids, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"ATENDE_SMTP_HOST": "127.0.0.1", "ATENDE_SMTP_PORT": str(free_port()),
                       "ATENDE_SMTP_FROM": "a@b.example", "ATENDE_SMTP_STARTTLS": "false",
                       "ATENDE_NOTIFY_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(key, value)
    notify_channels.reset_notify_settings()
    _dispatch()
    number = _new_ticket(ids.a)
    _dispatch()
    with session_scope() as s:
        failed = notifications.failed(s)
        assert {f.recipient for f in failed} == {f"technician:{ids.tiago}", f"technician:{ids.bruno}"}
    tech = login("tiago@teste.dev", dataset.PASSWORD)
    goto(tech, notices.PAGE)
    assert messages(tech, "error") and "gestores" in messages(tech, "error")[0]
    at = login("marta@teste.dev", dataset.PASSWORD)
    assert "Notificações" not in menu(at)  # a hidden page, reached from the sidebar while needed
    at.button(key="notify_failed_link").click().run()
    assert current_path(at) == notices.PAGE
    table = at.dataframe[0].value
    assert set(table["Chamado"]) == {f"#{number}"} and table["Último erro"].str.contains("SMTP").all()
    assert set(table["Destinatário"]) == {"Tiago Técnico", "Bruno Técnico"}
    first = failed[0]
    at.button(key=f"notify_retry_{first.id}").click().run()
    assert "Notificação recolocada na fila." in messages(at, "success")
    with session_scope() as s:
        assert s.get(Notification, first.id).state == "pending"  # type: ignore[union-attr]
    assert at.button(key="notify_failed_link").label.startswith("⚠️ 1 ")  # one left


def test_desktop_script_escapes_every_breakout() -> None:
    n = Notice(notification_id=1, event_id=1, kind="created", ticket_id=9, title="Novo chamado #9",
               body="</script><!-- <![CDATA[ & \u2028", customer="<b>x</b>", subject="s", priority="normal",
               level=1, url="https://c.example/chamado?id=9")
    script = notices.desktop_script([n])
    inner = script[len("<script>"):-len("</script>")]
    assert "<" not in inner and ">" not in inner and "&" not in inner
    items = json.loads(re.search(r"const items=(\[.*?\]);", inner).group(1))  # type: ignore[union-attr]
    assert items[0]["body"] == "<b>x</b> · </script><!-- <![CDATA[ & \u2028"
    assert items[0]["url"] == "https://c.example/chamado?id=9"


def test_polling_never_waits_for_a_dead_channel(ids: dataset.Ids, monkeypatch: pytest.MonkeyPatch) -> None:
    """The console only reads the outbox: an SMTP server that is down costs it nothing."""
    monkeypatch.setenv("ATENDE_SMTP_HOST", "10.255.255.1")  # unroutable: a send would hang
    monkeypatch.setenv("ATENDE_SMTP_FROM", "a@b.example")
    notify_channels.reset_notify_settings()
    with session_scope() as s:
        notifications.fan_out(s)  # the first run's cursor
    at = login("tiago@teste.dev", dataset.PASSWORD)
    number = _new_ticket(ids.a)
    with session_scope() as s:
        notifications.fan_out(s, now=utcnow() + timedelta(seconds=1))
    started = time.monotonic()
    at.run()
    assert time.monotonic() - started < 10
    assert any(f"#{number}" in t for t in _toasts(at))


# ---- in a real browser ------------------------------------------------------------------------------

FAKE_NOTIFICATION = """
window.__atendeNotes = [];
window.Notification = class {
  constructor(title, options) { window.__atendeNotes.push({title: title, body: (options || {}).body, tag: (options || {}).tag}); }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
};
"""


@pytest.mark.browser
def test_two_tabs_in_chromium_show_a_notification_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Debian's Chromium, the console started as `make run` starts it, two tabs of one technician:
    the toast and one desktop notification (the page's Notification API) in exactly one tab."""
    from playwright.sync_api import sync_playwright

    from helpdesk.db import dispose_engines
    from tests.browser.test_console_browser import CHROMIUM, CHROMIUM_ARGS, _dataset_db, _login, _start_console

    url, ids = _dataset_db(tmp_path)
    with session_scope(url) as s:
        notifications.run(s)  # the first run: history is not notified
    dispose_engines()
    console, console_url = _start_console(tmp_path, {"DATABASE_URL": url, "CONSOLE_NOTIFY_POLL_SECONDS": "5"})
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            pages = []
            for _ in range(2):
                context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="pt-BR")
                context.add_init_script(FAKE_NOTIFICATION)
                page = context.new_page()
                page.set_default_timeout(30_000)
                _login(page, console_url, "tiago@teste.dev", dataset.PASSWORD)
                pages.append(page)
            with session_scope(url) as s:
                number = tickets.open_ticket(s, customer_id=ids.a, channel="whatsapp", type="erro", module="pdv",
                                             description="Impressora fiscal parou", conversation_id=None).id
            with session_scope(url) as s:
                notifications.run(s)
            deadline = time.monotonic() + 40
            notes: list[list[dict]] = [[], []]
            while time.monotonic() < deadline and not any(notes):
                time.sleep(1)
                notes = [p.evaluate("window.__atendeNotes") for p in pages]
            tab = next(i for i, n in enumerate(notes) if n)
            toast = pages[tab].get_by_test_id("stToast").filter(has_text=f"Novo chamado #{number}")
            toast.first.wait_for(timeout=3_000)  # the toast is on screen in the same tab
            assert "Impressora fiscal parou" in toast.first.inner_text()
            time.sleep(11)  # two more polls of each tab
            notes = [p.evaluate("window.__atendeNotes") for p in pages]
            # Bruno logs in after the notification was created: the login's run jumps to the queue,
            # and the notification it claimed still pops up there
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="pt-BR")
            context.add_init_script(FAKE_NOTIFICATION)
            late = context.new_page()
            late.set_default_timeout(30_000)
            _login(late, console_url, "bruno@teste.dev", dataset.PASSWORD)
            late.get_by_test_id("stToast").filter(has_text=f"Novo chamado #{number}").first.wait_for(timeout=10_000)
            late.wait_for_function("window.__atendeNotes.length > 0", timeout=10_000)
            late_notes = late.evaluate("window.__atendeNotes")
            browser.close()
    finally:
        console.stop()
        dispose_engines()
    shown_in = [n for tab in notes for n in tab]
    assert len(shown_in) == 1, notes
    assert shown_in[0]["title"] == f"Novo chamado #{number} transferido pelo assistente"
    assert "Impressora fiscal parou" in shown_in[0]["body"]
    assert [n["title"] for n in late_notes] == [f"Novo chamado #{number} transferido pelo assistente"]
