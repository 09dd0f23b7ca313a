"""HTTP client for the Rasa server's conversation API (agent replies and ticket closing).

The console never talks to a customer directly: it triggers an external intent on the customer's
Rasa conversation with ``output_channel=latest``, and the channel connector (WhatsApp or website)
delivers the bot's utterance on the channel the customer last used. See docs/contracts.md.

Authentication: an ``Authorization: Bearer <JWT>`` header, HS256 with RASA_JWT_SECRET (Rasa runs
with ``--jwt-secret``, see ops/rasa_launch.py), never a token in the query string (URLs end up in
proxy and server logs). Each call signs a fresh token valid for a minute, with the ``admin`` role
that Rasa 3.6 requires to act on any conversation (``user.role``; a ``user`` role only reaches the
conversation named by ``user.username``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import jwt

from ..config import get_settings
from ..errors import DomainError

log = logging.getLogger(__name__)

AGENT_REPLY_INTENT = "EXTERNAL_agent_reply"
TICKET_CLOSED_INTENT = "EXTERNAL_ticket_closed"
DEFAULT_TIMEOUT_S = 10.0
TOKEN_LIFETIME_S = 60
CONSOLE_USERNAME = "atende-console"


def api_token(secret: str, *, lifetime_s: int = TOKEN_LIFETIME_S, now: float | None = None) -> str:
    """A bearer JWT for Rasa 3.6's HTTP API: admin role, short expiry."""
    issued = int(time.time() if now is None else now)
    payload = {"user": {"username": CONSOLE_USERNAME, "role": "admin"}, "iat": issued, "exp": issued + lifetime_s}
    return jwt.encode(payload, secret, algorithm="HS256")


class RasaUnavailable(DomainError):
    """The Rasa server did not accept the call (down, timeout, HTTP error)."""

    message_pt = ("Não foi possível falar com o assistente (Rasa): a mensagem não chegou ao cliente. "
                  "Tente novamente em instantes.")


@dataclass(frozen=True)
class RasaClient:
    base_url: str
    jwt_secret: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_settings(cls) -> "RasaClient":
        settings = get_settings()
        return cls(base_url=settings.rasa_url, jwt_secret=settings.rasa_jwt_secret)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_token(self.jwt_secret)}"} if self.jwt_secret else {}

    def trigger_intent(self, conversation_id: str, name: str, entities: dict[str, Any]) -> dict[str, Any]:
        """POST /conversations/{id}/trigger_intent; returns Rasa's JSON answer or raises RasaUnavailable."""
        if not conversation_id:
            raise RasaUnavailable("no conversation id",
                                  "Este chamado não está ligado a uma conversa do assistente.")
        # Rasa (Sanic) does not percent-decode the id in the path: a namespaced id (`web:<session>`,
        # `whatsapp:<wa_id>`) must keep its `:`, or the call reaches another, empty conversation.
        url = f"{self.base_url.rstrip('/')}/conversations/{quote(conversation_id, safe=':@')}/trigger_intent"
        try:
            response = httpx.post(url, params={"output_channel": "latest"}, headers=self.headers(),
                                  json={"name": name, "entities": entities}, timeout=self.timeout_s)
        except httpx.HTTPError as err:
            log.warning("Rasa trigger_intent %s for %s failed: %s", name, conversation_id, err)
            raise RasaUnavailable(f"Rasa at {self.base_url} unreachable: {err}") from err
        if response.status_code >= 400:
            log.warning("Rasa trigger_intent %s for %s answered %s: %s", name, conversation_id,
                        response.status_code, response.text[:500])
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code}: {response.text[:200]}",
                                  f"O assistente (Rasa) recusou o envio (HTTP {response.status_code}): "
                                  "a mensagem não chegou ao cliente.")
        try:
            body = response.json()
        except ValueError:
            body = {}
        return body if isinstance(body, dict) else {}

    def agent_reply(self, conversation_id: str, *, agent_text: str, agent_name: str) -> dict[str, Any]:
        return self.trigger_intent(conversation_id, AGENT_REPLY_INTENT,
                                   {"agent_text": agent_text, "agent_name": agent_name})

    def ticket_closed(self, conversation_id: str, *, ticket_number: str) -> dict[str, Any]:
        return self.trigger_intent(conversation_id, TICKET_CLOSED_INTENT, {"ticket_number": ticket_number})
