"""Message limits and text hygiene shared by the connectors and the actions."""

from __future__ import annotations

import re

# Longest customer message accepted by a connector, sent to the knowledge base or stored as a
# ticket's text. The connectors refuse longer messages; the actions answer them politely.
MAX_MESSAGE_CHARS = 2000

# Leading slashes (and backslashes, whitespace) that would make Rasa read typed text as an
# ``/intent{"slot": ...}`` command.
_LEADING_COMMAND = re.compile(r"^[\s/\\\uff0f\u2215\u2044]+")

# Intents only the console may trigger, through Rasa's token-protected HTTP API.
RESERVED_INTENT_PREFIX = "EXTERNAL_"


def neutralise(text: str) -> str:
    """Typed text that can never be read as an ``/intent`` command (leading slashes removed).

    Every connector applies this to what a user typed; only payloads that the bot itself offered
    (a quick reply, a WhatsApp button) reach Rasa with their slash.
    """
    return _LEADING_COMMAND.sub("", text or "")


def is_reserved_payload(text: str) -> bool:
    """True for a ``/EXTERNAL_...`` command, which no user message may carry."""
    stripped = (text or "").lstrip()
    return stripped.startswith("/") and stripped[1:].lstrip().upper().startswith(RESERVED_INTENT_PREFIX)
