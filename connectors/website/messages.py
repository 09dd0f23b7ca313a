"""Checks on one message a visitor sends, and the pt-BR notices that answer a refused one.

- typed text never reaches Rasa as an ``/intent`` command (:func:`neutralise_typed_text`);
- ``client_id`` (the widget's resend id of a message) has a bounded, plain form;
- a message over the limit, too fast or empty gets a notice shown like a bot message.

Pure: no Rasa, no socket.io import.
"""

from __future__ import annotations

import re
from typing import Any

from atende_contract.text import neutralise

# User-facing texts (pt-BR).
MSG_TOO_LONG = (
    "Sua mensagem é longa demais ({size} caracteres). Envie no máximo {limit} caracteres "
    "por mensagem; se precisar, divida o texto em partes."
)
MSG_RATE = (
    "Você está enviando mensagens rápido demais. Aguarde alguns segundos e tente de novo; "
    "as últimas mensagens não foram enviadas."
)
MSG_EMPTY = "Não consegui ler sua mensagem. Tente escrever de novo."

CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def too_long_notice(size: int, limit: int) -> str:
    """The notice for a message of ``size`` characters over ``limit`` (pt-BR thousands dots)."""
    return MSG_TOO_LONG.format(size=_thousands(size), limit=_thousands(limit))


def _thousands(number: int) -> str:
    return f"{number:,}".replace(",", ".")


def neutralise_typed_text(text: str) -> str:
    """Remove leading slashes so typed text can never be read as an ``/intent`` command."""
    return neutralise(text)


def valid_client_id(value: Any) -> bool:
    return isinstance(value, str) and bool(CLIENT_ID_RE.match(value))
