"""Conversation tests: the trained model, the real action server and the SQL tracker store.

The stack (tests/support/stack.py) runs Rasa (bot env) and the action server (app env) as real
processes on free loopback ports over a fresh SQLite database with the demo data.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from tests.support.stack import Stack, rasa_auth_headers

pytestmark = pytest.mark.integration


# `model` and `stack` (one real Rasa + action server for the whole run) are in tests/conftest.py,
# shared with tests/security.


class Chat:
    """One customer talking to the bot over Rasa's REST channel."""

    def __init__(self, stack: Stack, sender: str) -> None:
        self.stack = stack
        self.sender = sender
        # The REST channel puts every sender in its own namespace (connectors/rest.py).
        self.conversation = f"rest:{sender}"

    def say(self, text: str, metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"sender": self.sender, "message": text}
        if metadata:
            body["metadata"] = metadata
        resp = requests.post(f"{self.stack.rasa_url}/webhooks/rest/webhook", json=body, timeout=120)
        assert resp.status_code == 200, resp.text
        return list(resp.json())

    def texts(self, text: str, metadata: dict[str, Any] | None = None) -> list[str]:
        return [m.get("text", "") for m in self.say(text, metadata)]

    def trigger(self, name: str, entities: dict[str, Any]) -> list[dict[str, Any]]:
        resp = requests.post(f"{self.stack.rasa_url}/conversations/{self.conversation}/trigger_intent",
                             params={"output_channel": "latest"}, headers=rasa_auth_headers(),
                             json={"name": name, "entities": entities}, timeout=120)
        assert resp.status_code == 200, resp.text
        return list(resp.json().get("messages") or [])

    def tracker(self) -> dict[str, Any]:
        resp = requests.get(f"{self.stack.rasa_url}/conversations/{self.conversation}/tracker",
                            headers=rasa_auth_headers(), timeout=60)
        assert resp.status_code == 200
        return dict(resp.json())

    def slots(self) -> dict[str, Any]:
        return dict(self.tracker()["slots"])


@pytest.fixture()
def chat(stack: Stack, request: pytest.FixtureRequest) -> Chat:
    # a sender is a bounded id without spaces or URL separators (connectors/rest.py)
    return Chat(stack, re.sub(r"[^A-Za-z0-9_.:-]", "_", f"conv-{request.node.name}")[:120])
