"""LGPD retention (issue #17 part 4): `python -m helpdesk privacy purge [--dry-run]`, and the worker's
daily `retention` job.

Periods, in days, per kind of data (:class:`RetentionSettings`, read once from
``ATENDE_RETENTION_*_DAYS``; defaults and decisions in docs/privacy.md):

- transcripts: Rasa ``events`` of a conversation whose last event is older than the period are
  deleted;
- WhatsApp bodies: finished ``whatsapp_inbox`` / ``whatsapp_outbox`` rows older than the period
  lose their body and their address (pseudonym); old leases and number changes are deleted;
- questions: ``knowledge_queries`` older than the period lose their text and conversation id
  (rows kept, so the question counts of past reports add up);
- leads that never became customers: everything held about the lead is erased as
  ``privacy erase`` does (tickets kept, anonymised);
- console records: ``machine_accesses`` and ``customer_corrections`` older than the period are
  deleted (console sessions themselves never reach the database).

Never touched, however old: a conversation with an open ticket (``novo``/``em_atendimento``) or
whose hand-off loop is active in the tracker, and everything of such a conversation (its WhatsApp
rows, questions, lead). The whole purge is one transaction; two purges at once are serialised (a
PostgreSQL advisory lock; SQLite's write lock, taken first by the audit row) so the second finds
nothing left. Each run writes one :class:`~helpdesk.models.RetentionRun` with counts per store.

(About 370 lines: one function per store, kept in one module so that every store applies the same
exemptions and the same pseudonyms of one run.)
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Iterable

from atende_contract import channels, tables
from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.orm import Session

from . import privacy
from .errors import InvalidInput
from .models import Contact, CustomerCorrection, KnowledgeQuery, MachineAccess, RetentionRun, Ticket, utcnow
from .services.tickets import ACTIVE

HANDOFF_LOOP = "action_handoff"
PSEUDO_PREFIX = "apagado:"
MAX_DAYS = 36500
_LOCK_KEY = 17_0004  # pg_advisory_xact_lock key of the purge (issue 17, part 4)
_CHUNK = 500


@dataclass(frozen=True)
class RetentionSettings:
    """Retention periods in days (each 1..36500)."""
    transcripts_days: int = 180
    whatsapp_days: int = 90
    questions_days: int = 180
    leads_days: int = 365
    console_days: int = 365

    @staticmethod
    def env_name(field_name: str) -> str:
        return "ATENDE_RETENTION_" + field_name.upper()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "RetentionSettings":
        """Raises InvalidInput naming the variable for 0, negative, fractional or garbage values."""
        env = dict(os.environ if env is None else env)
        values: dict[str, int] = {}
        for f in fields(cls):
            name = cls.env_name(f.name)
            raw = (env.get(name) or "").strip()
            if not raw:
                continue
            try:
                days = int(raw)
            except ValueError:
                days = 0
            if not 1 <= days <= MAX_DAYS:
                raise InvalidInput(f"{name} must be a whole number of days from 1 to {MAX_DAYS}, got {raw!r}",
                                   f"{name} inválido ({raw!r}): informe um número inteiro de dias, de 1 a "
                                   f"{MAX_DAYS}.")
            values[f.name] = days
        return cls(**values)


@lru_cache(maxsize=1)
def get_settings() -> RetentionSettings:
    return RetentionSettings.from_env()


def reset_settings() -> None:
    get_settings.cache_clear()


# ---- helpers -------------------------------------------------------------------------------------

def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    items = sorted(set(values), key=str)
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


def _exec_in(s: Session, sql: str, values: Iterable[Any], **params: Any) -> int:
    """Run ``sql`` (with ``IN :values``) over the values in chunks; the rows it changed."""
    n = 0
    for chunk in _chunks(values):
        stmt = text(sql).bindparams(bindparam("values", expanding=True))
        n += int(s.execute(stmt, {"values": chunk, **params}).rowcount or 0)
    return n


def _wa_local(conv: str) -> str | None:
    owner, local = channels.split(conv)
    return local if owner in (channels.WHATSAPP, None) else None


@dataclass
class _Exempt:
    conversations: set[str]  # every stored form
    wa_ids: set[str]

    def has_conversation(self, conv: str | None) -> bool:
        return bool(conv) and any(f in self.conversations for f in channels.legacy_forms(conv))


def _handoff_conversations(s: Session) -> set[str]:
    """Conversations whose latest ``active_loop`` event in the tracker is the hand-off loop."""
    if not privacy._has(s, tables.EVENTS):
        return set()
    # only conversations that ever entered the hand-off loop, then each one's latest loop event
    ever = [x for (x,) in s.execute(text(f"SELECT DISTINCT sender_id FROM {tables.EVENTS} WHERE "
                                         "type_name = 'active_loop' AND data LIKE :loop"),
                                    {"loop": f"%{HANDOFF_LOOP}%"})]
    rows: list[Any] = []
    for chunk in _chunks(ever):
        rows += s.execute(text(f"SELECT sender_id, timestamp, id, data FROM {tables.EVENTS} "
                               "WHERE type_name = 'active_loop' AND sender_id IN :values")
                          .bindparams(bindparam("values", expanding=True)), {"values": chunk}).all()
    latest: dict[str, tuple[float, int, str | None]] = {}
    for sender, ts, row_id, data in rows:
        try:
            name = json.loads(data).get("name") if data else None
        except (ValueError, AttributeError):
            name = None
        key = (float(ts or 0), int(row_id))
        if sender not in latest or key > latest[sender][:2]:
            latest[sender] = (key[0], key[1], name)
    return {sender for sender, (_t, _i, name) in latest.items() if name == HANDOFF_LOOP}


def _exempt(s: Session) -> _Exempt:
    convs: set[str] = set()
    open_convs = s.scalars(select(Ticket.conversation_id).where(Ticket.status.in_(ACTIVE),
                                                                Ticket.conversation_id.is_not(None)))
    for conv in list(open_convs) + sorted(_handoff_conversations(s)):
        convs.update(channels.legacy_forms(conv))
    wa_ids = {local for c in convs if (local := _wa_local(c))}
    if privacy._has(s, privacy.WA_ALIASES) and wa_ids:  # a number change: both numbers are the conversation's
        for wa_id, conv in s.execute(text(f"SELECT wa_id, conversation FROM {privacy.WA_ALIASES}")):
            if wa_id in wa_ids or conv in wa_ids:
                wa_ids.update((wa_id, conv))
                convs.update(channels.legacy_forms(f"whatsapp:{conv}"))
    return _Exempt(convs, wa_ids)


# ---- the stores ----------------------------------------------------------------------------------

def _purge_leads(s: Session, cut: datetime, exempt: _Exempt, pseudo: Any, out: dict[str, int]) -> None:
    """Leads (tickets without a customer, with a contact) idle since before ``cut`` whose contact
    never became a customer's: erased like ``privacy erase`` (tickets kept, anonymised)."""
    t = Ticket
    leads = list(s.scalars(select(t).where(t.customer_id.is_(None), t.status.not_in(ACTIVE), t.updated_at < cut,
                                           (t.contact_phone.is_not(None)) | (t.contact_email.is_not(None)))
                           .order_by(t.id)))
    done: set[int] = set()
    has_events = privacy._has(s, tables.EVENTS)
    for lead in leads:
        if lead.id in done or (lead.contact_phone is None and lead.contact_email is None):
            continue
        scope = privacy.Scope(selector="lead", value="")
        if lead.contact_phone:
            try:
                privacy._add_phone(scope, lead.contact_phone)
            except InvalidInput:
                scope.phones.add(lead.contact_phone)
        if lead.contact_email:
            scope.emails.add(lead.contact_email)
        privacy._add_conversation(scope, lead.conversation_id)
        privacy.complete(s, scope)
        done.update(scope.ticket_ids)
        tickets = privacy._tickets(s, scope)
        became_customer = s.scalar(select(Contact.id).where(
            Contact.value.in_(sorted(scope.phones | scope.emails))).limit(1)) is not None
        if (became_customer or any(x.customer_id is not None for x in tickets)
                or any(o.customer_id is not None for o in privacy._outcomes(s, scope))):
            continue
        if any(x.status in ACTIVE for x in tickets) \
                or any(f in exempt.conversations for f in scope.conversations) or scope.wa_ids & exempt.wa_ids:
            out["exempt_leads"] += 1
            continue
        if any(x.updated_at >= cut for x in tickets) or (has_events and _wrote_since(s, scope.conversations, cut)):
            continue  # not idle for the whole period
        held = privacy.counts(s, scope)
        for step in privacy.ERASE_STEPS:
            step(s, scope, pseudo)
        out["leads"] += 1
        out["lead_tickets"] += len(tickets)
        for store in ("events", "whatsapp_inbox", "whatsapp_outbox", "whatsapp_leases", "whatsapp_aliases",
                      "knowledge_queries", "conversation_outcomes", "ticket_events"):
            out[store] += int(held.get(store) or 0)


def _wrote_since(s: Session, conversations: Iterable[str], cut: datetime) -> bool:
    since = cut.replace(tzinfo=timezone.utc).timestamp()
    for chunk in _chunks(conversations):
        stmt = text(f"SELECT 1 FROM {tables.EVENTS} WHERE sender_id IN :values AND timestamp >= :since "
                    "LIMIT 1").bindparams(bindparam("values", expanding=True))
        if s.execute(stmt, {"values": chunk, "since": since}).first() is not None:
            return True
    return False


def _purge_transcripts(s: Session, cut_epoch: float, exempt: _Exempt, out: dict[str, int]) -> None:
    if not privacy._has(s, tables.EVENTS):
        return
    old = [sender for (sender,) in s.execute(text(
        f"SELECT sender_id FROM {tables.EVENTS} GROUP BY sender_id HAVING MAX(timestamp) < :cut"), {"cut": cut_epoch})]
    kept = [x for x in old if x in exempt.conversations]
    gone = [x for x in old if x not in exempt.conversations]
    out["exempt_conversations"] += len(kept)
    out["conversations"] += len(gone)
    out["events"] += _exec_in(s, f"DELETE FROM {tables.EVENTS} WHERE sender_id IN :values", gone)


def _purge_whatsapp(s: Session, cut_epoch: float, exempt: _Exempt, pseudo: Any, out: dict[str, int]) -> None:
    like = PSEUDO_PREFIX + "%"
    if privacy._has(s, privacy.WA_INBOX):
        rows = s.execute(text(f"SELECT id, sender FROM {privacy.WA_INBOX} WHERE state <> 'pending' "
                              "AND received_at < :cut AND sender NOT LIKE :like"), {"cut": cut_epoch, "like": like})
        params = []
        for row_id, sender in rows:
            if sender in exempt.wa_ids:
                out["exempt_whatsapp_rows"] += 1
            else:
                params.append({"i": row_id, "p": pseudo(sender)})
        if params:  # one executemany
            s.execute(text(f"UPDATE {privacy.WA_INBOX} SET sender = :p, text = NULL, button_id = NULL, "
                           "data = '{}', reason = NULL WHERE id = :i"), params)
        out["whatsapp_inbox"] += len(params)
    if privacy._has(s, tables.WHATSAPP_OUTBOX):
        rows = s.execute(text(f"SELECT id, recipient FROM {tables.WHATSAPP_OUTBOX} WHERE send_state IN "
                              "('accepted', 'rejected') AND created_at < :cut AND recipient NOT LIKE :like"),
                         {"cut": cut_epoch, "like": like})
        params = []
        for row_id, recipient in rows:
            if recipient in exempt.wa_ids:
                out["exempt_whatsapp_rows"] += 1
            else:
                params.append({"i": row_id, "p": pseudo(recipient)})
        if params:
            s.execute(text(f"UPDATE {tables.WHATSAPP_OUTBOX} SET recipient = :p, body = '{{}}', options = NULL "
                           "WHERE id = :i"), params)
        out["whatsapp_outbox"] += len(params)
    if privacy._has(s, privacy.WA_LEASES):  # transient: an expired lease that old is garbage
        out["whatsapp_leases"] += int(s.execute(text(f"DELETE FROM {privacy.WA_LEASES} WHERE expires_at < :cut"),
                                                {"cut": cut_epoch}).rowcount or 0)
    if privacy._has(s, privacy.WA_ALIASES):
        has_events = privacy._has(s, tables.EVENTS)
        for wa_id, conv in list(s.execute(text(f"SELECT wa_id, conversation FROM {privacy.WA_ALIASES} "
                                               "WHERE changed_at < :cut"), {"cut": cut_epoch})):
            if wa_id in exempt.wa_ids or conv in exempt.wa_ids:
                continue
            if has_events and privacy._count_in(s, tables.EVENTS, "sender_id",
                                                channels.legacy_forms(f"whatsapp:{conv}")):
                continue  # the conversation still lives (its transcript is within retention)
            out["whatsapp_aliases"] += int(s.execute(text(f"DELETE FROM {privacy.WA_ALIASES} WHERE wa_id = :w"),
                                                     {"w": wa_id}).rowcount or 0)


def _purge_questions(s: Session, cut: datetime, exempt: _Exempt, pseudo: Any, out: dict[str, int]) -> None:
    q = KnowledgeQuery.__table__
    params = []
    for row_id, conv in s.execute(select(q.c.id, q.c.conversation_id).where(q.c.at < cut, q.c.question != "")):
        if exempt.has_conversation(conv):
            out["exempt_questions"] += 1
            continue
        params.append({"i": row_id, "c": pseudo(conv) if conv and not conv.startswith(PSEUDO_PREFIX) else conv})
    if params:  # one executemany
        s.execute(text(f"UPDATE {q.name} SET question = '', conversation_id = :c WHERE id = :i"), params)
    out["knowledge_queries"] += len(params)


def _purge_console(s: Session, cut: datetime, out: dict[str, int]) -> None:
    for name, model in (("machine_accesses", MachineAccess), ("customer_corrections", CustomerCorrection)):
        out[name] += int(s.execute(delete(model).where(model.at < cut)).rowcount or 0)


# ---- the purge -----------------------------------------------------------------------------------

COUNT_KEYS = ("conversations", "events", "whatsapp_inbox", "whatsapp_outbox", "whatsapp_leases", "whatsapp_aliases",
              "knowledge_queries", "leads", "lead_tickets", "ticket_events", "conversation_outcomes",
              "machine_accesses", "customer_corrections", "exempt_conversations", "exempt_whatsapp_rows",
              "exempt_questions", "exempt_leads")


def purge(s: Session, *, settings: RetentionSettings | None = None, now: datetime | None = None,
          actor: str | None = None, dry_run: bool = False) -> dict[str, int]:
    """Apply the retention periods in the session's transaction; returns the rows per store.

    ``dry_run``: the same purge, then the session is rolled back, so the counts are exactly what a
    real run would change and nothing changes (not even the audit table).
    """
    settings = settings or get_settings()
    now = now or utcnow()
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    run = RetentionRun(at=now, actor=privacy._actor(actor), periods=asdict(settings), counts={})
    s.add(run)
    s.flush()  # first write: on SQLite a second purge waits here until this one commits
    out = dict.fromkeys(COUNT_KEYS, 0)
    pseudo = privacy._Pseudonyms()
    exempt = _exempt(s)

    def cut(days: int) -> datetime:
        return now - timedelta(days=days)

    def epoch(days: int) -> float:
        return cut(days).replace(tzinfo=timezone.utc).timestamp()

    _purge_leads(s, cut(settings.leads_days), exempt, pseudo, out)
    _purge_transcripts(s, epoch(settings.transcripts_days), exempt, out)
    _purge_whatsapp(s, epoch(settings.whatsapp_days), exempt, pseudo, out)
    _purge_questions(s, cut(settings.questions_days), exempt, pseudo, out)
    _purge_console(s, cut(settings.console_days), out)
    run.counts = dict(out)
    s.flush()
    if dry_run:
        s.rollback()
    return out


def run(session: Session) -> dict[str, int]:
    """The worker's daily job (helpdesk/worker.py JOB_TABLE, ``purge_interval_s``)."""
    return purge(session, actor="worker")


COUNT_LABELS_PT = {
    "conversations": "conversas com mensagens apagadas (tracker do Rasa)",
    "events": "mensagens apagadas (tracker do Rasa)",
    "whatsapp_inbox": "mensagens recebidas pelo WhatsApp (conteúdo removido)",
    "whatsapp_outbox": "mensagens enviadas pelo WhatsApp (conteúdo removido)",
    "whatsapp_leases": "travas antigas do WhatsApp (apagadas)",
    "whatsapp_aliases": "trocas de número antigas do WhatsApp (apagadas)",
    "knowledge_queries": "perguntas ao assistente (texto removido)",
    "leads": "leads que não viraram clientes (apagados)",
    "lead_tickets": "chamados desses leads (mantidos, anonimizados)",
    "ticket_events": "eventos desses chamados (texto removido)",
    "conversation_outcomes": "resultados de conversas desses leads (sem identificador)",
    "machine_accesses": "registros de acesso a códigos AnyDesk (apagados)",
    "customer_corrections": "registros de correção de cadastro (apagados)",
    "exempt_conversations": "conversas preservadas (chamado aberto ou atendimento humano em curso)",
    "exempt_whatsapp_rows": "mensagens do WhatsApp preservadas (chamado aberto ou atendimento humano)",
    "exempt_questions": "perguntas preservadas (chamado aberto ou atendimento humano)",
    "exempt_leads": "leads preservados (chamado aberto, atendimento humano ou contato recente)",
}


def describe(counts: dict[str, int]) -> list[str]:
    return [f"  {COUNT_LABELS_PT.get(k, k)}: {v}" for k, v in counts.items()]
