"""Website chat channel: Rasa's socket.io channel with identity, origin, limits and a widget.

Register it in credentials.yml as ``connectors.website.WebsiteInput`` (see docs/website.md).
It subclasses :class:`rasa.core.channels.socketio.SocketIOInput`: the parent builds the
socket.io server and blueprint; this class replaces the event handlers (``connect``,
``session_request``, ``user_uttered``) on that server and adds the widget routes.

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
``session_request``: they get Rasa's own message shapes (:func:`rasa_shaped`), and a button they
send back as its bare payload counts as a quick reply. engine.io is the only CORS authority of
the socket.io path (:func:`_leave_socketio_cors_to_engineio`).
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Text
from urllib.parse import parse_qs

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer
from socketio.exceptions import ConnectionRefusedError as SocketRefused

from atende_contract import attestation, channels
from atende_contract.webtoken import MISSING, TokenCheck, verify_token
from connectors.webchat_rules import (
    IDENTITY_KEYS,
    MSG_EMPTY,
    MSG_RATE,
    MSG_TOO_LONG,
    RATE_NOTICE_INTERVAL_S,
    AddressLimits,
    SessionStore,
    WebsiteSettings,
    client_address,
    neutralise_typed_text,
    new_session_id,
    parse_metadata,
    valid_client_id,
    valid_session_id,
)

logger = logging.getLogger(__name__)

ACK_EVENT = "message_ack"
AUTH_EVENT = "auth_status"


class WebsiteOutput(SocketIOOutput):
    """Sends one ``bot_uttered`` per bot message, stamped with a unique ``mid`` for replay."""

    @classmethod
    def name(cls) -> Text:
        return "website"

    def __init__(
        self,
        sio: AsyncServer,
        bot_message_evt: Text,
        store: SessionStore,
        plain_sockets: Optional[Dict[str, Set[str]]] = None,
    ) -> None:
        super().__init__(sio, bot_message_evt)
        self.store = store
        # session id -> sockets of stock Rasa clients (rasa-webchat...): they get Rasa's shapes
        self.plain_sockets = plain_sockets if plain_sockets is not None else {}

    async def _send_message(self, socket_id: Text, response: Any) -> None:
        # Rasa addresses ``web:<session>``; the socket.io room is the session id itself. An id of
        # another channel's conversation is never delivered to a website socket.
        try:
            socket_id = channels.local_id(socket_id, channels.WEBSITE)
        except channels.BadConversationId:
            logger.warning("website chat: refused to deliver another channel's conversation")
            return
        state = self.store.get(socket_id)
        buttons = [
            reply.get("payload")
            for reply in response.get("quick_replies") or []
            if isinstance(reply, dict) and isinstance(reply.get("payload"), str)
        ]
        if buttons:
            state.offer_payloads(buttons)
        stamped = state.record_sent(self.store.epoch, response)
        plain = sorted(self.plain_sockets.get(socket_id, ()))
        await self.sio.emit(self.bot_message_evt, stamped, room=socket_id, skip_sid=plain or None)
        for sid in plain:
            for message in rasa_shaped(stamped):
                await self.sio.emit(self.bot_message_evt, message, room=sid)

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        """One event per bot message: text, quick replies, sources and attachments together."""
        out: Dict[str, Any] = {}
        text = message.get("text")
        if text:
            out["text"] = str(text)
        buttons = message.get("quick_replies") or message.get("buttons") or []
        replies = [
            {
                "content_type": "text",
                "title": str(button.get("title", "")),
                "payload": str(button.get("payload", "")),
            }
            for button in buttons
            if isinstance(button, dict) and button.get("payload")
        ]
        if replies:
            out["quick_replies"] = replies
        custom = message.get("custom")
        if custom:
            out["custom"] = custom
        if message.get("image"):
            out["attachment"] = {"type": "image", "payload": {"src": message["image"]}}
        if message.get("attachment"):
            out["attachment"] = message["attachment"]
        if message.get("elements"):
            out["attachment"] = {
                "type": "template",
                "payload": {"template_type": "generic", "elements": message["elements"]},
            }
        if out:
            await self._send_message(recipient_id, out)

    async def send_custom_json(
        self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any
    ) -> None:
        await self._send_message(recipient_id, {"custom": json_message})

    async def send_notice(self, recipient_id: Text, text: Text) -> None:
        """A connector-generated message (limits), shown like a bot message."""
        await self._send_message(recipient_id, {"text": text, "notice": True})


class WebsiteInput(SocketIOInput):
    """The website chat input channel (``/webhooks/website/``)."""

    @classmethod
    def name(cls) -> Text:
        return "website"

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
        self.socket_address: Dict[str, str] = {}
        self.app: Any = None  # the Sanic app, for the tracker store (set when the server starts)
        # socket id -> the ``session_id`` its connection URL carried (what the proxy pins on).
        # It only names the session the socket will ask for; it grants nothing by itself.
        self.query_session: Dict[str, str] = {}
        # Sockets of stock Rasa clients (no ``last_mid`` in ``session_request``, the replay
        # cursor only Atende's widget sends): session id -> socket ids, and socket -> session.
        self.plain_sockets: Dict[str, Set[str]] = {}
        self.plain_sid: Dict[str, str] = {}
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
        return WebsiteOutput(self.sio, self.bot_message_evt, self.store, self.plain_sockets)

    # ------------------------------------------------------------------ blueprint
    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        webhook = super().blueprint(on_new_message)
        sio = self.sio
        assert sio is not None
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
            _leave_socketio_cors_to_engineio(app, self.settings.socketio_path)

        @webhook.route("/widget.js", methods=["GET"], name="website_widget_js")
        async def widget_js(request: Request) -> HTTPResponse:
            return self._serve_widget()

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
        address = client_address(environ, self.settings.trusted_proxies)
        if not self.limits.open_socket(address):
            logger.info("website chat: refused a connection: too many sockets from one address")
            raise SocketRefused("too_many_connections")
        self.socket_address[sid] = address
        # The widget puts its session id in the URL (``?session_id=``) so that a proxy in front
        # of several Rasa servers pins the socket to the server its conversation lives on.
        values = parse_qs(environ.get("QUERY_STRING") or "", keep_blank_values=True).get(
            "session_id"
        )
        if values:
            if len(values) != 1 or not valid_session_id(values[0]):
                logger.info("website chat: refused connection with a malformed session_id")
                raise SocketRefused("bad_session_id")
            self.query_session[sid] = values[0]
        return True

    def _mark_plain(self, sid: str, session_id: Optional[str]) -> None:
        """Record whether socket ``sid`` is a stock Rasa client bound to ``session_id``."""
        previous = self.plain_sid.pop(sid, None)
        if previous is not None:
            sockets = self.plain_sockets.get(previous)
            if sockets is not None:
                sockets.discard(sid)
                if not sockets:
                    del self.plain_sockets[previous]
        if session_id is not None:
            self.plain_sid[sid] = session_id
            self.plain_sockets.setdefault(session_id, set()).add(sid)

    async def _on_disconnect(self, sid: Text, *args: Any) -> None:
        self._mark_plain(sid, None)
        self.store.socket_session.pop(sid, None)
        self.query_session.pop(sid, None)
        address = self.socket_address.pop(sid, None)
        if address is not None:
            self.limits.close_socket(address)

    async def _on_session_request(self, sid: Text, data: Any) -> None:
        sio = self.sio
        assert sio is not None
        data = data if isinstance(data, dict) else {}
        session_id = data.get("session_id")
        in_url = self.query_session.get(sid)
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
            owner = await self._stored_owner(channels.conversation_id(channels.WEBSITE, session_id))
            if owner is not None:
                known = self.store.get(session_id)
                known.owner = owner
        if known is not None and not known.admits(check.subject if check.ok else None):
            # A session that carries a verified customer's conversation: only a socket proving the
            # same subject joins it (no replay, no technician replies for a mere session id).
            logger.info("website chat: session_request for a session owned by another identity; new session")
            session_id = new_session_id()
        previous = self.store.socket_session.get(sid)
        if previous and previous != session_id:
            await sio.leave_room(sid, previous)
        self.store.socket_session[sid] = session_id
        # Rasa's protocol has no replay cursor: a client that sends none is a stock Rasa widget.
        self._mark_plain(sid, session_id if "last_mid" not in data else None)
        await sio.enter_room(sid, session_id)
        await sio.emit("session_confirm", session_id, room=sid)
        await sio.emit(AUTH_EVENT, self._auth_payload(check), room=sid)

        state = self.store.get(session_id)
        for message in state.replay_after(self.store.epoch, data.get("last_mid")):
            await sio.emit(self.bot_message_evt, message, room=sid)

    async def _stored_owner(self, conversation: str) -> Optional[str]:
        """The subject of the last attested message of a stored conversation, or None."""
        agent = getattr(getattr(self.app, "ctx", None), "agent", None)
        store = getattr(agent, "tracker_store", None)
        if store is None:
            return None
        try:
            tracker = await store.retrieve(conversation)
        except Exception:  # the owner check must never break the chat; fail closed below
            logger.exception("website chat: could not read the tracker of a resumed session")
            return "unknown"
        if tracker is None:
            return None
        for event in reversed(tracker.events):
            proof = (getattr(event, "metadata", None) or {}).get(attestation.METADATA_KEY)
            if getattr(event, "type_name", "") == "user" and isinstance(proof, dict):
                subject = proof.get("sub")
                return subject if isinstance(subject, str) else "unknown"
        return None

    @staticmethod
    def _auth_payload(check: TokenCheck) -> Dict[str, Any]:
        if check.ok:
            return {"status": "verified", "name": check.display_name}
        if check.reason == MISSING:
            return {"status": "anonymous"}
        return {"status": "refused", "reason": check.reason}

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

        session_id = self.store.socket_session.get(sid)
        if self.session_persistence:
            if session_id is None or data.get("session_id") not in (None, session_id):
                # A socket may only speak for the session it was confirmed for.
                await self._ack(sid, client_id, "refused", "no_session")
                return
        else:
            session_id = sid
        state = self.store.get(session_id)
        output = WebsiteOutput(sio, self.bot_message_evt, self.store, self.plain_sockets)

        if client_id is not None and client_id in state.recent_client_ids:
            await self._ack(sid, client_id, "duplicate")
            return
        address = self.socket_address.get(sid, "?")
        if not (state.bucket.take() and self.limits.take(address)):
            await self._ack(sid, client_id, "refused", "rate")
            now = time.monotonic()
            if now - state.rate_notice_at >= RATE_NOTICE_INTERVAL_S:
                state.rate_notice_at = now
                await output.send_notice(session_id, MSG_RATE)
            return

        text = data.get("message")
        if not isinstance(text, str):
            await self._ack(sid, client_id, "refused", "bad_request")
            return
        if len(text) > self.settings.max_message_chars:
            await self._ack(sid, client_id, "refused", "too_long")
            await output.send_notice(
                session_id,
                MSG_TOO_LONG.format(
                    size=f"{len(text):,}".replace(",", "."),
                    limit=f"{self.settings.max_message_chars:,}".replace(",", "."),
                ),
            )
            return

        quick_reply = data.get("quick_reply") is True
        if sid in self.plain_sid and "quick_reply" not in data:
            # Stock Rasa widgets send a clicked button as its bare payload, unflagged: the same
            # rule applies (only a payload the bot offered to this session, or an allowed one).
            quick_reply = self.store.payload_allowed(session_id, text.strip())
        if not (quick_reply and self.store.payload_allowed(session_id, text.strip())):
            text = neutralise_typed_text(text)
        else:
            text = text.strip()
        if not text.strip():
            await self._ack(sid, client_id, "refused", "empty")
            await output.send_notice(session_id, MSG_EMPTY)
            return

        raw = parse_metadata(data.get(self.metadata_key) or data.get("metadata"))
        check = verify_token(raw.get("auth_token"), self.settings.token_policy)
        if check.ok and not state.admits(check.subject):
            # Another person's token on a socket of this conversation: never mixed into it.
            await self._ack(sid, client_id, "refused", "session_owner")
            return
        if client_id is not None:
            state.remember_client_id(client_id)
        conversation = channels.conversation_id(channels.WEBSITE, session_id)
        message_id = uuid.uuid4().hex
        metadata = self._forwarded_metadata(raw, check, client_id, quick_reply, conversation, message_id)
        if check.ok:
            state.owner = check.subject
        elif check.reason != MISSING:
            await sio.emit(AUTH_EVENT, self._auth_payload(check), room=sid)
        await self._ack(sid, client_id, "accepted")
        await on_new_message(
            UserMessage(
                text,
                output,
                conversation,
                input_channel=self.name(),
                message_id=message_id,
                metadata=metadata,
            )
        )

    def _forwarded_metadata(
        self,
        raw: Dict[str, Any],
        check: TokenCheck,
        client_id: Optional[str],
        quick_reply: bool,
        conversation: str,
        message_id: str,
    ) -> Dict[str, Any]:
        """Harmless widget facts and, for a verified token, this turn's identity attestation.

        Neither the token nor any identity the client wrote goes on to Rasa: the action server
        learns who is speaking only from the attestation, signed here after the token check.
        """
        metadata: Dict[str, Any] = {
            "website": {"client_id": client_id, "quick_reply": quick_reply}
        }
        key = self.settings.attestation_key
        if check.ok and key is not None and check.subject is not None:
            now = time.time()
            expires = min(int(check.expires_at or now), int(now) + attestation.DEFAULT_MAX_AGE_S)
            metadata[attestation.METADATA_KEY] = attestation.sign(
                key, channel=channels.WEBSITE, conversation_id=conversation, subject=check.subject,
                message_id=message_id, now=now, expires_at=expires,
            )
        dropped = sorted(key for key in raw if key in IDENTITY_KEYS and key != "auth_token")
        if dropped:
            logger.info("website chat: dropped client identity metadata %s", dropped)
        return metadata

    # ------------------------------------------------------------------ widget files
    def _serve_widget(self) -> HTTPResponse:
        path = os.path.join(self.settings.widget_dir, "widget.js")
        try:
            with open(path, "rb") as handle:
                body = handle.read()
        except OSError:
            return response.text(
                "// Atende widget not built: run `npm --prefix widget ci && "
                "npm --prefix widget run build`\n",
                status=503,
                content_type="application/javascript; charset=utf-8",
            )
        config = (
            "window.__ATENDE_WEBCHAT__=Object.assign({socketPath:%s},window.__ATENDE_WEBCHAT__||{});\n"
            % _js_string(self.settings.socketio_path)
        ).encode("utf-8")
        return response.raw(
            config + body,
            content_type="application/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
        )


def rasa_shaped(message: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One stamped bot message as Rasa's own socket.io channel sends it, for stock clients.

    rasa-webchat tells messages apart by their exact keys (``{text}``, ``{text, quick_replies}``,
    ``{attachment}``; anything else is a custom component), so Atende's extension fields
    (``mid``, ``notice``) stay out, sources become a markdown list under the text unless the
    text already has its ``Fontes:`` block, and other custom JSON goes alone, as Rasa sends it.
    """
    out: List[Dict[str, Any]] = []
    text = message.get("text") if isinstance(message.get("text"), str) else ""
    custom = message.get("custom") if isinstance(message.get("custom"), dict) else {}
    sources = custom.get("sources") if isinstance(custom.get("sources"), list) else []
    lines = []
    for source in sources:
        if not isinstance(source, dict):
            continue
        url = str(source.get("url") or "")
        title = re.sub(r"[\[\]\n]", " ", str(source.get("title") or url)).strip()[:200]
        if re.match(r"^https?://[^\s()<>]+$", url):
            lines.append(f"- [{title}]({url})")
        elif title:
            lines.append(f"- {title}")
    if lines and "Fontes:" not in text:
        text = (text.rstrip() + "\n\n" if text else "") + "Fontes:\n" + "\n".join(lines)
    replies = message.get("quick_replies")
    if text or replies:
        shaped: Dict[str, Any] = {"text": text}
        if replies:
            shaped["quick_replies"] = replies
        out.append(shaped)
    if message.get("attachment"):
        out.append({"attachment": message["attachment"]})
    rest = {key: value for key, value in custom.items() if key != "sources"}
    if rest:
        out.append(rest)
    return out


def _leave_socketio_cors_to_engineio(app: Any, socketio_path: str) -> None:
    """Make engine.io the only CORS authority of the socket.io path.

    Rasa always installs Sanic-CORS on ``/*`` (with the origins of ``--cors``, none by default)
    with automatic ``OPTIONS`` answers: it would answer socket.io preflights itself, without any
    allowed origin, and with ``--cors`` it adds a second ``Access-Control-Allow-Origin`` next to
    engine.io's. Its resource patterns are narrowed here so they never match the socket.io path;
    engine.io answers there with our origin check (``cors_allowed_origins``).
    """
    context = getattr(getattr(app, "ctx", None), "sanic_cors", None)
    resources = getattr(context, "resources", None)
    if not isinstance(resources, list):
        return
    path = "/" + socketio_path.strip("/")
    guard = r"(?!%s(?:/|$))" % re.escape(path)
    narrowed = []
    for pattern, options in resources:
        source = pattern.pattern if isinstance(pattern, re.Pattern) else str(pattern)
        if source.startswith(guard):
            narrowed.append((pattern, options))  # already narrowed (a second listener run)
            continue
        narrowed.append((re.compile(guard + source), options))
    context.resources = narrowed


def _js_string(value: str) -> str:
    import json

    return json.dumps(value).replace("<", "\\u003c")


__all__: List[str] = ["WebsiteInput", "WebsiteOutput"]
