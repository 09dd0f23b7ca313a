"""Helpers for browser tests of the website chat (app env): the stack and a page object.

    with webchat_stack(model_path, actions=True) as stack:   # Rasa + action server + demo site
        with chromium() as browser:
            page = browser.new_page()
            chat = ChatPage(page, stack)
            chat.goto(); chat.open(); chat.accept_consent(); chat.send("oi")

``webchat_stack`` takes any trained model: the connector fixture model, or the product model
(``models/*.tar.gz``) with ``actions=True`` for full journeys.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "connectors"))

from website_support import ActionServer, DemoSite, RasaServer  # noqa: E402

ARTIFACTS = REPO / "artifacts"
WIDGET_DIR = REPO / "widget"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def ensure_widget_built() -> Path:
    """Build widget/dist/widget.js from source when missing or older than its sources."""
    bundle = WIDGET_DIR / "dist" / "widget.js"
    sources = [p for p in (WIDGET_DIR / "src").rglob("*") if p.is_file()]
    newest = max(p.stat().st_mtime for p in sources)
    if bundle.exists() and bundle.stat().st_mtime >= newest:
        return bundle
    if not (WIDGET_DIR / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WIDGET_DIR, check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["npm", "run", "build"], cwd=WIDGET_DIR, check=True, stdout=subprocess.DEVNULL)
    return bundle


@dataclass
class Stack:
    rasa: RasaServer
    demo: DemoSite
    actions: Optional[ActionServer]


@contextlib.contextmanager
def webchat_stack(
    model: Path,
    *,
    actions: bool = False,
    actions_env: Optional[Dict[str, str]] = None,
    website: Optional[Dict[str, Any]] = None,
    init_payload: str = "/greet",
    endpoints: Optional[Path] = None,
    rasa_env: Optional[Dict[str, str]] = None,
) -> Iterator[Stack]:
    """Rasa (website connector) + optional action server + demo site, all on free ports."""
    ensure_widget_built()
    with contextlib.ExitStack() as stack:
        action_server = stack.enter_context(ActionServer(env=actions_env)) if actions else None
        config: Dict[str, Any] = {"allowed_origins": []}  # development default: localhost origins
        config.update(website or {})
        rasa = stack.enter_context(
            RasaServer(model, website=config, env=rasa_env, endpoints=endpoints,
                       action_url=action_server.url if action_server else None)
        )
        demo = stack.enter_context(DemoSite(rasa.url, env={"WEBCHAT_INIT_PAYLOAD": init_payload}))
        yield Stack(rasa=rasa, demo=demo, actions=action_server)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class ChatPage:
    """The demo page and the widget inside it (Playwright locators pierce its shadow root)."""

    def __init__(self, page: Any, stack: Stack) -> None:
        self.page = page
        self.stack = stack

    def goto(self, path: str = "/") -> None:
        self.page.goto(self.stack.demo.url + path)
        self.page.wait_for_function("() => window.AtendeChat && window.AtendeChat.__instance")

    @property
    def launcher(self) -> Any:
        return self.page.locator("#atende-chat-widget .launcher")

    @property
    def dialog(self) -> Any:
        return self.page.locator("#atende-chat-widget [role=dialog]")

    @property
    def input(self) -> Any:
        return self.dialog.locator("textarea")

    def open(self) -> None:
        if not self.dialog.is_visible():
            self.launcher.click()
        self.dialog.wait_for(state="visible")

    def accept_consent(self) -> None:
        self.dialog.get_by_role("button", name="Concordo e quero conversar").click()

    def send(self, text: str) -> None:
        self.input.fill(text)
        self.input.press("Enter")

    def bot_messages(self) -> List[str]:
        return self.dialog.locator(".msg.bot, .msg.notice").all_inner_texts()

    def user_messages(self) -> List[str]:
        return self.dialog.locator(".msg.user").all_inner_texts()

    def wait_bot(self, contains: str, count: int = 1, timeout: float = 20000) -> Any:
        locator = self.dialog.locator(".msg.bot, .msg.notice").filter(has_text=contains)
        locator.nth(count - 1).wait_for(state="visible", timeout=timeout)
        return locator

    def session_id(self) -> str:
        return str(self.page.evaluate("() => window.AtendeChat.__instance.store.state.sessionId"))

    def choose_identity(self, label: str) -> None:
        self.page.select_option("#identity", label=label)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path
