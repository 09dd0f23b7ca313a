"""Conversation outcomes and knowledge questions, for the bot reports.

A conversation is a run of turns on one conversation id. A new outcome row starts when the last
one was rated (the conversation ended) or has been idle for longer than CONVERSATION_IDLE.
Flags only ever turn on: a conversation that was handed off stays handed off, and is never
counted as resolved by the bot.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from atende_contract.text import MAX_MESSAGE_CHARS

from ..errors import InvalidInput
from ..models import ConversationOutcome, KnowledgeQuery, utcnow

CONVERSATION_IDLE = timedelta(hours=24)


def current(s: Session, conversation_id: str, *, create: bool = True) -> ConversationOutcome | None:
    row = s.scalar(select(ConversationOutcome).where(ConversationOutcome.conversation_id == conversation_id)
                   .order_by(ConversationOutcome.id.desc()).limit(1))
    now = utcnow()
    if row is not None and row.rating is None and now - row.updated_at <= CONVERSATION_IDLE:
        return row
    if not create:
        return None
    row = ConversationOutcome(conversation_id=conversation_id, started_at=now, updated_at=now)
    s.add(row)
    return row


def record(s: Session, conversation_id: str, *, channel: str | None = None, customer_id: int | None = None,
           answered_from_docs: bool | None = None, resolved_by_bot: bool | None = None,
           handed_off: bool | None = None, product_offered: bool | None = None,
           rating: int | None = None) -> ConversationOutcome:
    if not conversation_id:
        raise InvalidInput("conversation id required")
    if rating is not None and not (1 <= int(rating) <= 5):
        raise InvalidInput(f"rating {rating} out of range", "A nota deve ser de 1 a 5.")
    row = current(s, conversation_id)
    assert row is not None
    if channel and not row.channel:
        row.channel = channel
    if customer_id is not None:
        row.customer_id = customer_id
    if answered_from_docs:
        row.answered_from_docs = True
    if product_offered:
        row.product_offered = True
    if handed_off:
        row.handed_off = True
        row.resolved_by_bot = False
    if resolved_by_bot is not None and not row.handed_off:
        row.resolved_by_bot = bool(resolved_by_bot)
    row.updated_at = utcnow()
    if rating is not None:
        row.rating = int(rating)
    s.flush()
    return row


def log_question(s: Session, conversation_id: str | None, question: str, *, answered: bool,
                 grounded: bool, product: str | None = None, mode: str | None = None,
                 llm_tokens: int = 0, cached: bool = False) -> KnowledgeQuery:
    """One asked question. mode/llm_tokens/cached: how knowledge.answer answered it (cost report);
    an unknown mode is stored as NULL, negative or absurd token counts as 0."""
    mode = mode if mode in ("llm", "extractive") else None
    tokens = int(llm_tokens) if isinstance(llm_tokens, int) and 0 <= llm_tokens < 10_000_000 else 0
    q = KnowledgeQuery(conversation_id=conversation_id, question=(question or "").strip()[:MAX_MESSAGE_CHARS],
                       product=product, answered=answered, grounded=grounded, at=utcnow(),
                       mode=mode, llm_tokens=tokens, cached=bool(cached))
    s.add(q)
    s.flush()
    return q
