"""The website chat's output channel: one ``bot_uttered`` per bot message, to a session's room.

Rasa addresses a conversation id (``web:<session id>``, its ``recipient_id``); the socket.io
room is the session id itself. Each message is stamped with a unique ``mid`` and kept for
replay (:mod:`.history`) by the replica that produced it; the payloads a message offers as
buttons are remembered, so that only those pass as quick replies. Atende's widget listens on the
session's room, stock Rasa clients on its ``rasa:`` room and get Rasa's own shapes
(:func:`.shapes.rasa_shaped`); both are emitted through the server's client manager, so they
reach the session's sockets on every replica when the manager is shared (:mod:`.relay`).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Text

from rasa.core.channels.socketio import SocketIOOutput
from socketio import AsyncServer

from atende_contract import channels

from .sessions import SessionStore, valid_session_id
from .shapes import rasa_shaped, website_shaped
from .sockets import SocketRegistry, plain_room, session_room

logger = logging.getLogger(__name__)


class WebsiteOutput(SocketIOOutput):
    """Sends one ``bot_uttered`` per bot message, stamped with a unique ``mid`` for replay."""

    @classmethod
    def name(cls) -> Text:
        return channels.WEBSITE

    def __init__(
        self, sio: AsyncServer, bot_message_evt: Text, store: SessionStore, sockets: SocketRegistry
    ) -> None:
        super().__init__(sio, bot_message_evt)
        self.store = store
        self.sockets = sockets

    async def _send_message(self, socket_id: Text, response: Any) -> None:
        # Rasa's parameter is named ``socket_id``, but what it passes is the conversation id.
        # An id of another channel's conversation is never delivered to a website socket.
        try:
            session_id = channels.local_id(socket_id, channels.WEBSITE)
        except channels.BadConversationId:
            logger.warning("website chat: refused to deliver another channel's conversation")
            return
        if not valid_session_id(session_id):
            logger.warning("website chat: refused to deliver to a malformed session id")
            return
        state = self.store.get(session_id)
        buttons = [
            reply.get("payload")
            for reply in response.get("quick_replies") or []
            if isinstance(reply, dict) and isinstance(reply.get("payload"), str)
        ]
        if buttons:
            state.offer_payloads(buttons)
        stamped = state.history.record(response)
        # To the session's rooms, not to sockets known here: with a shared client manager
        # (:mod:`.relay`) every replica delivers to the sockets it holds.
        await self.sio.emit(self.bot_message_evt, stamped, room=session_room(session_id))
        for message in rasa_shaped(stamped):
            await self.sio.emit(self.bot_message_evt, message, room=plain_room(session_id))

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        """One event per bot message: text, quick replies, sources and attachments together."""
        out = website_shaped(message)
        if out:
            await self._send_message(recipient_id, out)

    async def send_custom_json(
        self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any
    ) -> None:
        await self._send_message(recipient_id, {"custom": json_message})

    async def send_notice(self, recipient_id: Text, text: Text) -> None:
        """A connector-generated message (limits), shown like a bot message."""
        await self._send_message(recipient_id, {"text": text, "notice": True})
