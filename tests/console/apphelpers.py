"""Helpers to drive the console with streamlit.testing.v1.AppTest."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from unittest.mock import patch

from streamlit.proto.Navigation_pb2 import Navigation
from streamlit.testing.v1 import AppTest, local_script_runner
from streamlit.testing.v1.element_tree import parse_tree_from_messages
from streamlit.util import calc_md5

APP = str(Path(__file__).resolve().parents[2] / "console" / "app.py")


class ConsoleTest(AppTest):
    """AppTest that keeps what a browser keeps between runs: the page it is on.

    After each run it reads the navigation that the console sent (``st.navigation``): the menu
    (``menu``) and the page that ran, which the next run requests, as the browser's URL would. So
    a page switch (``st.switch_page``, e.g. the queue's "Abrir") sticks, and ``goto`` opens a
    page by its URL path."""

    navigation: Navigation | None = None

    def _run(self, widget_state: Any = None, timeout: float | None = None) -> "ConsoleTest":
        sent: list[Navigation] = []

        def parse(messages: list[Any]) -> Any:
            sent.extend(m.navigation for m in messages if m.HasField("navigation"))
            return parse_tree_from_messages(messages)

        with patch.object(local_script_runner, "parse_tree_from_messages", parse):
            super()._run(widget_state, timeout)
        if sent:
            self.navigation = sent[-1]
            self._page_hash = sent[-1].page_script_hash
            if len({n.page_script_hash for n in sent}) > 1:
                return self._run(None, timeout)
        return self

    def open_path(self, url_path: str) -> None:
        """The next run requests ``url_path`` (Streamlit names a page by the hash of its path)."""
        self._page_hash = calc_md5(url_path)


def new_app() -> ConsoleTest:
    return ConsoleTest(APP, default_timeout=60)


def login(email: str, password: str, at: AppTest | None = None) -> AppTest:
    at = at or new_app().run()
    at.text_input(key="login_email").input(email)
    at.text_input(key="login_password").input(password)
    at.button(key="login_submit").click().run()
    return at


def goto(at: AppTest, url_path: str, **params: Any) -> AppTest:
    """Open ``/<url_path>?<params>``, as typing the URL would (e.g. ``goto(at, "chamado", id=42)``)."""
    assert isinstance(at, ConsoleTest)
    at.query_params.clear()
    for key, value in params.items():
        at.query_params[key] = str(value)
    at.open_path(url_path)
    return at.run()


def menu(at: AppTest) -> list[str]:
    """The titles in the console's navigation menu (hidden pages left out)."""
    assert isinstance(at, ConsoleTest) and at.navigation is not None
    return [p.page_name for p in at.navigation.app_pages if not p.is_hidden]


def current_path(at: AppTest) -> str:
    """The URL path of the page the last run showed."""
    assert isinstance(at, ConsoleTest) and at.navigation is not None
    return next(p.url_pathname for p in at.navigation.app_pages
                if p.page_script_hash == at.navigation.page_script_hash)


_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(markdown: str) -> str:
    """What a Markdown element escaped with ``console.ui.md`` shows: the backslash escapes undone,
    the invisible word joiners left out."""
    return _ESCAPED.sub(r"\1", markdown).replace("\u2060", "")


def texts(at: AppTest) -> list[str]:
    return [str(t.value) for t in at.text]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: shown(str(m.value)) for m in at.metric}


def messages(at: AppTest, kind: str) -> list[str]:
    """The alerts of one kind as the user reads them (they are escaped Markdown)."""
    return [shown(str(e.value)) for e in getattr(at, kind)]


class FakeClock:
    """A clock for ``technicians.login_throttle`` that only moves when told to."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# Customer text that would turn into markup if a Markdown element read it as such.
EVIL = ("**negrito** [link](http://mal.example/x) <img src=x onerror=alert(1)> "
        "![](http://rastreador.example/p.png) <script>alert('x')</script> $x^2$ :red[vermelho]")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")


def rendered(markdown: str) -> str:
    """HTML of a Markdown body, as a CommonMark renderer makes it (Streamlit's is CommonMark + GFM)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def markdown_bodies(at: AppTest) -> list[str]:
    """The body of every element that renders Markdown: texts, headings, alerts, metrics, buttons."""
    bodies = [str(e.value) for kind in ("markdown", "caption", "title", "header", "subheader",
                                        "error", "warning", "info", "success") for e in getattr(at, kind)]
    bodies += [str(m.value) for m in at.metric] + [str(m.label) for m in at.metric]
    bodies += [str(b.label) for b in at.button]
    return bodies


def assert_plain(markdown: str, literal: str | None = None) -> None:
    """A Markdown body renders as one plain paragraph (no link, image, emphasis, HTML) that shows
    ``literal`` exactly as typed."""
    import html

    out = rendered(markdown)
    tags = {name.lower() for _close, name in _TAG.findall(out)}
    assert tags <= {"p"}, (markdown, out)
    if literal is not None:
        assert literal in html.unescape(out).replace("\u2060", ""), (literal, out)


def assert_no_markup_from(at: AppTest, *fragments: str) -> None:
    """Every Markdown element that carries any of ``fragments`` (pieces of customer text) renders
    it as plain text."""
    for body in markdown_bodies(at):
        if any(f in shown(body) for f in fragments):
            assert_plain(body)
