"""Helpers to drive the console with streamlit.testing.v1.AppTest."""
from __future__ import annotations

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


def texts(at: AppTest) -> list[str]:
    return [str(t.value) for t in at.text]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


def messages(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]
