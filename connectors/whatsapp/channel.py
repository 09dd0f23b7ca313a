"""WhatsApp input and output channels for Rasa 3.6 (bot env).

Register in credentials.yml as ``connectors.whatsapp.WhatsAppInput:`` (no keys needed: it reads the
WHATSAPP_* variables and DATABASE_URL when Rasa loads it). Webhook: ``GET/POST
/webhooks/whatsapp/webhook`` (webhook.py, the same as the gateway's), plus ``POST
/webhooks/whatsapp/wake`` for the gateway. The worker (worker.py) starts with the server.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from atende_contract import channels

from .identity import CHANNEL_NAME
from .settings import WhatsAppSettings
from .webhook import register_webhook
from .worker import Worker

logger = logging.getLogger("connectors.whatsapp")


class WhatsAppOutput(OutputChannel):
    """Sends through the outbox, so proactive messages get the same retries and status tracking."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @staticmethod
    def _conversation_address(conversation: Text) -> Optional[str]:
        """The address of ``whatsapp:<address>`` (or of a legacy bare id); None for another channel's."""
        try:
            return channels.local_id(conversation, CHANNEL_NAME)
        except channels.BadConversationId:
            logger.warning("whatsapp: refused to send another channel's conversation to WhatsApp")
            return None

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        address = self._conversation_address(recipient_id)
        if address is not None:
            await self.worker.push(address, {k: v for k, v in message.items() if k != "recipient_id"})

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        address = self._conversation_address(recipient_id)
        if address is not None:
            await self.worker.push(address, {"text": text})


class WhatsAppInput(InputChannel):
    """Rasa input channel ``whatsapp``: webhook at ``/webhooks/whatsapp/webhook``."""

    def __init__(self, settings: Optional[WhatsAppSettings] = None) -> None:
        self.settings = settings or WhatsAppSettings.from_env()
        self.worker: Optional[Worker] = None

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WhatsAppInput":
        return cls(WhatsAppSettings.from_env(overrides=credentials or {}))

    def get_output_channel(self) -> Optional[OutputChannel]:
        return WhatsAppOutput(self.worker) if self.worker is not None else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("whatsapp_webhook", __name__)
        settings = self.settings
        if not settings.app_secret:
            logger.warning("whatsapp: WHATSAPP_APP_SECRET is not set; the webhook answers 503")
        worker = Worker(settings)
        self.worker = worker

        @bp.listener("after_server_start")
        async def _start(app: Any, _loop: Any) -> None:
            worker.start(app, on_new_message)

        @bp.listener("before_server_stop")
        async def _stop(_app: Any, _loop: Any) -> None:
            await worker.stop()

        # The same webhook as the gateway (gateway.py): one implementation.
        register_webhook(bp, settings, worker.ingest, lambda _new: worker.wake.set())

        @bp.route("/wake", methods=["POST"])
        async def wake(_request: Request) -> HTTPResponse:
            """The gateway stored new deliveries: look at the inbox now instead of at the next poll."""
            worker.wake.set()
            return response.json({"status": "ok"})

        return bp
