"""Customers: lookup by phone, CNPJ and e-mail; creation with validation.

Size: customer records with their contacts, machines and licenses; every write also logs the
correction (services/corrections.py), which is why they stay in one module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Iterable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from atende_contract import attestation

from ..cnpj import normalize_cnpj
from ..errors import DuplicateCustomer, InvalidInput, UnknownCustomer
from ..models import TAX_REGIMES, Contact, Customer, License, Machine, Module
from ..phones import normalize_phone
from .corrections import Actor, corrections, record as _log_correction  # noqa: F401 (corrections: the console's)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_TAX_ALIASES = {
    "simples": "simples_nacional", "simples nacional": "simples_nacional",
    "lucro presumido": "lucro_presumido", "presumido": "lucro_presumido",
    "lucro real": "lucro_real", "real": "lucro_real", "mei": "mei",
}


def normalize_email(raw: str) -> str:
    email = (raw or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 200:
        raise InvalidInput(f"invalid e-mail {raw!r}", "E-mail inválido.")
    return email


def normalize_tax_regime(raw: str) -> str:
    key = (raw or "").strip().lower().replace("_", " ")
    value = _TAX_ALIASES.get(key, key.replace(" ", "_"))
    if value not in TAX_REGIMES:
        raise InvalidInput(f"unknown tax regime {raw!r}",
                           "Regime tributário inválido (Simples Nacional, Lucro Presumido, Lucro Real ou MEI).")
    return value


def _with_details():  # type: ignore[no-untyped-def]
    return (selectinload(Customer.contacts), selectinload(Customer.machines),
            selectinload(Customer.licenses).selectinload(License.module))


def get(s: Session, customer_id: int) -> Customer:
    customer = s.scalar(select(Customer).where(Customer.id == customer_id).options(*_with_details()))
    if customer is None:
        raise UnknownCustomer(f"customer {customer_id} does not exist")
    return customer


def find_by_phone(s: Session, raw: str) -> Customer | None:
    """Find the customer owning a phone, however it is written. Raises InvalidPhone."""
    canonical = normalize_phone(raw)
    return s.scalar(
        select(Customer).join(Contact)
        .where(Contact.kind == "phone", Contact.value == canonical)
        .options(*_with_details())
    )


def find_by_cnpj(s: Session, raw: str) -> Customer | None:
    """Find a customer by CNPJ. Raises InvalidCNPJ when the check digits fail."""
    cnpj = normalize_cnpj(raw)
    return s.scalar(select(Customer).where(Customer.cnpj == cnpj).options(*_with_details()))


# WhatsApp identities other than the phone, kept as contacts: Meta's business-scoped user id
# (BSUID, `user_id`) and Z-API's LID. Values are the ids exactly as the provider sends them.
WHATSAPP_ID_KINDS = ("bsuid", "lid")
_WHATSAPP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


def find_by_whatsapp_id(s: Session, kind: str, value: str) -> Customer | None:
    """The customer a BSUID / LID is linked to, or None."""
    if kind not in WHATSAPP_ID_KINDS or not _WHATSAPP_ID_RE.match(value or ""):
        return None
    return s.scalar(select(Customer).join(Contact).where(Contact.kind == kind, Contact.value == value).limit(1))


def link_whatsapp_id(s: Session, customer_id: int, kind: str, value: str, *,
                     by: Actor = "whatsapp:id-link") -> bool:
    """Link a BSUID / LID to a customer (seen together with the customer's phone in one signed
    delivery). A link to another customer moves: Meta says this id is this phone's user now.
    True when something changed."""
    if kind not in WHATSAPP_ID_KINDS or not _WHATSAPP_ID_RE.match(value or ""):
        raise InvalidInput(f"bad {kind} {value!r}", "Identificador do WhatsApp inválido.")
    contact = s.scalar(select(Contact).where(Contact.kind == kind, Contact.value == value))
    if contact is not None:
        if contact.customer_id == customer_id:
            return False
        _log_correction(s, contact.customer_id, f"contact.{kind}", "removed", by)
        contact.customer_id = customer_id
    else:
        s.add(Contact(customer_id=customer_id, kind=kind, value=value, name="WhatsApp"))
    _log_correction(s, customer_id, f"contact.{kind}", "added", by)
    s.flush()
    return True


# The customer's WhatsApp username (Meta's `profile.username`), a contact of kind "username" holding
# the canonical handle (lower case, no '@'). Display-only: no function looks a customer up by it, it
# is written only from this turn's signed attestation (actions/identification.py), one per customer.
USERNAME_KIND = "username"


def set_whatsapp_username(s: Session, customer_id: int, raw: str, *, by: Actor = "whatsapp:username") -> bool:
    """Store the username a signed WhatsApp delivery carried for this (already identified) customer.
    It replaces the customer's earlier one; a handle held by another customer moves here (the latest
    signed delivery wins: a user has one username and may change it). Every change is logged.
    Raises InvalidInput for a value out of form. True when something changed."""
    value, why = attestation.username_form(raw)
    if value is None:
        raise InvalidInput(f"bad WhatsApp username: {why}", "Nome de usuário do WhatsApp inválido.")
    if s.get(Customer, customer_id) is None:
        raise UnknownCustomer(f"customer {customer_id} does not exist")
    mine = list(s.scalars(select(Contact).where(Contact.customer_id == customer_id,
                                                Contact.kind == USERNAME_KIND).order_by(Contact.id)))
    if [c.value for c in mine] == [value]:
        return False
    for c in mine:
        s.delete(c)
    if mine:
        s.flush()  # the old handle's row goes before the new one can take the unique (kind, value)
    held = s.scalar(select(Contact).where(Contact.kind == USERNAME_KIND, Contact.value == value))
    if held is not None:
        _log_correction(s, held.customer_id, f"contact.{USERNAME_KIND}", "removed", by)
        held.customer_id = customer_id
    else:
        s.add(Contact(customer_id=customer_id, kind=USERNAME_KIND, value=value, name=""))
    _log_correction(s, customer_id, f"contact.{USERNAME_KIND}", "changed" if mine else "added", by)
    s.flush()
    return True


def whatsapp_username(s: Session, customer_id: int) -> str | None:
    """The customer's WhatsApp username (canonical, without '@'), or None."""
    return s.scalar(select(Contact.value).where(Contact.customer_id == customer_id, Contact.kind == USERNAME_KIND)
                    .order_by(Contact.id.desc()).limit(1))


def change_phone(s: Session, customer_id: int, old: str, new: str, *,
                 by: Actor = "whatsapp:number-change") -> bool:
    """Meta reported that the customer's number `old` is now `new` (a signed `user_changed_number`):
    the phone contact moves, and the old number no longer identifies them (carriers recycle
    numbers). False when `old` is not this customer's or `new` is already someone's."""
    old_c, new_c = normalize_phone(old), normalize_phone(new)
    if s.scalar(select(Contact.id).where(Contact.kind == "phone", Contact.value == new_c)) is not None:
        return False
    contact = s.scalar(select(Contact).where(Contact.kind == "phone", Contact.value == old_c,
                                             Contact.customer_id == customer_id))
    if contact is None:
        return False
    contact.value = new_c
    _log_correction(s, customer_id, "contact.phone", "changed", by)
    s.flush()
    return True


def find_by_email(s: Session, raw: str) -> Customer | None:
    try:
        email = normalize_email(raw)
    except InvalidInput:
        return None
    return s.scalar(
        select(Customer).join(Contact)
        .where(Contact.kind == "email", Contact.value == email)
        .options(*_with_details())
    )


def search(s: Session, text: str = "", limit: int = 100) -> list[Customer]:
    stmt = select(Customer).order_by(Customer.legal_name).limit(limit)
    text = (text or "").strip()
    if text:
        like = f"%{text.lower()}%"
        digits = re.sub(r"\D", "", text)
        conds = [func.lower(Customer.legal_name).like(like),
                 func.lower(Customer.trade_name).like(like),
                 func.lower(Customer.responsible_name).like(like)]
        if digits:
            conds.append(Customer.cnpj.like(f"%{digits}%"))
        stmt = stmt.where(or_(*conds))
    return list(s.scalars(stmt.options(*_with_details())))


def product_codes(customer: Customer) -> list[str]:
    """Codes of the products for which the customer holds an active license."""
    codes: list[str] = []
    for lic in customer.licenses:
        if lic.status == "ativa" and lic.module.product.code not in codes:
            codes.append(lic.module.product.code)
    return codes


def module_codes(customer: Customer) -> list[str]:
    return [lic.module.code for lic in customer.licenses if lic.status == "ativa"]


@dataclass
class LicenseSpec:
    module: str
    seats: int = 1
    version: str = ""
    status: str = "ativa"
    valid_until: date | None = None


@dataclass
class MachineSpec:
    name: str
    anydesk_code: str = ""
    notes: str = ""


def normalize_anydesk(raw: str) -> str:
    digits = re.sub(r"[\s\-]", "", raw or "")
    if digits and not re.fullmatch(r"\d{9,10}", digits):
        raise InvalidInput(f"invalid AnyDesk code {raw!r}", "Código AnyDesk inválido (9 ou 10 dígitos).")
    return digits


def create(
    s: Session,
    *,
    responsible_name: str,
    legal_name: str,
    cnpj: str,
    tax_regime: str,
    trade_name: str = "",
    phones: Iterable[str] = (),
    emails: Iterable[str] = (),
    licenses: Iterable[LicenseSpec] = (),
    machines: Iterable[MachineSpec] = (),
    city: str = "",
    state: str = "",
    notes: str = "",
) -> Customer:
    """Create a customer with contacts, licenses and machines; validates everything first."""
    if not (responsible_name or "").strip() or not (legal_name or "").strip():
        raise InvalidInput("responsible and legal name are required",
                           "Informe o nome do responsável e a razão social.")
    digits = normalize_cnpj(cnpj)
    regime = normalize_tax_regime(tax_regime)
    phone_values = list(dict.fromkeys(normalize_phone(p) for p in phones if p and p.strip()))
    email_values = list(dict.fromkeys(normalize_email(e) for e in emails if e and e.strip()))
    if s.scalar(select(Customer.id).where(Customer.cnpj == digits)) is not None:
        raise DuplicateCustomer(f"CNPJ {digits} already registered",
                                "Já existe um cliente com este CNPJ.")
    taken = s.scalar(select(Contact.value).where(
        or_(Contact.value.in_(phone_values), Contact.value.in_(email_values))).limit(1))
    if taken:
        raise DuplicateCustomer(f"contact {taken} already belongs to a customer",
                                f"O contato {taken} já pertence a outro cliente.")
    modules = {m.code: m for m in s.scalars(select(Module))}
    lic_rows = []
    for spec in licenses:
        module = modules.get(spec.module)
        if module is None:
            raise InvalidInput(f"unknown module {spec.module!r}", f"Módulo desconhecido: {spec.module}.")
        lic_rows.append(License(module=module, seats=spec.seats, version=spec.version,
                                status=spec.status, valid_until=spec.valid_until))
    machine_rows = [Machine(name=m.name.strip(), anydesk_code=normalize_anydesk(m.anydesk_code), notes=m.notes)
                    for m in machines]
    customer = Customer(
        responsible_name=responsible_name.strip(), legal_name=legal_name.strip(),
        trade_name=(trade_name or "").strip(), cnpj=digits, tax_regime=regime,
        city=city, state=state, notes=notes,
    )
    customer.contacts = (
        [Contact(kind="phone", value=v, is_primary=i == 0) for i, v in enumerate(phone_values)]
        + [Contact(kind="email", value=v, is_primary=i == 0) for i, v in enumerate(email_values)]
    )
    customer.licenses = lic_rows
    customer.machines = machine_rows
    s.add(customer)
    s.flush()
    return customer


def update(s: Session, customer_id: int, *, by: Actor = None, **fields: str) -> Customer:
    """Edit the registry fields of a customer (validated like `create`). Each field whose value
    changes is written to the correction log under ``by`` (a technician id)."""
    customer = get(s, customer_id)
    before = {k: getattr(customer, k) for k in _REGISTRY_FIELDS}
    if "cnpj" in fields:
        digits = normalize_cnpj(fields.pop("cnpj"))
        other = s.scalar(select(Customer.id).where(Customer.cnpj == digits, Customer.id != customer_id))
        if other is not None:
            raise DuplicateCustomer(f"CNPJ {digits} already registered", "Já existe um cliente com este CNPJ.")
        customer.cnpj = digits
    if "tax_regime" in fields:
        customer.tax_regime = normalize_tax_regime(fields.pop("tax_regime"))
    for key in ("responsible_name", "legal_name", "trade_name", "city", "state", "notes"):
        if key in fields:
            value = (fields.pop(key) or "").strip()
            if key in ("responsible_name", "legal_name") and not value:
                raise InvalidInput(f"{key} is required", "Informe o nome do responsável e a razão social.")
            setattr(customer, key, value)
    if fields:
        raise InvalidInput(f"unknown fields {sorted(fields)}")
    for key in _REGISTRY_FIELDS:
        if getattr(customer, key) != before[key]:
            _log_correction(s, customer_id, key, "changed", by)
    s.flush()
    return customer


_REGISTRY_FIELDS = ("responsible_name", "legal_name", "trade_name", "cnpj", "tax_regime", "city", "state", "notes")


def add_contact(s: Session, customer_id: int, kind: str, raw: str, name: str = "", *, by: Actor = None) -> Contact:
    customer = get(s, customer_id)
    if kind == "phone":
        value = normalize_phone(raw)
    elif kind == "email":
        value = normalize_email(raw)
    else:
        raise InvalidInput(f"unknown contact kind {kind!r}")
    if s.scalar(select(Contact.id).where(Contact.kind == kind, Contact.value == value)) is not None:
        raise DuplicateCustomer(f"contact {value} exists", f"O contato {value} já está cadastrado.")
    contact = Contact(customer=customer, kind=kind, value=value, name=name)
    s.add(contact)
    _log_correction(s, customer_id, f"contact.{kind}", "added", by)
    s.flush()
    return contact


def add_machine(s: Session, customer_id: int, name: str, anydesk_code: str = "", notes: str = "", *,
                by: Actor = None) -> Machine:
    customer = get(s, customer_id)
    if not (name or "").strip():
        raise InvalidInput("machine name required", "Informe o nome da máquina.")
    machine = Machine(customer=customer, name=name.strip(), anydesk_code=normalize_anydesk(anydesk_code), notes=notes)
    s.add(machine)
    _log_correction(s, customer_id, "machine", "added", by)
    s.flush()
    return machine


def set_license(s: Session, customer_id: int, spec: LicenseSpec) -> License:
    customer = get(s, customer_id)
    module = s.scalar(select(Module).where(Module.code == spec.module))
    if module is None:
        raise InvalidInput(f"unknown module {spec.module!r}", f"Módulo desconhecido: {spec.module}.")
    lic = next((l for l in customer.licenses if l.module_id == module.id), None)
    if lic is None:
        lic = License(customer=customer, module=module)
        s.add(lic)
    lic.seats, lic.version, lic.status, lic.valid_until = spec.seats, spec.version, spec.status, spec.valid_until
    s.flush()
    return lic
