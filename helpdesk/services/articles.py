"""Solutions -> documentation (issue 16 item 6): a registered solution suggested as a documentation
candidate, the article a manager makes of it, and the approved articles as a documentation source.

A candidate copies the ticket's question (subject + description) and the solution when the
technician ticks "Sugerir como artigo da documentação". A manager edits it into an article (title,
module, body in pt-BR) and approves or discards it. Approval is refused while the text shows
personal data of the ticket's customer (CNPJ, phone, e-mail, or the customer's or contact's name)
unless the manager confirms it is not theirs. Approved articles are read by the ingester
(``published_documents``, the ``articles: database`` source kind of knowledge/sources.py), each
cited with its console URL (``article_url``). Erasure hooks for helpdesk/privacy.py at the end.

A little over 300 lines: the erasure hooks stay next to the name detectors they reuse, so what
approval warns about and what an erasure counts as quoting the person cannot drift apart.

Size: an article's life (candidate, edit, approve with the personal-data checks, discard, erase
flag) and its rendering for the ingester, kept together because they share the state rules.
"""
from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import urlsplit

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import IllegalTransition, InvalidInput, NotFound
from ..models import Customer, KnowledgeArticle, Module, Ticket, utcnow
from . import catalog, technicians

MAX_TITLE = 200
MAX_BODY = 20_000
MIN_BODY = 20  # the ingester drops documents with less text than this
REVIEW_ERASED = "titular apagado"
STATE_LABELS = {"pending": "pendente", "approved": "aprovado", "discarded": "descartado",
                "needs_review": "revisar"}
DEFAULT_CONSOLE_URL = "http://localhost:8501"
URL_PATH = "artigos"

_CNPJ = re.compile(r"(?<!\d)\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Brazilian phones: optional +55, optional (DD), 8 or 9 digits with an optional separator
_PHONE = re.compile(r"(?<![\w])(?:\+?55[\s.-]?)?(?:\(?\d{2}\)?[\s.-]?)?9?\d{4}[\s.-]?\d{4}(?![\w])")


class PersonalDataFound(InvalidInput):
    """Approval refused: the text shows personal data (``warnings``) and the manager did not confirm."""

    def __init__(self, warnings: list[str]) -> None:
        self.warnings = warnings
        super().__init__("article text contains personal data",
                         "O texto parece conter dados pessoais do cliente: " + "; ".join(warnings)
                         + ". Remova-os ou confirme que não são do cliente antes de aprovar.")


def console_url() -> str:
    """The console's public base URL (ATENDE_CONSOLE_URL, as the notifications use it)."""
    url = (os.environ.get("ATENDE_CONSOLE_URL") or DEFAULT_CONSOLE_URL).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"ATENDE_CONSOLE_URL must be an http(s) URL, got {url!r}",
                           "ATENDE_CONSOLE_URL precisa ser um endereço http(s).")
    return url


def article_url(article_id: int, base: str | None = None) -> str:
    """The read-only view the bot cites; ``base`` "" gives the relative ``/artigos?id=N``."""
    return f"{console_url() if base is None else base}/{URL_PATH}?id={int(article_id)}"


# ---- candidates ---------------------------------------------------------------------------------

def suggest(s: Session, ticket: Ticket, *, technician_id: int) -> KnowledgeArticle:
    """The ticket's solution as a documentation candidate (one pending candidate per ticket: a second
    suggestion while it is pending refreshes its text)."""
    question = "\n\n".join(p for p in ((ticket.subject or "").strip(), (ticket.description or "").strip()) if p)
    row = s.scalar(select(KnowledgeArticle).where(KnowledgeArticle.ticket_id == ticket.id,
                                                  KnowledgeArticle.state == "pending"))
    if row is None:
        row = KnowledgeArticle(ticket_id=ticket.id, state="pending", title="", body="", review_reason="",
                               personal_data_confirmed=False, suggested_at=utcnow())
        s.add(row)
    row.module = ticket.module
    row.question = question
    row.solution = ticket.solution or ""
    row.suggested_by_id = technician_id
    row.updated_at = utcnow()
    s.flush()
    return row


def get(s: Session, article_id: int) -> KnowledgeArticle:
    row = s.get(KnowledgeArticle, article_id)
    if row is None:
        raise NotFound(f"article {article_id}", "Artigo não encontrado.")
    return row


def listing(s: Session, states: Iterable[str]) -> list[KnowledgeArticle]:
    return list(s.scalars(select(KnowledgeArticle).where(KnowledgeArticle.state.in_(list(states)))
                          .order_by(KnowledgeArticle.id.desc())))


def approved(s: Session) -> list[KnowledgeArticle]:
    return list(s.scalars(select(KnowledgeArticle).where(KnowledgeArticle.state == "approved")
                          .order_by(KnowledgeArticle.id)))


# ---- personal data detectors --------------------------------------------------------------------

def _fold(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", plain).strip().lower()


def person_names(s: Session, ticket: Ticket | None) -> list[str]:
    """The names of the ticket's person: the contact's name, the customer's names and contacts."""
    if ticket is None:
        return []
    names = [ticket.contact_name or ""]
    customer = s.get(Customer, ticket.customer_id) if ticket.customer_id else None
    if customer is not None:
        names += [customer.responsible_name, customer.legal_name, customer.trade_name]
        names += [c.name for c in customer.contacts]
    return sorted({n.strip() for n in names if n and len(n.strip()) >= 3})


_COMPANY_SUFFIX = re.compile(r"\s+(?:ltda|me|epp|eireli|s a|sa|mei|cia)$")


def _name_keys(name: str) -> set[str]:
    """The name folded, and without a company suffix ("Mercado Lins Ltda" -> "mercado lins")."""
    key = re.sub(r"[^a-z0-9]+", " ", _fold(name)).strip()
    keys = {key} if key else set()
    short = _COMPANY_SUFFIX.sub("", key)
    while short != key:
        key, short = short, _COMPANY_SUFFIX.sub("", short)
    if " " in key or len(key) >= 5:
        keys.add(key)
    return keys


def _name_found(names: Iterable[str], text: str) -> list[str]:
    folded = f" {re.sub(r'[^a-z0-9]+', ' ', _fold(text))} "
    return [name for name in names if any(f" {k} " in folded for k in _name_keys(name))]


def personal_data(text: str, names: Iterable[str] = ()) -> list[str]:
    """pt-BR warnings for what looks like personal data in ``text`` (simple detectors)."""
    out = []
    if _CNPJ.search(text):
        out.append("um CNPJ")
    if _EMAIL.search(text):
        out.append("um e-mail")
    if _PHONE.search(_CNPJ.sub(" ", text)):
        out.append("um telefone")
    out += [f"o nome \"{n}\"" for n in _name_found(names, text)]
    return out


def warnings_for(s: Session, article: KnowledgeArticle, title: str, body: str) -> list[str]:
    ticket = s.get(Ticket, article.ticket_id) if article.ticket_id else None
    return personal_data(f"{title}\n{body}", person_names(s, ticket))


# ---- the manager's decisions --------------------------------------------------------------------

@dataclass(frozen=True)
class Draft:
    title: str
    module: str | None
    body: str


def _validate(s: Session, title: str, module: str | None, body: str) -> Draft:
    title = re.sub(r"\s+", " ", title or "").strip()
    body = (body or "").replace("\r\n", "\n").strip()
    if not title:
        raise InvalidInput("empty title", "Informe o título do artigo.")
    if len(title) > MAX_TITLE:
        raise InvalidInput("title too long", f"O título pode ter no máximo {MAX_TITLE} caracteres.")
    if not body:
        raise InvalidInput("empty body", "Escreva o texto do artigo (os passos da solução).")
    if len(body) < MIN_BODY:
        raise InvalidInput("body too short", f"O texto do artigo precisa ter pelo menos {MIN_BODY} caracteres.")
    if len(body) > MAX_BODY:
        raise InvalidInput("body too long", f"O texto do artigo pode ter no máximo {MAX_BODY} caracteres.")
    code = (module or "").strip() or None
    if code is not None and s.scalar(select(Module.id).where(Module.code == code)) is None:
        raise InvalidInput(f"unknown module {code!r}", "Módulo desconhecido.")
    return Draft(title, code, body)


def _decidable(article: KnowledgeArticle) -> None:
    if article.state == "discarded":
        raise IllegalTransition(f"article {article.id} discarded", "Este artigo foi descartado.")


def approve(s: Session, article_id: int, *, manager_id: int, title: str, module: str | None, body: str,
            confirm_personal_data: bool = False) -> KnowledgeArticle:
    """Validate, check for personal data, then publish; any refusal changes nothing."""
    manager = technicians.require_manager(s, manager_id)
    article = get(s, article_id)
    _decidable(article)
    draft = _validate(s, title, module, body)
    warnings = warnings_for(s, article, draft.title, draft.body)
    if warnings and not confirm_personal_data:
        raise PersonalDataFound(warnings)
    article.title, article.module, article.body = draft.title, draft.module, draft.body
    article.state = "approved"
    article.personal_data_confirmed = bool(warnings)
    article.review_reason = ""
    article.flagged_at = None
    article.decided_by_id, article.decided_at = manager.id, utcnow()
    article.updated_at = utcnow()
    s.flush()
    return article


def discard(s: Session, article_id: int, *, manager_id: int) -> KnowledgeArticle:
    manager = technicians.require_manager(s, manager_id)
    article = get(s, article_id)
    article.state = "discarded"
    article.decided_by_id, article.decided_at = manager.id, utcnow()
    article.updated_at = utcnow()
    s.flush()
    return article


# ---- the documentation source -------------------------------------------------------------------

def _product_of(s: Session, module: str | None) -> str | None:
    mod = s.scalar(select(Module).where(Module.code == module)) if module else None
    return mod.product.code if mod is not None else None


def as_markdown(article: KnowledgeArticle, product: str | None) -> str:
    front = {"title": article.title, "module": article.module, "product": product}
    head = yaml.safe_dump({k: v for k, v in front.items() if v}, allow_unicode=True, sort_keys=True)
    return f"---\n{head}---\n\n# {article.title}\n\n{article.body}\n"


def published_documents(s: Session, base_url: str | None = None) -> list[dict[str, Any]]:
    """What the ingester indexes: every approved article as Markdown with its console URL."""
    base = base_url or console_url()
    out = []
    for a in approved(s):
        product = _product_of(s, a.module)
        out.append({"key": f"artigo:{a.id}", "url": article_url(a.id, base), "product": product,
                    "module": a.module, "title": a.title,
                    "data": as_markdown(a, product).encode("utf-8")})
    return out


def module_names(s: Session) -> dict[str, str]:
    return {m.code: m.name for m in catalog.modules(s)}


# ---- erasure (helpdesk/privacy.py) --------------------------------------------------------------

def _of_tickets(s: Session, ticket_ids: list[int]) -> list[KnowledgeArticle]:
    if not ticket_ids:
        return []
    return list(s.scalars(select(KnowledgeArticle).where(KnowledgeArticle.ticket_id.in_(ticket_ids))
                          .order_by(KnowledgeArticle.id)))


def count_rows(s: Session, scope: Any) -> dict[str, int]:
    return {"knowledge_articles": len(_of_tickets(s, scope.ticket_ids))}


def export_rows(s: Session, scope: Any) -> dict[str, list[dict[str, Any]]]:
    return {"knowledge_articles": [
        {"id": a.id, "ticket_id": a.ticket_id, "state": a.state, "question": a.question, "solution": a.solution,
         "title": a.title, "body": a.body} for a in _of_tickets(s, scope.ticket_ids)]}


def _identifiers(s: Session, scope: Any) -> tuple[list[str], list[str]]:
    """(names, literal identifiers) of the person, read before the erasure removes them."""
    names: set[str] = set()
    literal: set[str] = set(scope.emails)
    for t in s.scalars(select(Ticket).where(Ticket.id.in_(scope.ticket_ids))) if scope.ticket_ids else []:
        names.update(person_names(s, t))
        literal.update(x for x in (t.contact_email, t.contact_phone) if x)
    c = scope.customer
    if c is not None:
        names.update(n for n in (c.responsible_name, c.legal_name, c.trade_name) if n and len(n) >= 3)
        names.update(k.name for k in c.contacts if k.name and len(k.name) >= 3)
        literal.add(c.cnpj)
        literal.update(k.value for k in c.contacts if k.value)
    literal.update(p for p in scope.phones if len(p) >= 8)
    return sorted(names), sorted(x for x in literal if x)


def _quotes(text: str, names: list[str], literal: list[str]) -> bool:
    digits = re.sub(r"\D", "", text)
    return bool(_name_found(names, text)) or any(
        x.lower() in text.lower() or (x.isdigit() and len(x) >= 8 and x in digits) for x in literal)


def erase_rows(s: Session, scope: Any, pseudo: Any = None) -> None:
    """ERASE_STEPS step, before the tickets and the customer are anonymised: every candidate or
    article made from the person's tickets loses the copied ticket text and is flagged for review
    ("titular apagado"). An approved article whose title or body quotes the person (a name, the
    CNPJ, a phone or an e-mail of theirs) leaves the bot (``needs_review``) and its text is removed;
    one that does not keep being served, flagged. A pending candidate becomes ``needs_review``."""
    rows = _of_tickets(s, scope.ticket_ids)
    if not rows:
        return
    names, literal = _identifiers(s, scope)
    now = utcnow()
    for a in rows:
        quoted = _quotes(f"{a.title}\n{a.body}", names, literal)
        a.question, a.solution = "", ""
        if a.state == "discarded":
            a.title, a.body = "", ""
            continue
        a.review_reason, a.flagged_at, a.updated_at = REVIEW_ERASED, now, now
        if quoted or a.state == "pending":
            a.state = "needs_review"
        if quoted:
            a.title, a.body = "", ""
    s.flush()
