"""Fixtures of the domain tests: a fresh login throttle per test, and a clock it reads."""
from __future__ import annotations

from typing import Iterator

import pytest

from helpdesk.services import technicians
from tests.console.apphelpers import FakeClock


@pytest.fixture(autouse=True)
def _fresh_login_throttle() -> Iterator[None]:
    """The login throttle lives in the process: no test sees another's failures."""
    technicians.login_throttle.reset()
    yield
    technicians.login_throttle.reset()


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(technicians.login_throttle, "clock", fake)
    return fake
