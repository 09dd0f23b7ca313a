"""The website widget in Debian's Chromium, against a real Rasa server with the connector.

Uses the connector's fixture model (tests/connectors/fixtures/website_bot); the full product
journey (answer with sources → ticket) runs the same harness with the product model.
Run: .venv/bin/pytest tests/browser/test_widget.py   (screenshots in artifacts/)
"""

from __future__ import annotations

import re
import time
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from widget_harness import ChatPage, Stack, chromium, webchat_stack
from website_support import fixture_model

pytestmark = [pytest.mark.browser, pytest.mark.integration]

GREETING = "Olá! Sou o assistente de testes."
PRICE = "O plano Básico custa R$ 99."


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    website = {"allowed_payloads": ["/request_human", "/saudacao"]}
    with webchat_stack(fixture_model(), website=website, init_payload="/saudacao") as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def chat(stack: Stack, browser: Any) -> Iterator[ChatPage]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="pt-BR")
    page = context.new_page()
    errors: list = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield ChatPage(page, stack)
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def user_texts(stack: Stack, session_id: str) -> list:
    events = stack.rasa.tracker(f"web:{session_id}")["events"]  # the conversation is web:<session id>
    return [e["text"] for e in events if e["event"] == "user" and not e["text"].startswith("EXTERNAL")]


def test_conversation_with_formatting_sources_quick_replies_and_history(chat: ChatPage) -> None:
    chat.goto()
    assert chat.launcher.get_attribute("aria-expanded") == "false"
    chat.open()
    assert chat.dialog.get_attribute("aria-modal") == "true"
    # LGPD consent comes before any message: the composer is disabled until accepted.
    assert "LGPD" in chat.dialog.locator(".consent").inner_text()
    assert chat.input.is_disabled()
    chat.screenshot("widget-consent")
    chat.accept_consent()
    chat.wait_bot(GREETING)  # the init payload starts the conversation

    chat.send("quanto custa")
    answer = chat.wait_bot(PRICE)
    bubble = answer.first
    assert bubble.locator("strong").inner_text() == "Básico"
    link = bubble.locator("p a")
    assert link.get_attribute("href") == "https://example.com/precos"
    assert link.get_attribute("rel") == "noopener noreferrer nofollow"
    sources = bubble.locator(".sources li a")
    assert sources.all_inner_texts() == ["Tabela de preços"]
    replies = chat.dialog.locator(".replies .reply")
    assert replies.all_inner_texts() == ["Quero contratar", "Falar com vendas"]
    chat.screenshot("widget-answer-with-sources")

    replies.first.click()
    chat.wait_bot(GREETING, count=2)
    assert chat.user_messages() == ["quanto custa", "Quero contratar"]
    session = chat.session_id()
    assert user_texts(chat.stack, session) == ["/saudacao", "quanto custa", "/saudacao"]

    # Reload: same session, same transcript, nothing duplicated.
    before_bot = chat.bot_messages()
    chat.page.reload()
    chat.page.wait_for_function("() => window.AtendeChat && window.AtendeChat.__instance")
    chat.open()
    chat.page.wait_for_timeout(800)
    assert chat.session_id() == session
    assert chat.bot_messages() == before_bot
    assert chat.user_messages() == ["quanto custa", "Quero contratar"]
    chat.screenshot("widget-after-reload")


def test_html_in_messages_is_shown_as_text_never_run(chat: ChatPage) -> None:
    chat.goto()
    chat.open()
    chat.accept_consent()
    chat.wait_bot(GREETING)
    attack = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> **oi**'
    chat.send(attack)
    chat.dialog.locator(".msg.user").filter(has_text="<img").wait_for()
    chat.page.wait_for_timeout(500)
    assert chat.user_messages()[-1] == attack
    assert chat.dialog.locator(".msg img, .msg script").count() == 0
    assert chat.page.evaluate("() => window.__pwned") is None
    # The same text coming from the bot side is escaped too (rendered by the widget's formatter).
    chat.page.evaluate(
        "(t) => window.AtendeChat.__instance.onBotMessage({mid: 'x-1', text: t})", attack
    )
    bot = chat.dialog.locator(".msg.bot").last
    assert "<script>" in bot.inner_text() and bot.locator("img, script").count() == 0
    assert bot.locator("strong").inner_text() == "oi"
    assert chat.page.evaluate("() => window.__pwned") is None


def test_keyboard_focus_trap_and_escape(chat: ChatPage) -> None:
    chat.goto()
    chat.launcher.focus()
    chat.page.keyboard.press("Enter")
    chat.dialog.wait_for(state="visible")
    focused = "() => document.querySelector('#atende-chat-widget').shadowRoot.activeElement?.textContent"
    assert chat.page.evaluate(focused) == "Concordo e quero conversar"
    chat.page.keyboard.press("Enter")  # accept the consent with the keyboard
    chat.wait_bot(GREETING)
    inside = (
        "() => { const r = document.querySelector('#atende-chat-widget').shadowRoot;"
        " return !!r.activeElement && r.querySelector('[role=dialog]').contains(r.activeElement); }"
    )
    for _ in range(12):  # Tab cycles inside the dialog
        chat.page.keyboard.press("Tab")
        assert chat.page.evaluate(inside)
    for _ in range(4):
        chat.page.keyboard.press("Shift+Tab")
        assert chat.page.evaluate(inside)
    chat.page.keyboard.press("Escape")
    chat.dialog.wait_for(state="hidden")
    assert chat.launcher.get_attribute("aria-expanded") == "false"
    active_is_launcher = (
        "() => document.querySelector('#atende-chat-widget').shadowRoot.activeElement"
        "?.classList.contains('launcher')"
    )
    assert chat.page.evaluate(active_is_launcher)


def test_talk_to_a_human_is_always_at_hand(chat: ChatPage) -> None:
    chat.goto()
    chat.open()
    chat.accept_consent()
    chat.wait_bot(GREETING)
    chat.dialog.get_by_role("button", name="Falar com um atendente").click()
    chat.wait_bot("Vou chamar um atendente humano.")
    assert chat.user_messages() == ["Falar com um atendente"]
    assert user_texts(chat.stack, chat.session_id())[-1] == "/request_human"


def test_logged_in_customer_is_recognised_and_forged_token_refused(chat: ChatPage) -> None:
    chat.goto()
    first = chat.page.locator("#identity option").nth(1).inner_text()
    name = first.split("Cliente: ", 1)[1].split(" (", 1)[0]
    chat.choose_identity(first)
    chat.open()
    subtitle = chat.dialog.locator(".subtitle")
    subtitle.filter(has_text=f"Olá, {name}").wait_for(timeout=15000)
    chat.accept_consent()
    chat.wait_bot(GREETING)
    meta = [e.get("metadata", {}) for e in chat.stack.rasa.tracker(f"web:{chat.session_id()}")["events"]
            if e["event"] == "user"]
    # the token stays in the connector; Rasa gets the connector's attestation of its subject
    assert meta and "atende_attestation" in meta[-1] and "auth_token" not in meta[-1]
    assert meta[-1]["atende_attestation"]["cid"] == f"web:{chat.session_id()}"
    chat.screenshot("widget-logged-in")

    verified_session = chat.session_id()
    chat.choose_identity("Token forjado (teste)")
    chat.wait_bot("Não conseguimos confirmar sua identidade")
    assert "Olá," not in subtitle.inner_text()
    # The session carries a verified customer's conversation: a socket that cannot prove the same
    # subject is moved to a new session (no history, no technician replies of the customer's).
    chat.page.wait_for_function("(old) => window.AtendeChat.__instance.store.state.sessionId !== old",
                                arg=verified_session, timeout=20000)
    assert chat.session_id() != verified_session
    chat.send("oi")
    chat.wait_bot(GREETING)
    last_meta = [e.get("metadata", {}) for e in chat.stack.rasa.tracker(f"web:{chat.session_id()}")["events"]
                 if e["event"] == "user"][-1]
    assert "auth_token" not in last_meta and "atende_attestation" not in last_meta
    chat.screenshot("widget-forged-token")


def test_reconnect_loses_nothing_and_shows_nothing_twice(chat: ChatPage) -> None:
    chat.goto()
    chat.open()
    chat.accept_consent()
    chat.wait_bot(GREETING)
    session = chat.session_id()
    # Network loss: the socket drops; the visitor writes; an agent message is sent meanwhile.
    chat.page.evaluate("() => window.AtendeChat.__instance.socket.io.engine.close()")
    chat.page.evaluate("() => window.AtendeChat.__instance.socket.disconnect()")
    chat.dialog.locator(".status").wait_for(state="visible")
    chat.send("quanto custa")
    chat.dialog.locator(".msg.user .meta").filter(has_text="enviando").wait_for()
    chat.stack.rasa.trigger_intent(f"web:{session}", "EXTERNAL_ping")
    chat.screenshot("widget-offline")
    chat.page.evaluate("() => window.AtendeChat.__instance.socket.connect()")
    chat.wait_bot(PRICE)
    chat.wait_bot("Mensagem do atendente chegou.")
    chat.page.wait_for_timeout(1000)
    bots = chat.bot_messages()
    assert sum(PRICE in b for b in bots) == 1
    assert sum("Mensagem do atendente chegou." in b for b in bots) == 1
    assert chat.user_messages() == ["quanto custa"]
    assert user_texts(chat.stack, session) == ["/saudacao", "quanto custa"]
    assert chat.dialog.locator(".status").is_hidden()


def test_unread_badge_counts_messages_while_closed(chat: ChatPage) -> None:
    chat.goto()
    chat.open()
    chat.accept_consent()
    chat.wait_bot(GREETING)
    chat.dialog.locator(".close").click()
    chat.stack.rasa.trigger_intent(f"web:{chat.session_id()}", "EXTERNAL_ping")
    badge = chat.launcher.locator(".badge")
    badge.wait_for(state="visible", timeout=15000)
    assert badge.inner_text() == "1"
    assert "1 mensagem não lida" in (chat.launcher.get_attribute("aria-label") or "")
    chat.screenshot("widget-unread-badge")
    chat.open()
    assert badge.is_hidden()


def test_typing_indicator_appears_while_waiting(chat: ChatPage) -> None:
    chat.goto()
    chat.open()
    chat.accept_consent()
    chat.wait_bot(GREETING)
    # Show the indicator when the message is acknowledged; a reply hides it.
    chat.page.evaluate("() => window.AtendeChat.__instance.onAck({client_id: 'zz', status: 'accepted'})")
    typing = chat.dialog.locator(".typing")
    assert typing.is_visible()
    assert typing.get_attribute("aria-label") == "O assistente está digitando"
    chat.send("oi")
    chat.wait_bot(GREETING, count=2)
    time.sleep(0.2)
    assert typing.is_hidden()


@pytest.mark.parametrize("listing", [
    "[1] Manual do PDV — https://docs.example.com/pdv\n[2] Guia da NF-e — https://docs.example.com/nfe",
    "• Manual do PDV: https://docs.example.com/pdv\n• Guia da NF-e: https://docs.example.com/nfe",  # older bots
])
def test_sources_written_in_the_text_are_shown_once(chat: ChatPage, listing: str) -> None:
    chat.goto()
    chat.open()
    chat.accept_consent()
    chat.wait_bot(GREETING)
    message = {
        "mid": "y-1",
        "text": f"Para emitir a nota, abra o PDV [1] e transmita [2].\n\nFontes:\n{listing}",
        "custom": {"sources": [{"title": "Manual do PDV", "url": "https://docs.example.com/pdv"},
                               {"title": "Guia da NF-e", "url": "https://docs.example.com/nfe"}]},
    }
    chat.page.evaluate("(m) => window.AtendeChat.__instance.onBotMessage(m)", message)
    chat.page.evaluate("(m) => window.AtendeChat.__instance.onBotMessage(m)", message)  # resent
    bubbles = chat.dialog.locator(".msg.bot").filter(has_text="Para emitir a nota")
    assert bubbles.count() == 1
    text = bubbles.first.inner_text()
    assert text.count("Manual do PDV") == 1 and "Fontes:" not in text and "[1] e transmita [2]" in text
    # numbered in the order of the citations: the list's first item is [1]
    links = bubbles.first.locator(".sources li a")
    assert links.all_inner_texts() == ["Manual do PDV", "Guia da NF-e"]
    assert links.first.get_attribute("href") == "https://docs.example.com/pdv"


def test_small_screens_get_a_full_screen_chat(stack: Stack, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 760}, is_mobile=True)
    try:
        chat = ChatPage(context.new_page(), stack)
        chat.goto()
        chat.open()
        box = chat.dialog.bounding_box()
        assert box is not None and box["width"] == 390 and box["height"] == 760
        chat.accept_consent()
        chat.wait_bot(GREETING)
        chat.screenshot("widget-mobile")
        chat.dialog.locator(".close").click()
        chat.dialog.wait_for(state="hidden")
    finally:
        context.close()


def test_socketio_url_carries_the_stored_session_id_from_the_first_visit(chat: ChatPage) -> None:
    """A proxy pins each conversation on `session_id` in the socket.io URL: it must be there on
    every request, from the first one of a first visit, equal to the id kept in localStorage."""
    urls: list = []
    chat.page.on("request", lambda r: urls.append(r.url) if "/socket.io/" in r.url else None)
    chat.page.on("websocket", lambda ws: urls.append(ws.url) if "/socket.io/" in ws.url else None)
    confirmed = "() => window.AtendeChat && window.AtendeChat.__instance.confirmed"

    def stored_id() -> str:
        value = chat.page.evaluate(
            "() => Object.keys(localStorage).filter((k) => k.endsWith(':session'))"
            ".map((k) => JSON.parse(localStorage.getItem(k)))"
        )
        assert len(value) == 1, value
        return str(value[0])

    def url_ids() -> list:
        return [parse_qs(urlsplit(u).query).get("session_id") for u in urls]

    chat.goto()  # a fresh browser context: a first visit, nothing stored
    chat.page.wait_for_function(confirmed)
    first = stored_id()
    assert re.fullmatch(r"[A-Za-z0-9_-]{8,64}", first)
    assert chat.session_id() == first
    assert urls and url_ids() == [[first]] * len(urls), urls
    chat.open()
    chat.accept_consent()
    chat.wait_bot(GREETING)
    assert user_texts(chat.stack, first) == ["/saudacao"]  # the browser-made id is the sender id

    urls.clear()
    chat.page.reload()
    chat.page.wait_for_function(confirmed)
    assert stored_id() == first
    assert urls and url_ids() == [[first]] * len(urls), urls

    # A new conversation gets a new id, and a new connection whose URL carries it.
    urls.clear()
    chat.page.evaluate("() => window.AtendeChat.newConversation()")
    chat.page.wait_for_function(confirmed)
    second = stored_id()
    assert second != first and chat.session_id() == second
    assert urls and url_ids() == [[second]] * len(urls), urls


# A page where WebSockets cannot open, as behind a proxy that refuses the upgrade: every
# socket.io WebSocket goes to a closed loopback port, so the browser reports a real error.
BLOCK_WEBSOCKETS = """
((closedPort) => {
  const Native = window.WebSocket;
  window.__wsAttempts = [];
  class Blocked extends Native {
    constructor(url, protocols) {
      window.__wsAttempts.push(String(url));
      const target = String(url).includes("/socket.io/") ? `ws://127.0.0.1:${closedPort}/blocked` : url;
      super(target, protocols);
    }
  }
  window.WebSocket = Blocked;
})(%d);
"""


def test_falls_back_to_polling_when_websockets_cannot_open(chat: ChatPage) -> None:
    from ops.procs import free_port

    chat.page.add_init_script(BLOCK_WEBSOCKETS % free_port())
    requests: list = []
    chat.page.on("request", lambda r: requests.append(r.url) if "/socket.io/" in r.url else None)
    transport = "() => window.AtendeChat.__instance.socket.io.engine.transport.name"
    order = "() => window.AtendeChat.__instance.socket.io.opts.transports"

    chat.goto()
    chat.open()
    chat.accept_consent()
    chat.wait_bot(GREETING)
    attempts = chat.page.evaluate("() => window.__wsAttempts")
    assert attempts and "/socket.io/" in attempts[0]  # a WebSocket was tried first, and failed
    assert chat.page.evaluate(transport) == "polling"
    assert chat.page.evaluate(order)[0] == "polling"  # reconnects start with polling
    assert requests and all(parse_qs(urlsplit(u).query).get("transport") == ["polling"]
                            for u in requests)

    chat.send("quanto custa")
    chat.wait_bot(PRICE)
    replies = chat.dialog.locator(".replies .reply")
    assert replies.all_inner_texts() == ["Quero contratar", "Falar com vendas"]
    replies.first.click()
    chat.wait_bot(GREETING, count=2)
    session = chat.session_id()

    # Network loss over polling: the visitor writes, an agent message comes meanwhile.
    chat.page.evaluate("() => window.AtendeChat.__instance.socket.io.engine.close()")
    chat.page.evaluate("() => window.AtendeChat.__instance.socket.disconnect()")
    chat.dialog.locator(".status").wait_for(state="visible")
    chat.send("quanto custa")
    chat.dialog.locator(".msg.user .meta").filter(has_text="enviando").wait_for()
    chat.stack.rasa.trigger_intent(f"web:{session}", "EXTERNAL_ping")
    chat.page.evaluate("() => window.AtendeChat.__instance.socket.connect()")
    chat.wait_bot(PRICE, count=2)
    chat.wait_bot("Mensagem do atendente chegou.")
    chat.page.wait_for_timeout(1000)
    assert chat.page.evaluate(transport) == "polling"
    assert chat.dialog.locator(".status").is_hidden()
    bots = chat.bot_messages()
    assert sum(PRICE in b for b in bots) == 2
    assert sum("Mensagem do atendente chegou." in b for b in bots) == 1
    assert chat.user_messages() == ["quanto custa", "Quero contratar", "quanto custa"]
    assert user_texts(chat.stack, session) == ["/saudacao", "quanto custa", "/saudacao", "quanto custa"]

    # Reload (still no WebSocket): same session, same history, nothing twice.
    chat.page.reload()
    chat.page.wait_for_function("() => window.AtendeChat && window.AtendeChat.__instance.confirmed")
    chat.open()
    chat.page.wait_for_timeout(800)
    assert chat.session_id() == session
    assert chat.page.evaluate(transport) == "polling"
    assert chat.bot_messages() == bots
    assert chat.user_messages() == ["quanto custa", "Quero contratar", "quanto custa"]
    chat.screenshot("widget-polling-fallback")
