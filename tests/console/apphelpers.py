"""Helpers to drive the console with streamlit.testing.v1.AppTest."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "console" / "app.py")


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)


def login(email: str, password: str, at: AppTest | None = None) -> AppTest:
    at = at or new_app().run()
    at.text_input(key="login_email").input(email)
    at.text_input(key="login_password").input(password)
    at.button(key="login_submit").click().run()
    return at


def goto(at: AppTest, page: str, **params: Any) -> AppTest:
    at.query_params.clear()
    at.query_params["pagina"] = page
    for key, value in params.items():
        at.query_params[key] = str(value)
    return at.run()


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
