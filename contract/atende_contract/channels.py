"""Channel names and conversation ids.

A Rasa conversation id is ``<namespace>:<local id>``, with one namespace per input channel:

- ``whatsapp:<wa_id>`` (the phone digits Meta sends, or the business-scoped user id when the
  customer hides the phone behind a username);
- ``web:<session id>`` (the website chat's socket.io session);
- ``rest:<sender>`` (Rasa's REST channel, development and tests only; it never grants identity).

A client of one channel can only ever name the local part, and the connector adds the namespace,
so no client can address another channel's conversation (a phone number typed as a website
session id becomes ``web:5511...``, a conversation of its own).

Conversation ids written before namespacing (a bare phone number, a bare session id) still exist
in old tickets and in the tracker store; :func:`local_id` and :func:`legacy_forms` read both.
"""

from __future__ import annotations

from typing import Optional, Tuple

WHATSAPP = "whatsapp"
WEBSITE = "website"
REST = "rest"

# Input channel name -> conversation id namespace.
NAMESPACE_BY_CHANNEL = {WHATSAPP: "whatsapp", WEBSITE: "web", REST: "rest"}
CHANNEL_BY_NAMESPACE = {ns: channel for channel, ns in NAMESPACE_BY_CHANNEL.items()}

# Input channel name -> ticket channel (helpdesk's Ticket.channel).
TICKET_CHANNEL_BY_INPUT = {WHATSAPP: "whatsapp", WEBSITE: "web", "socketio": "web", REST: "web"}

# Bound of a local id (a phone, a BSUID, a session id); longer ones are refused by the connectors.
MAX_LOCAL_ID = 128


class BadConversationId(ValueError):
    """A local id that cannot form a conversation id (empty, too long, or with a separator)."""


def conversation_id(channel: str, local: str) -> str:
    """The conversation id of ``local`` (a phone, a session id, ...) on input channel ``channel``."""
    namespace = NAMESPACE_BY_CHANNEL.get(channel)
    if namespace is None:
        raise BadConversationId(f"unknown channel {channel!r}")
    if not isinstance(local, str) or not local or len(local) > MAX_LOCAL_ID:
        raise BadConversationId("local id must be a non-empty string of bounded length")
    if any(ch.isspace() or ch in "/?#%" for ch in local):
        raise BadConversationId("local id has characters not allowed in a conversation id")
    return f"{namespace}:{local}"


def split(conversation: str) -> Tuple[Optional[str], str]:
    """``(channel, local id)`` of a conversation id; ``(None, id)`` for an un-namespaced (legacy) id."""
    namespace, sep, local = (conversation or "").partition(":")
    if sep and namespace in CHANNEL_BY_NAMESPACE and local:
        return CHANNEL_BY_NAMESPACE[namespace], local
    return None, conversation


def channel_of(conversation: str) -> Optional[str]:
    """The input channel a conversation id belongs to, or None (legacy or unknown form)."""
    return split(conversation)[0]


def local_id(conversation: str, channel: Optional[str] = None) -> str:
    """The local part of a conversation id (a legacy id is its own local part).

    With ``channel``, an id namespaced for another channel raises :class:`BadConversationId`,
    so an output channel never delivers another channel's conversation.
    """
    owner, local = split(conversation)
    if channel is not None and owner is not None and owner != channel:
        raise BadConversationId(f"conversation of channel {owner!r}, not {channel!r}")
    return local


def legacy_forms(conversation: str) -> Tuple[str, ...]:
    """Every id under which this conversation may be stored: the namespaced one, then the bare one.

    Old rows (before namespacing) keep the bare form; readers look both up.
    """
    owner, local = split(conversation)
    if owner is None:
        return (conversation,)
    return (conversation, local)
