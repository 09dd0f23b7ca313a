"""The widget against the real assistant: the project's model, the real action server, the demo
data and the indexed demo documentation (the session's `atende_stack`), in Debian's Chromium.

Journey 1 from the browser: a question answered from the docs with its sources → "Não" → the
offer of support → "Sim, abrir chamado" → the ticket opened, its number shown, and the ticket in
the database linked to this conversation; a reload shows the history; a logged-in customer is
greeted by name, a forged token is refused.
"""
from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

from helpdesk.db import dispose_engines, session_scope
from tests.support.stack import WEBCHAT_SECRET, Stack
from widget_harness import ARTIFACTS, ChatPage, chromium, ensure_widget_built
from website_support import DemoSite

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(600)]


class _Site:
    def __init__(self, demo: DemoSite) -> None:
        self.demo = demo


@pytest.fixture(scope="module")
def site(atende_stack: Stack) -> Iterator[_Site]:
    ensure_widget_built()
    demo = DemoSite(atende_stack.rasa_url, env={"WEBCHAT_JWT_SECRET": WEBCHAT_SECRET,
                                                "DATABASE_URL": atende_stack.database_url,
                                                "WEBCHAT_INIT_PAYLOAD": "/greet"})
    with demo:
        yield _Site(demo)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def chat(site: _Site, browser: Any) -> Iterator[ChatPage]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="pt-BR")
    page = context.new_page()
    yield ChatPage(page, site)  # type: ignore[arg-type]
    context.close()


def _click(chat: ChatPage, title: str) -> None:
    chat.dialog.get_by_role("button", name=title).last.click()


def test_question_answer_with_sources_not_resolved_ticket_opened(chat: ChatPage, atende_stack: Stack) -> None:
    chat.goto()
    chat.open()
    chat.accept_consent()
    chat.wait_bot("Olá", timeout=60000)
    chat.send("como faço para emitir uma nota fiscal eletronica?")
    chat.wait_bot("Isso resolveu?", timeout=90000)
    # the answer lists its sources under it (links to the documentation)
    sources = chat.dialog.locator("a[href*='nfe'], a[href*='nf-e'], a[href*='demo_docs']")
    assert sources.count() >= 1
    # shown once: the numbered "Fontes:" block of the text ("[1] Título — URL") gives way to the list
    answer = chat.dialog.locator(".msg.bot").filter(has=chat.page.locator(".sources")).last
    shown = answer.inner_text()
    assert "Fontes:" not in shown and " — http" not in shown, shown
    _click(chat, "Não")
    chat.wait_bot("Quer que eu abra um chamado", timeout=60000)
    _click(chat, "Sim, abrir chamado")
    for _ in range(4):  # the form asks only what the question did not already tell
        texts = " ".join(chat.bot_messages())
        if re.search(r"chamado #\d+", texts):
            break
        if "Em qual módulo" in texts.split("Sim, abrir chamado")[-1]:
            chat.send("NF-e")
        elif "Que tipo de atendimento" in texts.split("Sim, abrir chamado")[-1]:
            _click(chat, "Erro")
        chat.page.wait_for_timeout(3000)
    opened = chat.wait_bot("Abri o chamado #", timeout=90000)
    number = int(re.search(r"#(\d+)", opened.last.inner_text()).group(1))  # type: ignore[union-attr]
    chat.page.screenshot(path=str(ARTIFACTS / "widget-real-journey-ticket.png"))

    from helpdesk.models import Ticket

    with session_scope(atende_stack.database_url) as s:
        ticket = s.get(Ticket, number)
        assert ticket is not None and ticket.channel == "web" and ticket.status == "novo"
        assert "nota fiscal" in ticket.description.lower()
        conversation = ticket.conversation_id
    dispose_engines()
    # the ticket belongs to this browser's conversation, and the tracker store has the whole exchange
    stored = chat.page.evaluate("() => Object.entries(localStorage).map(e => e.join('=')).join(';')")
    assert conversation and conversation.startswith("web:") and conversation[len("web:"):] in stored

    before = len(chat.bot_messages())
    chat.page.reload()
    chat.page.wait_for_function("() => window.AtendeChat && window.AtendeChat.__instance")
    chat.open()
    chat.wait_bot("Abri o chamado #", timeout=30000)
    assert len(chat.bot_messages()) >= before - 1


def _open_as(chat: ChatPage, identity: str) -> None:
    chat.goto()
    chat.page.select_option("#identity", identity)
    chat.page.reload()
    chat.page.wait_for_function("() => window.AtendeChat && window.AtendeChat.__instance")
    chat.open()
    chat.accept_consent()


def test_logged_in_customer_is_greeted_by_name(chat: ChatPage) -> None:
    _open_as(chat, "1")  # Joana Ribeiro, Padaria Pão Dourado (demo data, customer 1)
    chat.wait_bot("Olá, Joana!", timeout=60000)
    chat.page.screenshot(path=str(ARTIFACTS / "widget-real-logged-in.png"))


def test_forged_token_is_refused_and_the_visitor_stays_anonymous(chat: ChatPage) -> None:
    _open_as(chat, "forged")  # a token for customer 1 signed with another secret
    chat.wait_bot("Não conseguimos confirmar sua identidade", timeout=60000)
    chat.send("oi")
    chat.wait_bot("Olá! Sou a assistente virtual", timeout=60000)
    assert not any("Joana" in t for t in chat.bot_messages())
