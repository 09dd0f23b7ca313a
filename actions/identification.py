"""Who is the customer?

Only a connector that verified an identity may assert it, by signing an attestation for this turn
(atende_contract.attestation): the WhatsApp connector after the webhook signature (the sender's
phone or user id), the website connector after the token check (the token's subject). This module
verifies that attestation on every turn, against this conversation, channel and message, and
derives the identity slots from it again each time:

- a valid attestation names a registered customer → the identity slots are set;
- anything else (Rasa's REST channel, a forged `input_channel`, metadata a client wrote, an
  expired website token, an attestation of another conversation, a slot carried over from an
  earlier turn) is anonymous → the identity slots are cleared.

Otherwise the visitor may type the CNPJ (validated by its check digits): an UNVERIFIED claim that
only lets them open tickets for that company; or go on as a prospect.

Identity slots have custom mappings: only these functions set them, never a message payload.
Turns triggered by the console (EXTERNAL_ intents through Rasa's token-protected HTTP API) leave
the identity as it is.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from atende_contract import attestation

from helpdesk.cnpj import format_cnpj, normalize_cnpj
from helpdesk.config import get_settings
from helpdesk.db import session_scope
from helpdesk.errors import DomainError, InvalidCNPJ
from helpdesk.services import customers, identities

from .common import extract_cnpj, is_payload, latest_channel, latest_metadata, record_outcome, slot_after, user_text

logger = logging.getLogger(__name__)

VERIFIED_SLOTS = ("customer_id", "customer_name", "customer_products")


def _identity_events(customer: Any) -> list[EventType]:

    return [
        SlotSet("customer_id", str(customer.id)),
        SlotSet("customer_name", customer.responsible_name.split()[0] if customer.responsible_name else None),
        SlotSet("customer_products", customers.product_codes(customer)),
        SlotSet("identity_checked", True),
    ]


def is_console_turn(tracker: Tracker) -> bool:
    """A turn the console triggered (EXTERNAL_ intent via Rasa's HTTP API), not a customer message.

    Rasa marks such turns with `is_external` in the metadata; no connector forwards that key.
    """
    meta = latest_metadata(tracker)
    intent = str((tracker.latest_message.get("intent") or {}).get("name") or "")
    return meta.get("is_external") is True and intent.startswith("EXTERNAL_")


def turn_identity(tracker: Tracker, *, metadata: dict[str, Any] | None = None,
                  session_start: bool = False) -> attestation.Identity | None:
    """The identity this turn's attestation proves, or None (anonymous).

    At the start of a session the message is not in the tracker yet (its metadata is in
    `session_started_metadata`): channel and message id are then not compared, the conversation,
    signature and freshness still are.
    """

    settings = get_settings()
    metadata = metadata if metadata is not None else latest_metadata(tracker)
    proof = metadata.get(attestation.METADATA_KEY)
    message_id = None if session_start else tracker.latest_message.get("message_id")
    verdict = attestation.verify(
        settings.attestation_key, proof, conversation_id=tracker.sender_id,
        channel=None if session_start else latest_channel(tracker),
        message_id=str(message_id) if message_id else None, max_age_s=settings.attestation_max_age_s)
    if not verdict.ok and verdict.reason != attestation.ABSENT:
        logger.warning("identity attestation refused for %s: %s", tracker.sender_id, verdict.reason)
    return verdict.identity


def find_customer(session: Any, identity: attestation.Identity) -> Any:
    """The registered customer an attested identity belongs to, or None."""

    try:
        if identity.kind == "phone":
            return customers.find_by_phone(session, identity.value)
        if identity.kind == "id":
            return customers.get(session, int(identity.value)) if identity.value.isdigit() else None
        if identity.kind == "email":
            return customers.find_by_email(session, identity.value)
        if identity.kind in customers.WHATSAPP_ID_KINDS:
            # a username-only sender: recognised by the BSUID / LID linked when first seen with the phone
            if not identities.well_formed(identity.kind, identity.value):
                logger.warning("ignored a WhatsApp %s in an unexpected form", identity.kind)
                return None
            return customers.find_by_whatsapp_id(session, identity.kind, identity.value)
    except DomainError:
        return None
    return None


# The identities whose change Meta signs (user_changed_number, user_changed_user_id): the connector
# attests the new one with the conversation's first one of the same kind beside it.
CHANGING_KINDS = ("phone", "bsuid")


def _take_over(session: Any, kind: str, old: str, new: str) -> Any:
    """The customer of the earlier identity `old`, now holding `new` instead (a phone moves: the
    old number is recyclable) or too (a BSUID is linked); None when `old` is nobody's or the phone
    cannot move. Raises DomainError for a malformed value."""
    if kind == "phone":
        customer = customers.find_by_phone(session, old)
        return customer if customer is not None and customers.change_phone(session, customer.id, old, new) else None
    customer = customers.find_by_whatsapp_id(session, kind, old)
    if customer is not None:
        customers.link_whatsapp_id(session, customer.id, kind, new)
    return customer


def follow_change(session: Any, identity: attestation.Identity) -> Any:
    """A new WhatsApp number or BSUID whose conversation began on an earlier one (the connector
    attests the earlier one, same kind, after Meta's signed change): the customer found by it,
    who takes the new one. None when there is no such earlier identity or customer; an
    alternative of another kind is never followed (a phone beside a BSUID is no number change)."""
    if identity.channel != "whatsapp" or identity.kind not in CHANGING_KINDS:
        return None
    for kind, old in identity.alt:
        if kind != identity.kind:
            continue
        try:
            customer = _take_over(session, kind, old, identity.value)
        except DomainError:
            continue
        if customer is not None:
            logger.info("customer %s changed WhatsApp %s; the new one is theirs", customer.id, kind)
            return customer
    return None


def link_alternatives(session: Any, customer: Any, identity: attestation.Identity) -> None:
    """Link the sender's other attested WhatsApp ids (a BSUID sent with the phone) to the customer."""
    if identity.channel != "whatsapp" or identity.kind != "phone":
        return
    for kind, value in identity.alt:
        if kind in customers.WHATSAPP_ID_KINDS:
            if not identities.well_formed(kind, value):
                logger.warning("ignored a WhatsApp %s in an unexpected form for customer %s", kind, customer.id)
                continue
            try:
                if customers.link_whatsapp_id(session, customer.id, kind, value):
                    logger.info("linked a WhatsApp %s to customer %s", kind, customer.id)
            except DomainError:
                logger.warning("ignored a malformed WhatsApp %s for customer %s", kind, customer.id)


def store_username(session: Any, customer: Any, identity: attestation.Identity) -> None:
    """Keep the WhatsApp username this turn's attestation signed (``un``, from Meta's signed delivery)
    on the customer that attestation identified. Display-only: it is never looked up, so it can
    identify no one; a client-written username (metadata, slots, text) never reaches here."""
    if identity.channel != "whatsapp" or identity.username is None:
        return
    try:
        with session.begin_nested():
            if customers.set_whatsapp_username(session, customer.id, identity.username):
                logger.info("stored the WhatsApp username of customer %s", customer.id)
    except DomainError as err:
        logger.warning("ignored a WhatsApp username for customer %s: %s", customer.id, err)
    except Exception:  # noqa: BLE001 - a concurrent write (unique handle): the identity still holds
        logger.exception("could not store the WhatsApp username of customer %s", customer.id)


def ticket_identified_by(tracker: Tracker, *, verified: bool, claimed: bool) -> str | None:
    """What identified the customer of a ticket the bot opens on this turn (tickets.identified_by):
    the kind of this turn's attested identity when the customer is verified (phone / bsuid / lid /
    website_token), `claim` for a CNPJ typed in the chat, else None."""
    if verified:
        identity = turn_identity(tracker)
        return identities.identified_by_for(identity.kind if identity is not None else None)
    return identities.identified_by_for(None, claimed=claimed)


def identify(tracker: Tracker, *, metadata: dict[str, Any] | None = None,
             session_start: bool = False) -> list[EventType]:
    """Slot events that make the identity slots say what this turn's attestation proves.

    [] when they already do. A turn without a valid attestation clears a verified identity left
    by an earlier turn; a console-triggered turn changes nothing.
    """

    if not session_start and is_console_turn(tracker):
        return []
    customer = None
    identity = turn_identity(tracker, metadata=metadata, session_start=session_start)
    if identity is not None:
        try:
            with session_scope() as s:
                customer = find_customer(s, identity) or follow_change(s, identity)
                if customer is not None:
                    link_alternatives(s, customer, identity)
                    store_username(s, customer, identity)
                    if str(customer.id) == str(tracker.get_slot("customer_id") or ""):
                        return []
                    return _identity_events(customer)
        except Exception:  # noqa: BLE001 - identification must never break the conversation
            logger.exception("identification failed for %s", tracker.sender_id)
    if session_start and identity is None:
        return []  # SessionStarted has just reset every slot: nothing to clear, nothing looked up
    events: list[EventType] = [SlotSet(name, None) for name in VERIFIED_SLOTS
                               if tracker.get_slot(name) not in (None, "", [])]
    if not tracker.get_slot("identity_checked"):
        events.append(SlotSet("identity_checked", True))
    return events


class ActionGreet(Action):
    def name(self) -> Text:
        return "action_greet"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        events = identify(tracker)
        name = slot_after(events, tracker, "customer_name")
        if name:
            dispatcher.utter_message(response="utter_greet_customer", customer_name=name)
        elif is_unknown_username(tracker, events):
            # behind a username, unknown: ask who they are (the CNPJ, or the phone through Meta)
            dispatcher.utter_message(response="utter_greet_username")
            dispatcher.utter_message(response="utter_request_phone")
        else:
            dispatcher.utter_message(response="utter_greet_visitor")
        return events


def is_unknown_username(tracker: Tracker, events: list[EventType]) -> bool:
    """This turn's sender is attested only by a BSUID (a WhatsApp customer behind a username) that
    is linked to no customer: the bot asks who they are."""
    if slot_after(events, tracker, "customer_id") not in (None, ""):
        return False
    identity = turn_identity(tracker)
    return identity is not None and identity.channel == "whatsapp" and identity.kind == "bsuid"


class ActionSharedContact(Action):
    """A customer behind a username shared a contact (the gateway's ``/shared_contact``).

    Only the gateway's attestation says whether it proved anything: it attests the shared phone
    (with the BSUID beside it) only when Meta's signed delivery shows the user's own number sent
    through the contact request (connectors/whatsapp/parse/contacts.py). Then `identify` finds the
    customer of that phone and links the BSUID. Anything else (a card of someone's number, the
    gateway's metadata copied by a client, a REST message) identifies nobody and the bot asks again.
    The answer never tells whether an unproven number is a customer's.
    """

    def name(self) -> Text:
        return "action_shared_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        events = identify(tracker)
        name = slot_after(events, tracker, "customer_name")
        identity = turn_identity(tracker)
        if slot_after(events, tracker, "customer_id") not in (None, ""):
            if identity is not None and identity.kind == "phone" and any(k == "bsuid" for k, _ in identity.alt):
                dispatcher.utter_message(response="utter_shared_contact_verified", customer_name=name or "")
            else:
                dispatcher.utter_message(response="utter_cnpj_already_verified")
            return events
        if identity is not None and identity.kind == "phone":
            # Meta proved the number is theirs, but no customer has it
            dispatcher.utter_message(response="utter_shared_contact_unknown")
            return events
        dispatcher.utter_message(response="utter_shared_contact_unverified")
        if latest_channel(tracker) == "whatsapp":
            dispatcher.utter_message(response="utter_request_phone")
        return events


class ActionPhoneClaim(Action):
    """The visitor typed a phone number: a claim, never an identity (anyone can type any number).

    It only guides: the bot explains how the number can be proven (Meta's contact request, on
    WhatsApp) or offers the CNPJ. No lookup is made, so the answer is the same for every number.
    """

    def name(self) -> Text:
        return "action_phone_claim"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        events = identify(tracker)
        if slot_after(events, tracker, "customer_id") not in (None, ""):
            dispatcher.utter_message(response="utter_cnpj_already_verified")
            return events
        if is_unknown_username(tracker, events):
            dispatcher.utter_message(response="utter_phone_typed_whatsapp")
            dispatcher.utter_message(response="utter_request_phone")
        else:
            dispatcher.utter_message(response="utter_phone_typed")
        return events


class ActionIdentifyByCnpj(Action):
    """The visitor typed a CNPJ: an UNVERIFIED claim (CNPJs are public).

    The claim lets the visitor open tickets for that company (marked as coming from an unverified
    contact); it never shows the company's name, tickets, licenses or products. The answer is the
    same whether the CNPJ is registered or not, so the chat cannot be used to learn who is a
    customer. Payloads (`/inform_cnpj{"cnpj": ...}`) are not accepted.
    """

    def name(self) -> Text:
        return "action_identify_by_cnpj"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        return claim_cnpj(dispatcher, tracker)


def is_bare_cnpj(text: str) -> bool:
    """A message that is only a CNPJ (what NLU may miss: digits and punctuation, no words)."""
    stripped = re.sub(r"[\s.\-/]", "", text or "")
    return len(stripped) == 14 and stripped.isdigit()


def claim_cnpj(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Record the CNPJ typed in the latest message as an unverified claim (see ActionIdentifyByCnpj)."""

    text = user_text(tracker)
    if is_payload(text):
        dispatcher.utter_message(response="utter_cnpj_type_it")
        return []
    raw = extract_cnpj(text)
    try:
        if raw is None:
            raise InvalidCNPJ("no CNPJ in the message")
        digits = normalize_cnpj(raw)
    except InvalidCNPJ:
        dispatcher.utter_message(response="utter_invalid_cnpj")
        return []
    events = identify(tracker)
    if slot_after(events, tracker, "customer_id") not in (None, ""):
        # Already verified by the channel: a typed CNPJ changes nothing.
        dispatcher.utter_message(response="utter_cnpj_already_verified")
        return events
    try:
        with session_scope() as s:
            customer = customers.find_by_cnpj(s, digits)
            claimed = str(customer.id) if customer is not None else None
    except Exception:  # noqa: BLE001 - the claim is a convenience; never break the chat
        logger.exception("CNPJ lookup failed for %s", tracker.sender_id)
        claimed = None
    dispatcher.utter_message(response="utter_cnpj_noted", cnpj=format_cnpj(digits))
    return events + [SlotSet("claimed_customer_id", claimed), SlotSet("claimed_cnpj", format_cnpj(digits)),
                     SlotSet("identity_checked", True)]


class ActionContinueAsProspect(Action):
    def name(self) -> Text:
        return "action_continue_as_prospect"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_prospect")
        record_outcome(tracker)
        return [SlotSet("identity_checked", True)]
