"""Rasa's REST channel, for development and tests only, with nothing a client can claim.

Registered in the development credentials (bot/credentials.yml) as ``connectors.rest.DevRestInput``
under the path Rasa's own REST channel uses (``/webhooks/rest/webhook``); production credentials
leave it out and the proxy answers 404 there. Unlike Rasa's ``RestInput`` it:

- puts every sender in the ``rest:`` namespace (``{"sender": "5511987654321"}`` talks in
  ``rest:5511987654321``, never in the WhatsApp customer's ``whatsapp:5511987654321``);
- ignores the client's ``input_channel`` (always ``rest``) and ``metadata`` (dropped), so it can
  never carry an identity attestation: REST turns are anonymous;
- neutralises typed ``/intent`` commands, like every other channel;
- answers 400 to a body without a usable ``sender`` or ``message``.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Text

from rasa.core.channels.rest import RestInput
from sanic.exceptions import InvalidUsage as BadRequest  # 400 (Sanic 21 names it InvalidUsage)
from sanic.request import Request

from atende_contract import channels
from atende_contract.text import MAX_MESSAGE_CHARS, neutralise

logger = logging.getLogger(__name__)


class DevRestInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return channels.REST

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        body = req.json if isinstance(req.json, dict) else {}
        sender = body.get("sender")
        if isinstance(sender, (int, float)) and not isinstance(sender, bool):
            sender = str(sender)
        try:
            return channels.conversation_id(channels.REST, sender)
        except channels.BadConversationId as exc:
            raise BadRequest(f"'sender' must be a string without spaces of at most "
                             f"{channels.MAX_LOCAL_ID} characters") from exc

    def _extract_message(self, req: Request) -> Optional[Text]:
        body = req.json if isinstance(req.json, dict) else {}
        text = body.get("message")
        if not isinstance(text, str):
            raise BadRequest("'message' must be a string")
        # Longer texts reach the bot, which answers them politely (and stores nothing).
        return neutralise(text[: MAX_MESSAGE_CHARS * 10])

    def _extract_input_channel(self, req: Request) -> Text:
        return self.name()

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        body = request.json if isinstance(request.json, dict) else {}
        if body.get("metadata"):
            logger.info("rest: dropped client metadata (REST grants no identity)")
        return None
