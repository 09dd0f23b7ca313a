"""LGPD at the start of a session (issue #17 part 1), called by `action_session_start`.

- Website: the consent the widget sent with the message that starts the session (forwarded by the
  website connector under `atende_consent`, cleaned there and again in helpdesk/consent.py) is
  recorded once per conversation and text version, with the server's clock and the verified
  customer if any.
- WhatsApp: the privacy notice (helpdesk.consent.NoticeSettings) goes out as a bot message before
  the answer, once per person and text version: the person is the attested phone / BSUID / LID
  (and the conversation), or, without an attestation, the conversation only. A session started by
  the console (a trigger, whose session metadata is a stale copy of an earlier message) sends
  nothing: its attestation is no longer fresh.

Nothing here may break a conversation: a failure is logged and the session starts anyway.
"""
from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from atende_contract import attestation, channels
from atende_contract import consent as contract
from helpdesk import consent
from helpdesk.config import get_settings
from helpdesk.db import session_scope

from .common import as_id

logger = logging.getLogger(__name__)


def _whatsapp_subjects(tracker: Tracker, metadata: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The attested identities of the message starting this session; [] when it carries no
    attestation (anonymous sender); None when it carries one that proves nothing now."""
    settings = get_settings()
    verdict = attestation.verify(settings.attestation_key, metadata.get(attestation.METADATA_KEY),
                                 conversation_id=tracker.sender_id, channel=None, message_id=None,
                                 max_age_s=settings.attestation_max_age_s)
    if verdict.identity is not None:
        return [(verdict.identity.kind, verdict.identity.value), *verdict.identity.alt]
    if verdict.reason in (attestation.ABSENT, attestation.NO_SECRET):
        return []
    return None


def send_whatsapp_notice(dispatcher: CollectingDispatcher, tracker: Tracker, metadata: dict[str, Any]) -> bool:
    """Send the privacy notice when it is due for this person; True when sent."""
    if not metadata or metadata.get("is_external") is True:
        return False  # not a customer's message (a console trigger)
    settings = consent.notice_settings()
    if not settings.enabled:
        return False
    subjects = _whatsapp_subjects(tracker, metadata)
    if subjects is None:
        return False
    keys = consent.notice_keys(tracker.sender_id, subjects)
    with session_scope() as s:
        due = consent.claim_notice(s, conversation_id=tracker.sender_id, channel=channels.WHATSAPP,
                                   keys=keys, version=settings.text_version)
    if due:
        dispatcher.utter_message(text=settings.message())
    return due


def record_website_consent(tracker: Tracker, metadata: dict[str, Any], events: list[EventType]) -> bool:
    """Record the consent of the message starting this session; True when a new row was written."""
    raw = metadata.get(contract.METADATA_KEY)
    if raw is None:
        return False
    # Only what this session's identification set: the tracker still holds the last session's slots.
    customer = as_id(next((e.get("value") for e in reversed(events)
                           if e.get("event") == "slot" and e.get("name") == "customer_id"), None))
    with session_scope() as s:
        row = consent.record_consent(s, conversation_id=tracker.sender_id, channel=channels.WEBSITE,
                                     raw=raw, customer_id=customer)
        recorded = row is not None
    if not recorded and contract.clean(raw, consent.notice_settings().policy_url) is None:
        logger.warning("website consent of %s dropped: malformed", tracker.sender_id)
    return recorded


def at_session_start(dispatcher: CollectingDispatcher, tracker: Tracker, metadata: dict[str, Any],
                     events: list[EventType]) -> None:
    """The LGPD duties of a new session, per channel (the conversation id's namespace)."""
    channel = channels.channel_of(tracker.sender_id)
    try:
        if channel == channels.WHATSAPP:
            send_whatsapp_notice(dispatcher, tracker, metadata)
        elif channel == channels.WEBSITE:
            record_website_consent(tracker, metadata, events)
    except Exception:  # noqa: BLE001 - privacy bookkeeping must never stop a session from starting
        logger.exception("privacy notice/consent failed for %s", tracker.sender_id)
