"""SQLAlchemy 2 models of the help-desk domain. The schema itself comes from Alembic migrations.

Size: one module on purpose: the whole schema in one place, read side by side with the migrations
(tests/helpdesk/test_demo_and_schema.py compares the two).
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Optional

from atende_contract import wa_pricing
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


# Vocabularies (stored as plain strings; validated by the services).
CHANNELS = ("whatsapp", "web", "phone", "console")
TICKET_TYPES = ("erro", "duvida", "atualizacao", "instalacao", "comercial", "outro")
TICKET_STATUSES = ("novo", "em_atendimento", "concluido")
PRIORITIES = ("baixa", "normal", "alta", "urgente")
TAX_REGIMES = ("simples_nacional", "lucro_presumido", "lucro_real", "mei")
ROLES = ("technician", "manager")

TYPE_LABELS = {
    "erro": "erro", "duvida": "dúvida", "atualizacao": "atualização",
    "instalacao": "instalação", "comercial": "comercial", "outro": "outro",
}
STATUS_LABELS = {"novo": "novo", "em_atendimento": "em atendimento", "concluido": "concluído"}
TAX_REGIME_LABELS = {
    "simples_nacional": "Simples Nacional", "lucro_presumido": "Lucro Presumido",
    "lucro_real": "Lucro Real", "mei": "MEI",
}


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[str] = mapped_column(Text, default="")
    modules: Mapped[list["Module"]] = relationship(back_populates="product", order_by="Module.id")


class Module(Base):
    __tablename__ = "modules"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    synonyms: Mapped[list[str]] = mapped_column(JSON, default=list)
    product: Mapped[Product] = relationship(back_populates="modules")


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    responsible_name: Mapped[str] = mapped_column(String(160))
    legal_name: Mapped[str] = mapped_column(String(200))
    trade_name: Mapped[str] = mapped_column(String(200), default="")
    cnpj: Mapped[str] = mapped_column(String(14), unique=True)
    tax_regime: Mapped[str] = mapped_column(String(30))
    city: Mapped[str] = mapped_column(String(120), default="")
    state: Mapped[str] = mapped_column(String(2), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Contract tier for SLA policies (0008); NULL: the default policies apply.
    tier: Mapped[Optional[str]] = mapped_column(String(20), nullable=True)
    contacts: Mapped[list["Contact"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Contact.id")
    machines: Mapped[list["Machine"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Machine.id")
    licenses: Mapped[list["License"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="License.id")


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_contact_kind_value"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # phone | email
    value: Mapped[str] = mapped_column(String(200))  # canonical phone digits or lower-case e-mail
    name: Mapped[str] = mapped_column(String(160), default="")
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    customer: Mapped[Customer] = relationship(back_populates="contacts")


class Machine(Base):
    __tablename__ = "machines"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    anydesk_code: Mapped[str] = mapped_column(String(20), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    customer: Mapped[Customer] = relationship(back_populates="machines")


class License(Base):
    __tablename__ = "licenses"
    __table_args__ = (UniqueConstraint("customer_id", "module_id", name="uq_license_customer_module"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id"))
    seats: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), default="ativa")  # ativa | suspensa | cancelada
    version: Mapped[str] = mapped_column(String(20), default="")
    valid_until: Mapped[Optional[date]] = mapped_column(Date, nullable=True)
    customer: Mapped[Customer] = relationship(back_populates="licenses")
    module: Mapped[Module] = relationship()


class Technician(Base):
    __tablename__ = "technicians"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(160))
    email: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="technician")
    level: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Unused since login throttling became an exponential backoff (technicians.LoginThrottle);
    # kept so that older rows and tools still read.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    # Console sessions carry the generation they were opened with; a password reset or a
    # deactivation bumps it, which ends every open session at its next rerun (0004).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_opened", "status", "opened_at"),
        Index("ix_tickets_opened_at", "opened_at"),
        Index("ix_tickets_customer_opened", "customer_id", "opened_at"),
        Index("ix_tickets_technician_status", "technician_id", "status"),
        Index("ix_tickets_module_opened", "module", "opened_at"),
        Index("ix_tickets_conversation", "conversation_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("customers.id"), nullable=True)
    channel: Mapped[str] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(20))
    module: Mapped[Optional[str]] = mapped_column(String(40), nullable=True)  # module code
    status: Mapped[str] = mapped_column(String(20), default="novo")
    priority: Mapped[str] = mapped_column(String(20), default="normal")
    level: Mapped[int] = mapped_column(Integer, default=1)
    technician_id: Mapped[Optional[int]] = mapped_column(ForeignKey("technicians.id"), nullable=True)
    conversation_id: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    subject: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    contact_name: Mapped[str] = mapped_column(String(160), default="")
    # A lead's own contact (no customer record): canonical phone digits / lower-case e-mail.
    contact_phone: Mapped[Optional[str]] = mapped_column(String(20), nullable=True)
    contact_email: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    # Which identity the bot had when it opened the ticket (0014; services/identities.py):
    # phone | bsuid | lid | website_token | claim; NULL: anonymous, a lead, the console, older.
    identified_by: Mapped[Optional[str]] = mapped_column(String(20), nullable=True)
    solution: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    first_response_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    # SLA due instants, copied from ticket_sla by the SLA job (0008) so that the % met reports
    # read one table; NULL: no SLA (yet).
    first_response_due_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    resolution_due_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    row_version: Mapped[int] = mapped_column(Integer, default=1)
    customer: Mapped[Optional[Customer]] = relationship()
    technician: Mapped[Optional[Technician]] = relationship()
    events: Mapped[list["TicketEvent"]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id", cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": row_version}

    @property
    def number(self) -> str:
        return f"#{self.id}"


class TicketEvent(Base):
    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))  # "bot", "cliente", a technician's name
    technician_id: Mapped[Optional[int]] = mapped_column(ForeignKey("technicians.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(30))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ticket: Mapped[Ticket] = relationship(back_populates="events")


class ConversationOutcome(Base):
    __tablename__ = "conversation_outcomes"
    __table_args__ = (Index("ix_outcomes_conversation_updated", "conversation_id", "updated_at"),
                      Index("ix_outcomes_started", "started_at"),
                      # durable bot resolution: a customer's later conversations (migration 0006)
                      Index("ix_outcomes_customer_started", "customer_id", "started_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[Optional[str]] = mapped_column(String(20), nullable=True)
    customer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("customers.id"), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    answered_from_docs: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved_by_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    handed_off: Mapped[bool] = mapped_column(Boolean, default=False)
    product_offered: Mapped[bool] = mapped_column(Boolean, default=False)
    rating: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)


class KnowledgeQuery(Base):
    __tablename__ = "knowledge_queries"
    __table_args__ = (Index("ix_kq_at", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    question: Mapped[str] = mapped_column(Text)
    product: Mapped[Optional[str]] = mapped_column(String(40), nullable=True)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    grounded: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # how it was answered (0011): "llm" | "extractive" | NULL (before 0011 or no answer at all),
    # the LLM tokens the call cost, and whether the repeat-question cache served it (no call)
    mode: Mapped[Optional[str]] = mapped_column(String(12), nullable=True)
    llm_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())


class PrivacyRequest(Base):
    """Audit of an LGPD export or erasure (0005). Holds no personal data: the selector's kind, never
    its value; the customer id only (that row is anonymised by the erasure)."""
    __tablename__ = "privacy_requests"
    __table_args__ = (Index("ix_privacy_requests_at", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(20))  # export | erase
    actor: Mapped[str] = mapped_column(String(200))
    selector: Mapped[str] = mapped_column(String(20))  # customer | phone | email | conversation
    customer_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class MachineAccess(Base):
    """Audit of a console user revealing a machine's AnyDesk code (0006): who, when, which customer
    and machine, from which ticket if any. Ids only, never the code or a name: an LGPD erasure that
    removes the machine leaves the row (``machine_id`` set to NULL) without personal data."""
    __tablename__ = "machine_accesses"
    __table_args__ = (Index("ix_machine_accesses_customer_at", "customer_id", "at"),
                      Index("ix_machine_accesses_technician_at", "technician_id", "at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    technician_id: Mapped[int] = mapped_column(ForeignKey("technicians.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    machine_id: Mapped[Optional[int]] = mapped_column(ForeignKey("machines.id", ondelete="SET NULL"), nullable=True)
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), nullable=True)
    action: Mapped[str] = mapped_column(String(20), default="reveal")


class Notification(Base):
    """The notification outbox (0009): one row per (ticket event, channel, recipient), UNIQUE, so a
    notification exists, and is sent, once however many dispatchers run. See services/notifications."""
    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "channel", "recipient", name="uq_notifications_event_channel_recipient"),
        Index("ix_notifications_state_next", "state", "next_attempt_at"),
        Index("ix_notifications_technician_channel_state", "technician_id", "channel", "state"),
        Index("ix_notifications_ticket", "ticket_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("ticket_events.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))  # the event's kind
    channel: Mapped[str] = mapped_column(String(20))  # email | webhook | console
    recipient: Mapped[str] = mapped_column(String(40))  # "technician:<id>" or "team" (webhook)
    technician_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("technicians.id", ondelete="CASCADE"), nullable=True)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending|sending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claim_token: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)


class NotificationCursor(Base):
    """The newest ticket event id the notification dispatcher has fully processed (0009)."""
    __tablename__ = "notification_cursors"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class NotificationPreference(Base):
    """A technician's choice for one notification channel (0009); no row means the default."""
    __tablename__ = "notification_preferences"
    technician_id: Mapped[int] = mapped_column(ForeignKey("technicians.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SlaPolicy(Base):
    """First-response and resolution targets, in business minutes, per priority and optionally per
    customer contract tier (0008). ``tier`` NULL is the default row of a priority; a customer's
    tier row, when there is one, wins over it. One row per (tier, priority): the service writes
    the whole set under the calendar row's lock."""
    __tablename__ = "sla_policies"
    __table_args__ = (Index("ix_sla_policies_tier_priority", "tier", "priority"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tier: Mapped[Optional[str]] = mapped_column(String(20), nullable=True)
    priority: Mapped[str] = mapped_column(String(20))
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class SlaCalendar(Base):
    """The one business calendar (row id 1, 0008): weekly working intervals in a time zone, and
    whether Carnaval is observed. ``version`` goes up on every change of calendar or policies, so
    the SLA job recomputes the due times of open tickets."""
    __tablename__ = "sla_calendar"
    id: Mapped[int] = mapped_column(primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    week: Mapped[dict[str, Any]] = mapped_column(JSON)
    carnival: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # the SLA job's pass over past tickets: ids up to here have been looked at (0 after a save)
    backfill_cursor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class TicketSla(Base):
    """A ticket's SLA clocks (0008): the targets that applied, warning (80 %) and due instants, and
    when the SLA job raised each warning and breach (claimed with a conditional UPDATE, so each is
    written once even with two workers)."""
    __tablename__ = "ticket_sla"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    tier: Mapped[Optional[str]] = mapped_column(String(20), nullable=True)
    priority: Mapped[str] = mapped_column(String(20))
    config_version: Mapped[int] = mapped_column(Integer)
    first_response_minutes: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    first_response_warn_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    first_response_due_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    first_response_warned_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    first_response_breached_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    resolution_minutes: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    resolution_warn_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    resolution_due_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    resolution_warned_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    resolution_breached_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PrivacyConsent(Base):
    """A website visitor accepted the chat's consent card (0007; helpdesk/consent.py): which text
    version and policy URL, received when (the server's clock), by which verified customer if any.
    Once per conversation and text version."""
    __tablename__ = "privacy_consents"
    __table_args__ = (UniqueConstraint("conversation_id", "text_version", name="uq_privacy_consents_conversation_version"),
                      Index("ix_privacy_consents_customer", "customer_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    text_version: Mapped[str] = mapped_column(String(40))
    policy_url: Mapped[Optional[str]] = mapped_column(String(500), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    customer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), nullable=True)


class PrivacyNotice(Base):
    """The WhatsApp privacy notice was sent (0007; helpdesk/consent.py): one row per recipient key
    (``phone:…``, ``bsuid:…``, ``lid:…``, or ``conversation:…`` when anonymous) and text version."""
    __tablename__ = "privacy_notices"
    __table_args__ = (UniqueConstraint("recipient", "text_version", name="uq_privacy_notices_recipient_version"),
                      Index("ix_privacy_notices_conversation", "conversation_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(240))
    text_version: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    conversation_id: Mapped[str] = mapped_column(String(200))
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RetentionRun(Base):
    """Audit of one retention purge (0010; helpdesk/retention.py): when, who ran it, the periods in
    days that applied and the rows changed per store. No personal data."""
    __tablename__ = "retention_runs"
    __table_args__ = (Index("ix_retention_runs_at", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    periods: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CustomerCorrection(Base):
    """One edit of a customer's personal data (0010; services/customers.py): who (a technician, or a
    system actor such as ``whatsapp:number-change``), when, which customer and which field. The old
    and new values are never stored (docs/privacy.md), so the log is no second copy of the data."""
    __tablename__ = "customer_corrections"
    __table_args__ = (Index("ix_customer_corrections_customer_at", "customer_id", "at"),
                      Index("ix_customer_corrections_at", "at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    technician_id: Mapped[Optional[int]] = mapped_column(ForeignKey("technicians.id", ondelete="SET NULL"),
                                                         nullable=True)
    actor: Mapped[str] = mapped_column(String(60))  # technician | whatsapp:number-change | ... | unknown
    field: Mapped[str] = mapped_column(String(40))  # responsible_name, cnpj, contact.phone, machine, ...
    action: Mapped[str] = mapped_column(String(20))  # created | changed | added | removed


ARTICLE_STATES = ("pending", "approved", "discarded", "needs_review")


class KnowledgeArticle(Base):
    """A registered solution suggested as documentation, and the article a manager makes of it (0012;
    services/articles.py). ``question`` and ``solution`` are copies of the ticket's text at suggestion
    time (personal, erased with the ticket); ``title``/``body`` are the manager's article, the only
    text the ingester reads, and only while ``state`` is ``approved``. ``review_reason`` set (e.g.
    "titular apagado") flags the row for a manager's review."""
    __tablename__ = "knowledge_articles"
    __table_args__ = (Index("ix_knowledge_articles_state", "state"),
                      Index("ix_knowledge_articles_ticket", "ticket_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), nullable=True)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    module: Mapped[Optional[str]] = mapped_column(String(40), nullable=True)  # module code
    question: Mapped[str] = mapped_column(Text, default="")
    solution: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    suggested_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("technicians.id", ondelete="SET NULL"),
                                                           nullable=True)
    suggested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("technicians.id", ondelete="SET NULL"),
                                                         nullable=True)
    decided_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # the manager approved despite the personal-data warnings (they confirmed none is the customer's)
    personal_data_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    review_reason: Mapped[str] = mapped_column(String(200), default="")
    flagged_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)


# Meta's pricing categories of a WhatsApp message (the `pricing.category` of its statuses,
# atende_contract.wa_pricing): the ones a manager can price in BRL (services/wa_cost.py).
WHATSAPP_PRICE_CATEGORIES = wa_pricing.CATEGORIES


class WhatsAppPrice(Base):
    """What a manager says one WhatsApp message of a pricing category costs, in BRL, from
    ``valid_from`` on (0013; services/wa_cost.py). A message is priced with the row of its category
    whose ``valid_from`` is the latest at or before the message's time. A new price is a new row, so
    past periods keep their figures; the same category and date again replaces that row (a typo
    corrected)."""
    __tablename__ = "whatsapp_prices"
    __table_args__ = (UniqueConstraint("category", "valid_from", name="uq_whatsapp_prices_category_valid_from"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(40))
    price_brl: Mapped[Decimal] = mapped_column(Numeric(10, 4))
    valid_from: Mapped[datetime] = mapped_column(DateTime)  # UTC
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("technicians.id", ondelete="SET NULL"),
                                                         nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
