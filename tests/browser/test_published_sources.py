"""A cited source opens its page, on its section (issue 14 item 7), in Debian's Chromium.

The real assistant (the session's `atende_stack`: Rasa, action server, demo data and the demo
documentation ingested by `python -m knowledge ingest`, which publishes its pages) behind the demo
site, with the fixtures of test_widget_journeys.py: a demo question in the widget, a click on the
first source, and the page Atende published opens on the cited section.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from test_widget_journeys import browser, chat, site  # noqa: F401  (the journeys' fixtures)
from tests.support.stack import Stack
from widget_harness import ARTIFACTS, ChatPage

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(600)]


def test_a_cited_source_opens_the_published_page_on_its_section(chat: ChatPage, atende_stack: Stack) -> None:  # noqa: F811
    chat.goto()
    chat.open()
    chat.accept_consent()
    chat.wait_bot("Olá", timeout=60000)
    chat.send("como faço sangria no pdv?")
    chat.wait_bot("Isso resolveu?", timeout=90000)
    link = chat.dialog.locator(".msg.bot .sources a").first
    link.wait_for(state="visible")
    href, title = str(link.get_attribute("href")), link.inner_text()
    rasa = urlsplit(atende_stack.rasa_url)
    parts = urlsplit(href)
    # a page Atende published beside the widget, with the section of the cited passage
    assert (parts.scheme, parts.netloc) == (rasa.scheme, rasa.netloc), href
    assert parts.path.startswith("/docs/erp-demo/pdv/") and parts.path.endswith(".html"), href
    assert parts.fragment, href

    with chat.page.context.expect_page() as opened:
        link.click()  # target=_blank: a new tab
    page: Any = opened.value
    page.wait_for_load_state("load")
    assert page.url == href
    section = page.locator(f"[id='{parts.fragment}']")
    assert section.count() == 1
    assert section.evaluate("e => e.tagName").lower() in {"h1", "h2", "h3", "h4", "h5", "h6"}
    # the section the widget named: "<page title> › <section>"
    assert section.inner_text().strip() == title.split(" › ")[-1].strip(), (title, section.inner_text())
    assert page.locator(":target").evaluate("e => e.id") == parts.fragment
    assert page.locator("h1").first.inner_text().strip() == title.split(" › ")[0].strip()
    # the page's own style applies (the policy allows it by its hash): the target is highlighted
    assert section.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 248, 197)"
    page.screenshot(path=str(ARTIFACTS / "published-source-section.png"))
    headers = page.request.get(href).headers
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert headers["x-content-type-options"] == "nosniff"
    assert page.locator("script").count() == 0
    page.close()
