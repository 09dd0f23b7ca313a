"""Small builders shared by the test suites."""
from __future__ import annotations

from sqlalchemy.orm import Session

from helpdesk import demo


def seed_catalog(s: Session) -> None:
    """The demo catalog (products and modules), without customers or tickets."""
    demo._load_catalog(s)
