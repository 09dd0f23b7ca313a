"""Problemas do WhatsApp: what the connector received and set aside (app env, read-only).

The WhatsApp connector (bot env) stores every message, call event and status it receives in
``whatsapp_inbox``; an item it cannot hand to the assistant keeps ``state`` "ignored" and the reason
(a system event for an unknown user, a number change without a usable number, a Z-API sender that
is neither a phone nor a LID, an unsupported type...). This module lists those rows for the
console, newest first, in a period and by bounded pages. The table is read with SQLAlchemy Core over
the columns pinned in atende_contract.tables (the app env imports neither Rasa nor the connector);
it may be missing (no WhatsApp yet): then there is nothing to list.

Every value of a row is untrusted (it came from Meta, Z-API or the customer): the reason is shown
as a pt-BR sentence chosen from the connector's known reasons, its raw text only as a bounded
one-line detail; the sender is masked (a technician needs to know that a problem happened and to
whom roughly, not the full address: docs/whatsapp.md, "Problemas do WhatsApp"); the customer's text
is cut to one bounded line. The console shows them in a table, never as Markdown.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from atende_contract import tables

from ..errors import InvalidInput
from ..retention import PSEUDO_PREFIX
from .metrics import Period

PAGE_SIZES = (25, 50, 100)
MAX_PAGE_SIZE = 100
MAX_PAGE = 10_000
TEXT_MAX = 200
DETAIL_MAX = 300
DATA_MAX = 20_000  # a larger ``data`` is not parsed (the type is then unknown)
MASK = "•"

_inbox = sa.Table(tables.WHATSAPP_INBOX, sa.MetaData(),
                  *[sa.Column(c) for c in tables.WHATSAPP_INBOX_PROBLEM_COLUMNS])
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
_TYPE = re.compile(r"[a-z_]{1,32}")

KIND_LABELS = {"message": "mensagem", "call": "chamada", "status": "status"}
# The connector's reasons (connectors/whatsapp/parse/*.py), first match wins; {0} is a group.
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), pt) for p, pt in (
    (r"^text message without a body$", "Mensagem de texto sem conteúdo."),
    (r"^text message empty after neutralising", "Mensagem de texto vazia depois de remover os comandos com '/'."),
    (r"^(image|audio|video|document|sticker) message without a media id$", "Mídia recebida sem identificador."),
    (r"^interactive message without content", "Mensagem interativa sem conteúdo (a Meta informou erros)."),
    (r"^(button_reply|list_reply) without id/title$", "Resposta de botão ou lista sem identificador ou título."),
    (r"^interactive type .* is not handled$", "Tipo de mensagem interativa que o assistente não trata."),
    (r"^template button reply without text$", "Resposta a um botão de modelo sem texto."),
    (r"^number change without a usable new number$", "Troca de número sem um número novo válido."),
    (r"^BSUID change without a usable", "Troca de identificador do usuário (BSUID) sem identificadores válidos."),
    (r"^BSUID change on a phone conversation",
     "Troca de identificador do usuário (BSUID) numa conversa por telefone: a próxima mensagem vincula o novo."),
    (r"^system event .* recorded", "Evento do sistema do WhatsApp registrado; nada para o assistente."),
    (r"^contact card from a sender whose phone is known",
     "Cartão de contato de um remetente cujo telefone já é conhecido; nada para o assistente."),
    (r"^reaction recorded", "Reação a uma mensagem registrada; nada para o assistente."),
    (r"^unsupported message type reported by Meta", "Tipo de mensagem não suportado (informado pela Meta)."),
    (r"^message type .* is not handled by the assistant$", "Tipo de mensagem que o assistente não trata."),
    (r"^call status ", "Status de chamada; nada para acompanhar."),
    (r"^unknown status ", "Status de mensagem desconhecido."),
    (r"^sent by this number \(fromMe\)$", "Mensagem enviada por este próprio número (Z-API)."),
    (r"^group, newsletter or broadcast message$", "Mensagem de grupo, canal ou lista de transmissão (Z-API)."),
    (r"^sender .* is neither a phone nor a LID$", "Remetente que não é um telefone nem um LID válido (Z-API)."),
    (r"^empty text$", "Mensagem de texto vazia (Z-API)."),
    (r"^message type not handled$", "Tipo de mensagem que o assistente não trata (Z-API)."),
    (r"^\w+ message$", "Tipo de mensagem que o assistente não trata (Z-API)."),
    (r"^Z-API status .* is not tracked$", "Status do Z-API que não é acompanhado."),
    (r"^business-initiated call", "Chamada iniciada pela empresa, não pelo cliente."),
    (r"^call event .* is not handled$", "Evento de chamada que o assistente não trata."),
))
UNKNOWN_REASON = "Outro motivo (veja o detalhe)."
NO_REASON = "Sem motivo registrado."


def one_line(value: Any, limit: int) -> str:
    """Untrusted text as one line of at most ``limit`` characters (control and invisible
    characters out, whitespace collapsed, an ellipsis where it was cut)."""
    if value is None:
        return ""
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def reason_pt(reason: Any) -> str:
    """The pt-BR sentence for one of the connector's reasons."""
    if not isinstance(reason, str) or not reason.strip():
        return NO_REASON
    raw = one_line(reason, 2000)
    for pattern, pt in _REASONS:
        if pattern.search(raw):
            return pt
    return UNKNOWN_REASON


def mask_sender(sender: Any) -> str:
    """A WhatsApp address shown masked: ``5511987650001`` -> ``5511•••••0001``; a BSUID keeps its
    country prefix and last 4; a pseudonym of erasure or retention shows as ``(apagado)``."""
    value = one_line(sender, 128).replace(" ", "")
    if not value:
        return "—"
    if value.startswith(PSEUDO_PREFIX):
        return "(apagado)"
    if len(value) <= 6:
        return MASK * len(value)
    head, tail = (4, 4) if len(value) >= 10 else (2, 2)
    return value[:head] + MASK * (len(value) - head - tail) + value[-tail:]


def _message_type(data: Any) -> str | None:
    if not isinstance(data, str) or len(data) > DATA_MAX:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    wa = meta.get("whatsapp") if isinstance(meta, dict) else None
    mtype = wa.get("type") if isinstance(wa, dict) else None
    return mtype if isinstance(mtype, str) and _TYPE.fullmatch(mtype) else None


@dataclass(frozen=True)
class Problem:
    id: int
    received_at: datetime  # UTC, naive (as the console's other times)
    kind: str  # pt-BR: "mensagem (system)", "chamada", "status"
    reason: str  # pt-BR
    detail: str  # the connector's reason, one bounded line
    sender: str  # masked
    text: str  # the customer's text, one bounded line


@dataclass(frozen=True)
class ProblemPage:
    rows: list[Problem]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=timezone.utc).timestamp()


def _bounded_int(value: Any, name: str, low: int, high: int, message_pt: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} {value!r}", message_pt)
    return value


def problems(s: Session, period: Period, *, page: int = 1, page_size: int = PAGE_SIZES[0]) -> ProblemPage:
    """The ignored inbox rows received in ``period``, newest first, one page (``page`` from 1,
    ``page_size`` at most MAX_PAGE_SIZE). InvalidInput (pt-BR) for a page or size out of bounds."""
    page_size = _bounded_int(page_size, "page size", 1, MAX_PAGE_SIZE, "Tamanho de página inválido.")
    page = _bounded_int(page, "page", 1, MAX_PAGE, "Página inválida.")
    if tables.WHATSAPP_INBOX not in set(inspect(s.get_bind()).get_table_names()):
        return ProblemPage([], 0, page, page_size)
    c = _inbox.c
    where = (c.state == "ignored", c.received_at >= _epoch(period.start), c.received_at < _epoch(period.end))
    total = s.execute(sa.select(sa.func.count()).select_from(_inbox).where(*where)).scalar_one()
    rows = s.execute(sa.select(c.id, c.sender, c.kind, c.text, c.data, c.reason, c.received_at).where(*where)
                     .order_by(c.received_at.desc(), c.id.desc())
                     .limit(page_size).offset((page - 1) * page_size)).all()
    out = []
    for r in rows:
        kind = KIND_LABELS.get(r.kind, "outro") if isinstance(r.kind, str) else "outro"
        mtype = _message_type(r.data) if r.kind == "message" else None
        out.append(Problem(
            id=int(r.id), received_at=datetime.fromtimestamp(float(r.received_at), timezone.utc).replace(tzinfo=None),
            kind=f"{kind} ({mtype})" if mtype else kind, reason=reason_pt(r.reason),
            detail=one_line(r.reason, DETAIL_MAX), sender=mask_sender(r.sender), text=one_line(r.text, TEXT_MAX)))
    return ProblemPage(out, int(total), page, page_size)
