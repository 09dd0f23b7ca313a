"""The widget's LGPD consent in Debian's Chromium against the real stack (issue #17 part 1).

The card names the purposes. Accepting it sends `{version, policy_url}` with the messages, and the
action server records it once for this conversation (`privacy_consents`). A consent given to an
earlier text version (the `true` that older widgets stored) is asked for again.

The vendor's page is the demo site, whose privacy link is http and not the configured one
(`ATENDE_PRIVACY_POLICY_URL` is unset in this stack): the widget then sends `policy_url: null`, so
the consent is recorded without a link (the connector accepts only https or the configured link).
"""
from __future__ import annotations

from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from tests.support.stack import WEBCHAT_SECRET, Stack
from widget_harness import ChatPage, chromium, ensure_widget_built  # puts tests/connectors on sys.path
from website_support import DemoSite  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def site(atende_stack: Stack) -> Iterator[Any]:
    ensure_widget_built()
    demo = DemoSite(atende_stack.rasa_url, env={"WEBCHAT_JWT_SECRET": WEBCHAT_SECRET,
                                                "DATABASE_URL": atende_stack.database_url,
                                                "WEBCHAT_INIT_PAYLOAD": "/greet"})
    with demo:
        yield type("Site", (), {"demo": demo})()


@pytest.fixture
def chat(site: Any) -> Iterator[ChatPage]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="pt-BR")
        page = context.new_page()

        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        chat = ChatPage(page, site)
        chat.errors = errors  # type: ignore[attr-defined]
        yield chat
        context.close()


def _consents(stack: Stack, conversation: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT channel, text_version, policy_url FROM privacy_consents WHERE conversation_id = :c"),
                {"c": conversation})]
    finally:
        engine.dispose()


def test_the_consent_accepted_in_the_browser_is_recorded_once(chat: ChatPage, atende_stack: Stack) -> None:
    chat.page.goto(chat.stack.demo.url + "/")
    chat.page.wait_for_function("() => window.AtendeChat && window.AtendeChat.__instance", timeout=120000)
    assert chat.errors == []  # type: ignore[attr-defined]
    chat.open()
    card = chat.dialog.locator(".consent")
    text = card.inner_text()
    assert "abrir e acompanhar chamados" in text and "LGPD" in text
    assert "inteligência artificial" not in text  # no LLM in this stack
    policy = card.locator("a").get_attribute("href")
    assert policy == chat.stack.demo.url + "/privacidade"  # the page's link, made absolute
    chat.accept_consent()
    chat.wait_bot("Olá", timeout=90000)
    conversation = f"web:{chat.session_id()}"
    # an http link that is not ATENDE_PRIVACY_POLICY_URL is sent as null: the consent is recorded
    assert _consents(atende_stack, conversation) == [("website", "web-2026-12", None)]
    chat.send("obrigado")
    chat.wait_bot("", count=2, timeout=90000)
    assert len(_consents(atende_stack, conversation)) == 1

    # an older widget's consent (`true`) is not a consent to this text: the card comes back
    chat.page.evaluate("() => { for (const k of Object.keys(localStorage)) "
                       "if (k.endsWith(':consent')) localStorage.setItem(k, 'true'); }")
    chat.page.reload()
    chat.page.wait_for_function("() => window.AtendeChat && window.AtendeChat.__instance")
    chat.open()
    assert chat.dialog.locator(".consent").is_visible()
    assert chat.input.is_disabled()
