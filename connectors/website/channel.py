"""Website chat input channel: Rasa's socket.io channel with identity, origin, limits and a widget.

Registered in credentials.yml as ``connectors.website.WebsiteInput`` (see docs/website.md).
It subclasses :class:`rasa.core.channels.socketio.SocketIOInput`: the parent builds the
socket.io server and blueprint; this class replaces the event handlers (``connect``,
``session_request``, ``user_uttered``) on that server and adds the widget route.

Protocol (compatible with other Rasa socket.io widgets):
- connection URL ``/socket.io/?session_id=<id>`` (optional; what a proxy pins the socket on):
  a malformed id refuses the connection; it names the session to use when ``session_request``
  carries none, and grants nothing by itself;
- ``session_request {session_id?, customData?: {auth_token?}, last_mid?}`` →
  ``session_confirm <session_id>`` (a well-formed id proposed by the client, new or known, is
  kept; a malformed one is replaced by a server-made id), then ``auth_status`` and a replay
  of missed bot messages;
- ``user_uttered {message, session_id, customData?: {auth_token?}, client_id?, quick_reply?}`` →
  ``message_ack {client_id, status, reason?}`` and later ``bot_uttered`` messages;
- ``bot_uttered {text?, quick_replies?, custom?, attachment?, mid}``; ``mid`` is unique per bot
  message so a widget can drop duplicates after a reconnect.

Stock Rasa clients (rasa-webchat, plain socket.io clients) send no ``last_mid`` in
``session_request``: they get Rasa's own message shapes, and a button they send back as its
bare payload counts as a quick reply. engine.io is the only CORS authority of the socket.io
path (:func:`.cors.leave_socketio_cors_to_engineio`). Names (session id, conversation id,
subject, sid) are those of docs/website.md, "Names".
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio.exceptions import ConnectionRefusedError as SocketRefused

from atende_contract import channels
from atende_contract.webtoken import MISSING, verify_token

from .cors import leave_socketio_cors_to_engineio
from .docs import add_docs_route
from .identity import auth_status
from .limits import RATE_NOTICE_INTERVAL_S, AddressLimits, client_address
from .messages import MSG_EMPTY, MSG_RATE, neutralise_typed_text, too_long_notice, valid_client_id
from .metadata import forwarded_metadata, parse_metadata
from .output import WebsiteOutput
from .sessions import BadSessionId, SessionStore, new_session_id, session_id_in_url, stored_owner
from .sessions import valid_session_id
from .settings import WebsiteSettings
from .relay import install, shared_manager
from .sockets import SocketRegistry, plain_room, session_room
from .widget import serve_widget

logger = logging.getLogger(__name__)

ACK_EVENT = "message_ack"
AUTH_EVENT = "auth_status"


class WebsiteInput(SocketIOInput):
    """The website chat input channel (``/webhooks/website/``)."""

    @classmethod
    def name(cls) -> Text:
        return channels.WEBSITE

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(WebsiteSettings.from_sources(credentials))

    def __init__(self, settings: Optional[WebsiteSettings] = None) -> None:
        settings = settings or WebsiteSettings.from_sources({})
        super().__init__(
            user_message_evt="user_uttered",
            bot_message_evt="bot_uttered",
            namespace=None,
            session_persistence=settings.session_persistence,
            socketio_path=settings.socketio_path,
            jwt_key=None,
            metadata_key=settings.metadata_key,
        )
        self.settings = settings
        self.store = SessionStore(settings)
        self.limits = AddressLimits(settings)
        self.sockets = SocketRegistry()
        self.app: Any = None  # the Sanic app, for the tracker store (set when the server starts)
        if not settings.jwt_secret:
            logger.warning(
                "WEBCHAT_JWT_SECRET is not set: every website visitor is treated as anonymous."
            )
        if settings.jwt_secret and not settings.attestation_key:
            logger.warning(
                "ATENDE_ATTESTATION_SECRET is not set: verified website tokens cannot be attested "
                "to the action server, so every visitor is treated as anonymous."
            )

    def get_output_channel(self) -> Optional[OutputChannel]:
        if self.sio is None:
            return super().get_output_channel()
        return WebsiteOutput(self.sio, self.bot_message_evt, self.store, self.sockets)

    # ------------------------------------------------------------------ blueprint
    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        webhook = super().blueprint(on_new_message)
        sio = self.sio
        assert sio is not None
        # Several replicas: emits to a session's rooms reach its sockets on each (relay.py).
        install(sio, shared_manager(self.settings))
        # Origins: the parent disables engine.io's origin check; ours is an explicit list.
        sio.eio.cors_allowed_origins = self._origin_allowed
        sio.eio.cors_credentials = False
        sio.on("connect", self._on_connect, namespace=self.namespace)
        sio.on("disconnect", self._on_disconnect, namespace=self.namespace)
        sio.on("session_request", self._on_session_request, namespace=self.namespace)

        async def user_uttered(sid: Text, data: Any) -> None:
            await self._on_user_uttered(sid, data, on_new_message)

        sio.on(self.user_message_evt, user_uttered, namespace=self.namespace)

        @webhook.listener("after_server_start")
        async def _keep_app(app: Any, _loop: Any) -> None:
            self.app = app
            leave_socketio_cors_to_engineio(app, self.settings.socketio_path)

        @webhook.route("/widget.js", methods=["GET"], name="website_widget_js")
        async def widget_js(request: Request) -> HTTPResponse:
            return serve_widget(self.settings)

        add_docs_route(webhook)  # /docs/: the published documentation pages (docs.py)
        return webhook

    def _origin_allowed(self, origin: Optional[str], environ: Any = None) -> bool:
        allowed = self.settings.origin_allowed(origin)
        if not allowed:
            logger.info("website chat: refused connection from origin %r", origin)
        return allowed

    # ------------------------------------------------------------------ handlers
    async def _on_connect(self, sid: Text, environ: Dict, auth: Any = None) -> bool:
        # engine.io already refused foreign origins; this also covers transports without CORS.
        if not self._origin_allowed(environ.get("HTTP_ORIGIN")):
            return False
        try:
            url_session = session_id_in_url(environ)
        except BadSessionId:
            logger.info("website chat: refused connection with a malformed session_id")
            raise SocketRefused("bad_session_id")
        address = client_address(environ, self.settings.trusted_proxies)
        if not self.limits.open_socket(address):
            logger.info("website chat: refused a connection: too many sockets from one address")
            raise SocketRefused("too_many_connections")
        self.sockets.address[sid] = address
        if url_session is not None:
            self.sockets.url_session[sid] = url_session
        return True

    async def _on_disconnect(self, sid: Text, *args: Any) -> None:
        address = self.sockets.forget(sid)
        if address is not None:
            self.limits.close_socket(address)

    async def _on_session_request(self, sid: Text, data: Any) -> None:
        sio = self.sio
        assert sio is not None
        data = data if isinstance(data, dict) else {}
        session_id = data.get("session_id")
        in_url = self.sockets.url_session.get(sid)
        if session_id is None and in_url is not None:
            session_id = in_url  # a client that names its session only in the URL
        if not valid_session_id(session_id):
            # Absent or malformed: never adopted; a fresh server-made id instead.
            session_id = new_session_id()
        elif in_url is not None and in_url != session_id:
            logger.warning(
                "website chat: session_request for another session than the URL's session_id; "
                "behind a proxy that pins on it, agent replies may miss this socket"
            )
        metadata = parse_metadata(data.get(self.metadata_key) or data.get("metadata"))
        check = verify_token(metadata.get("auth_token"), self.settings.token_policy)
        known = self.store.peek(session_id)
        if known is None:
            # Not in this process's memory (a restart, another replica): the owner is the subject
            # of the conversation's last attested message, kept in the tracker store.
            tracker_store = getattr(getattr(getattr(self.app, "ctx", None), "agent", None),
                                    "tracker_store", None)
            conversation_id = channels.conversation_id(channels.WEBSITE, session_id)
            owner = await stored_owner(tracker_store, conversation_id)
            if owner is not None:
                known = self.store.get(session_id)
                known.owner = owner
        if known is not None and not known.admits(check.subject if check.ok else None):
            # A session that carries a verified customer's conversation: only a socket proving the
            # same subject joins it (no replay, no technician replies for a mere session id).
            logger.info("website chat: session_request for a session owned by another identity; new session")
            session_id = new_session_id()
        previous = self.sockets.session.get(sid)
        if previous:
            await sio.leave_room(sid, session_room(previous))
            await sio.leave_room(sid, plain_room(previous))
        self.sockets.session[sid] = session_id
        # Rasa's protocol has no replay cursor: a client that sends none is a stock Rasa widget.
        plain = "last_mid" not in data
        self.sockets.mark_plain(sid, session_id if plain else None)
        await sio.enter_room(sid, plain_room(session_id) if plain else session_room(session_id))
        await sio.emit("session_confirm", session_id, room=sid)
        await sio.emit(AUTH_EVENT, auth_status(check), room=sid)

        state = self.store.get(session_id)
        for message in state.history.after(data.get("last_mid")):
            await sio.emit(self.bot_message_evt, message, room=sid)

    async def _ack(self, sid: Text, client_id: Any, status: str, reason: str = "") -> None:
        assert self.sio is not None
        payload: Dict[str, Any] = {"client_id": client_id, "status": status}
        if reason:
            payload["reason"] = reason
        await self.sio.emit(ACK_EVENT, payload, room=sid)

    async def _on_user_uttered(
        self,
        sid: Text,
        data: Any,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> None:
        sio = self.sio
        assert sio is not None
        if not isinstance(data, dict):
            await self._ack(sid, None, "refused", "bad_request")
            return
        client_id = data.get("client_id") if valid_client_id(data.get("client_id")) else None

        session_id = self.sockets.session.get(sid)
        if self.session_persistence:
            if session_id is None or data.get("session_id") not in (None, session_id):
                # A socket may only speak for the session it was confirmed for.
                await self._ack(sid, client_id, "refused", "no_session")
                return
        else:
            session_id = sid  # its conversation is the socket's own: it listens on that room
            await sio.enter_room(sid, session_room(sid))
        state = self.store.get(session_id)
        conversation_id = channels.conversation_id(channels.WEBSITE, session_id)
        output = WebsiteOutput(sio, self.bot_message_evt, self.store, self.sockets)

        if client_id is not None and client_id in state.recent_client_ids:
            await self._ack(sid, client_id, "duplicate")
            return
        address = self.sockets.address.get(sid, "?")
        if not (state.bucket.take() and self.limits.take(address)):
            await self._ack(sid, client_id, "refused", "rate")
            now = time.monotonic()
            if now - state.rate_notice_at >= RATE_NOTICE_INTERVAL_S:
                state.rate_notice_at = now
                await output.send_notice(conversation_id, MSG_RATE)
            return

        text = data.get("message")
        if not isinstance(text, str):
            await self._ack(sid, client_id, "refused", "bad_request")
            return
        if len(text) > self.settings.max_message_chars:
            await self._ack(sid, client_id, "refused", "too_long")
            await output.send_notice(
                conversation_id, too_long_notice(len(text), self.settings.max_message_chars)
            )
            return

        quick_reply = data.get("quick_reply") is True
        if self.sockets.is_plain(sid) and "quick_reply" not in data:
            # Stock Rasa widgets send a clicked button as its bare payload, unflagged: the same
            # rule applies (only a payload the bot offered to this session, or an allowed one).
            quick_reply = self.store.payload_allowed(session_id, text.strip())
        if not (quick_reply and self.store.payload_allowed(session_id, text.strip())):
            text = neutralise_typed_text(text)
        else:
            text = text.strip()
        if not text.strip():
            await self._ack(sid, client_id, "refused", "empty")
            await output.send_notice(conversation_id, MSG_EMPTY)
            return

        raw = parse_metadata(data.get(self.metadata_key) or data.get("metadata"))
        check = verify_token(raw.get("auth_token"), self.settings.token_policy)
        if check.ok and not state.admits(check.subject):
            # Another person's token on a socket of this conversation: never mixed into it.
            await self._ack(sid, client_id, "refused", "session_owner")
            return
        if client_id is not None:
            state.remember_client_id(client_id)
        message_id = uuid.uuid4().hex
        metadata = forwarded_metadata(
            raw, check, client_id=client_id, quick_reply=quick_reply,
            conversation_id=conversation_id, message_id=message_id,
            attestation_key=self.settings.attestation_key, policy_url=self.settings.policy_url,
        )
        if check.ok:
            state.owner = check.subject
        elif check.reason != MISSING:
            await sio.emit(AUTH_EVENT, auth_status(check), room=sid)
        await self._ack(sid, client_id, "accepted")
        await on_new_message(
            UserMessage(
                text,
                output,
                conversation_id,
                input_channel=self.name(),
                message_id=message_id,
                metadata=metadata,
            )
        )
