"""A customer's WhatsApp identities and which identity opened a ticket (issue 15 item 1).

WhatsApp identities are contacts (`contacts.kind`): `phone` (canonical digits), `bsuid` (Meta's
business-scoped user id, the id of a customer behind a username) and `lid` (Z-API's Linked ID,
``<digits>@lid``). A BSUID or LID is linked to a customer only when a signed delivery carried it
together with the customer's phone (customers.link_whatsapp_id); this module checks their form
strictly (`well_formed`) before any lookup or link, lists them for the console and records on a
ticket which kind of identity the bot had when it opened it (`tickets.identified_by`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..models import Contact, Ticket

# Meta: a country code, a dot, then alphanumerics ("BR.1502576394655843", a parent BSUID
# "US.ENT.11815799212886844830"); read as the connector bounds it (parse/common.BSUID).
_BSUID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Z-API: digits then "@lid" ("81896604192873@lid"), as its webhooks send chatLid.
_LID = re.compile(r"[0-9]{1,32}@lid")
_FORMS = {"bsuid": _BSUID, "lid": _LID}

# tickets.identified_by: what the bot had when it opened the ticket.
IDENTIFIED_BY = ("phone", "bsuid", "lid", "website_token", "claim")
# attested subject kind (atende_contract.attestation) → identified_by
_BY_SUBJECT = {"phone": "phone", "bsuid": "bsuid", "lid": "lid", "id": "website_token", "email": "website_token"}

# pt-BR, for the console
KIND_LABELS = {"phone": "Telefone", "bsuid": "ID de usuário do WhatsApp (BSUID)", "lid": "LID do WhatsApp (Z-API)"}
IDENTIFIED_BY_LABELS = {
    "phone": "telefone do WhatsApp (verificado)",
    "bsuid": "ID de usuário do WhatsApp, nome de usuário sem telefone (verificado)",
    "lid": "LID do WhatsApp pela Z-API (verificado)",
    "website_token": "login no site (token verificado)",
    "claim": "CNPJ digitado no chat (não verificado)",
}


def well_formed(kind: str, value: object) -> bool:
    """True when `value` has the exact form of a WhatsApp id of that kind (bsuid / lid)."""
    pattern = _FORMS.get(kind)
    return pattern is not None and isinstance(value, str) and pattern.fullmatch(value) is not None


def identified_by_for(subject_kind: str | None, *, claimed: bool = False) -> str | None:
    """`tickets.identified_by` for a ticket opened on a turn whose attested identity is of kind
    `subject_kind` (None: anonymous), or on a CNPJ claim when not verified."""
    if subject_kind is not None:
        return _BY_SUBJECT.get(subject_kind)
    return "claim" if claimed else None


def set_identified_by(s: Session, ticket_id: int, value: str | None) -> None:
    """Record which identity opened a ticket. Raises InvalidInput for a value not in IDENTIFIED_BY."""
    if value is not None and value not in IDENTIFIED_BY:
        raise InvalidInput(f"identified_by {value!r}")
    ticket = s.get(Ticket, ticket_id)
    if ticket is None:
        raise InvalidInput(f"ticket {ticket_id} does not exist")
    ticket.identified_by = value
    s.flush()


@dataclass(frozen=True)
class WhatsAppIdentity:
    kind: str  # phone | bsuid | lid
    value: str
    label: str  # pt-BR
    primary: bool = False


def whatsapp_identities(s: Session, customer_id: int) -> list[WhatsAppIdentity]:
    """The customer's WhatsApp identities, phones first, then BSUIDs, then LIDs (in link order)."""
    order = {kind: i for i, kind in enumerate(KIND_LABELS)}
    rows = s.scalars(select(Contact).where(Contact.customer_id == customer_id,
                                           Contact.kind.in_(tuple(KIND_LABELS))).order_by(Contact.id))
    found = [WhatsAppIdentity(c.kind, c.value, KIND_LABELS[c.kind], bool(c.is_primary)) for c in rows]
    return sorted(found, key=lambda i: order[i.kind])
