"""Answers from the knowledge base, with their sources, and the "Isso resolveu?" loop."""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from helpdesk.db import session_scope
from helpdesk.services import outcomes

from .common import entity_values, first_entity, latest_channel, latest_intent, record_outcome, user_text
from .followups import looks_like_question, resolve_question
from .guard import ActionFallback, bad_input_response
from .turn import Turn, begin_turn

logger = logging.getLogger(__name__)

# Action-server settings, read here and not through knowledge.config: importing `knowledge` pulls
# faiss, bm25s and torch, which must not happen on the server's start path.
DEFAULT_ANSWER_TIMEOUT_S = 20.0
# threads mostly wait on the LLM's HTTP answer: room for a burst of visitors asking at once
# (bench/llm_concurrency_bench.py asks 20 at once)
DEFAULT_ANSWER_WORKERS = 32


def answer_timeout_s() -> float:
    """KNOWLEDGE_ANSWER_TIMEOUT_S: the most one question may take, LLM included (default 20 s)."""
    try:
        value = float(os.environ.get("KNOWLEDGE_ANSWER_TIMEOUT_S") or DEFAULT_ANSWER_TIMEOUT_S)
    except ValueError:
        value = DEFAULT_ANSWER_TIMEOUT_S
    return value if value > 0 else DEFAULT_ANSWER_TIMEOUT_S


def answer_workers() -> int:
    """KNOWLEDGE_ANSWER_WORKERS: questions answered at once by one action server (default 16)."""
    try:
        return max(1, int(os.environ.get("KNOWLEDGE_ANSWER_WORKERS") or DEFAULT_ANSWER_WORKERS))
    except ValueError:
        return DEFAULT_ANSWER_WORKERS


def preload_enabled(default: bool = True) -> bool:
    """KNOWLEDGE_PRELOAD: load the model and the index in the background at start (0 = lazily)."""
    value = (os.environ.get("KNOWLEDGE_PRELOAD") or "").strip().lower()
    if not value:
        return default
    return value not in ("0", "false", "no", "off")


_answer_fn: Callable[..., Any] | None = None
_answer_lock = threading.Lock()
# extra seconds the action waits past KNOWLEDGE_ANSWER_TIMEOUT_S for the worker thread (retrieval,
# extractive fallback) before it gives up and takes the not-found path
TIMEOUT_GRACE_S = 2.0


def answer_function() -> Callable[..., Any]:
    """`knowledge.answer`, imported once (it loads its index and model once per process)."""
    global _answer_fn
    if _answer_fn is None:
        with _answer_lock:  # the preload thread and a worker may both get here first
            if _answer_fn is None:
                # Imported on use, off the event loop: `knowledge` pulls torch and
                # sentence-transformers (seconds of import), which the other actions never need.
                from knowledge import answer as knowledge_answer

                _answer_fn = knowledge_answer
    return _answer_fn


# ------------------------------------------------------------------ off the event loop
# knowledge.answer is synchronous (embedding, FAISS, BM25 and a blocking LLM call): it runs in this
# bounded pool, so the event loop keeps serving every other conversation's actions meanwhile.
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def answer_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=answer_workers(), thread_name_prefix="knowledge-answer")
        return _pool


async def answer_off_loop(question: str, products: list[str] | None, conversation_id: str,
                          previous: str | None = None, asked: list[str] | None = None,
                          earlier: list[str] | None = None) -> tuple[str, Any]:
    """The message resolved against the previous question, then knowledge.answer, both in the pool
    and bounded by KNOWLEDGE_ANSWER_TIMEOUT_S. Returns (the question asked, its answer).

    Resolution (actions/followups.py) may make a short LLM call (condensation) and reads the
    catalog from the database: neither runs on the event loop. The deadline is passed down, so a
    slow LLM is cut off in time and the answer is extractive; should the worker still not return
    within the grace period (a stuck read, a saturated pool), asyncio.TimeoutError reaches the
    caller, which takes the not-found path. The worker is left to finish on its own: a thread
    cannot be cancelled, and its result is simply dropped. `asked`, when given, receives the
    resolved question as soon as it is known (so a timeout still knows what was asked)."""
    timeout = answer_timeout_s()
    loop = asyncio.get_running_loop()

    def call() -> tuple[str, Any]:
        started = time.monotonic()
        # the condensation gets at most a third of the deadline: the answer keeps the rest
        query = resolve_question(question, previous, conversation_id=conversation_id, timeout_s=timeout / 3,
                                 earlier=earlier)
        if asked is not None:
            asked.append(query)
        left = max(timeout - (time.monotonic() - started), 0.1)
        return query, answer_function()(query, products, conversation_id=conversation_id, timeout_s=left)

    return await asyncio.wait_for(loop.run_in_executor(answer_pool(), call), timeout + TIMEOUT_GRACE_S)


# ------------------------------------------------------------------ warm start
preload_thread: threading.Thread | None = None


def start_preload() -> threading.Thread | None:
    """Load knowledge (torch), the live index and its model in a background thread, once.

    Started when the action server imports this module, so it never delays the server's start or
    another action. KNOWLEDGE_PRELOAD=0 disables it; under pytest it is off unless
    KNOWLEDGE_PRELOAD=1 (the test process imports this module without serving questions)."""
    global preload_thread
    import sys

    if not preload_enabled(default="pytest" not in sys.modules):
        return None
    with _answer_lock:
        if preload_thread is not None:
            return preload_thread

        def run() -> None:
            try:
                answer_function()
                from knowledge.runtime import preload

                preload()
            except Exception:  # noqa: BLE001 - the first question then loads lazily
                logger.exception("knowledge preload failed")

        preload_thread = threading.Thread(target=run, name="knowledge-preload", daemon=True)
        preload_thread.start()
        return preload_thread


def render_sources_text(sources: list[dict[str, str]]) -> str:
    """"Fontes:" then one numbered line per source, "[1] Título — URL", in the order of the
    answer's citations ([1], [2], ...), so a WhatsApp reader can match them."""
    lines = ["Fontes:"]
    for n, src in enumerate(sources, start=1):
        title = str(src.get("title") or src.get("url") or "").strip()
        url = str(src.get("url") or "").strip()
        lines.append(f"[{n}] {title} — {url}" if url and url != title else f"[{n}] {title}")
    return "\n".join(lines)


def ordered_products(tracker: Tracker, turn: Turn) -> list[str] | None:
    """The (verified) customer's products first, then a product named in the message."""
    products = turn.products
    for named in entity_values(tracker, "product"):
        if named not in products:
            products.append(named)
    return products or None


QUESTION_INTENTS = ("ask_question", "report_problem", "nlu_fallback", "inform_module")


def earlier_questions(tracker: Tracker, limit: int = 3) -> list[str]:
    """The customer's last `limit` questions before the latest message, oldest first (context for
    the condensation call): texts of question-like intents, no button payloads, none too long."""
    out: list[str] = []
    users = [e for e in tracker.events if e.get("event") == "user"]
    for event in reversed(users[:-1]):
        text = str(event.get("text") or "").strip()
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if text and intent in QUESTION_INTENTS and not text.startswith("/") and not bad_input_response(text):
            out.append(text)
            if len(out) >= limit:
                break
    return out[::-1]


class ActionAnswerQuestion(Action):
    """Answer `ask_question` / `report_problem` from the docs.

    Grounded answer → text + sources + "Isso resolveu?". Not grounded → offer a ticket; for a
    reported problem the ticket form starts at once, already filled from the message.
    """

    def name(self) -> Text:
        return "action_answer_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        turn = begin_turn(dispatcher, tracker)
        if turn is None:
            return []
        # a follow-up ("e no TEF?") is answered as the previous question, resolved against it (in
        # the worker thread: it may ask the LLM to condense it, and it reads the catalog)
        events = turn.events
        products = ordered_products(tracker, turn)
        asked: list[str] = []
        try:
            # off the event loop, within KNOWLEDGE_ANSWER_TIMEOUT_S; the conversation id bounds this
            # conversation's LLM calls per hour (extractive past it)
            question, result = await answer_off_loop(turn.text, products, tracker.sender_id,
                                                     previous=tracker.get_slot("last_question"), asked=asked,
                                                     earlier=earlier_questions(tracker))
            grounded = bool(result.grounded)
            text = str(result.answer or "").strip()
            sources = [{"title": str(s.title), "url": str(s.url)} for s in result.sources]
            usage = {"mode": getattr(result, "mode", None), "llm_tokens": getattr(result, "llm_tokens", 0),
                     "cached": bool(getattr(result, "cached", False))}
        except asyncio.TimeoutError:
            logger.warning("knowledge.answer took longer than %.0f s; not-found path", answer_timeout_s())
            question, grounded, text, sources, usage = (asked or [turn.text])[0], False, "", [], {}
        except Exception:  # noqa: BLE001 - the knowledge base being down must not break the chat
            logger.exception("knowledge.answer failed")
            question, grounded, text, sources, usage = (asked or [turn.text])[0], False, "", [], {}
        if question != turn.text:
            logger.info("follow-up %r resolved to %r", turn.text, question)
        intent = latest_intent(tracker)
        module = first_entity(tracker, "module")
        prefill: list[EventType] = [
            SlotSet("last_question", question),
            SlotSet("ticket_description", question),
            SlotSet("ticket_module", module),
            SlotSet("ticket_type", "erro" if intent == "report_problem" else "duvida"),
        ]
        self._log(tracker, question, answered=bool(text) and grounded, grounded=grounded,
                  product=(products or [None])[0], customer=turn.customer_id, usage=usage)
        if grounded and text:
            body = text + ("\n\n" + render_sources_text(sources) if sources else "")
            if latest_channel(tracker) == "whatsapp" or not sources:
                dispatcher.utter_message(text=body)
            else:
                dispatcher.utter_message(text=body, json_message={"sources": sources})
            dispatcher.utter_message(response="utter_did_it_help")
            return events + prefill + [SlotSet("awaiting", "resolved_check")]
        if intent == "report_problem":
            return events + prefill + [SlotSet("awaiting", None), FollowupAction("ticket_form")]
        dispatcher.utter_message(response="utter_no_answer")
        return events + prefill + [SlotSet("awaiting", "offer_ticket")]

    @staticmethod
    def _log(tracker: Tracker, question: str, *, answered: bool, grounded: bool, product: str | None,
             customer: int | None, usage: dict | None = None) -> None:
        try:
            with session_scope() as s:
                outcomes.log_question(s, tracker.sender_id, question, answered=answered,
                                      grounded=grounded, product=product, **(usage or {}))
        except Exception:  # noqa: BLE001
            logger.exception("could not log the question")
        record_outcome(tracker, customer, answered_from_docs=answered)


start_preload()


class ActionMarkResolved(Action):
    def name(self) -> Text:
        return "action_mark_resolved"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        record_outcome(tracker, resolved_by_bot=True)
        dispatcher.utter_message(response="utter_glad")
        dispatcher.utter_message(response="utter_anything_else")
        return [SlotSet("awaiting", "anything_else")]


class ActionOfferSupport(Action):
    def name(self) -> Text:
        return "action_offer_support"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        record_outcome(tracker, resolved_by_bot=False)
        dispatcher.utter_message(response="utter_offer_support")
        return [SlotSet("awaiting", "offer_ticket")]


class ActionAskAnythingElse(Action):
    def name(self) -> Text:
        return "action_ask_anything_else"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_anything_else")
        return [SlotSet("awaiting", "anything_else")]


class ActionAskMore(Action):
    def name(self) -> Text:
        return "action_ask_more"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_ask_more")
        return [SlotSet("awaiting", None)]


class ActionQuestionOrFallback(Action):
    """NLU fallback: a message that looks like a question ("e pra restaurar depois?", typed where the
    bot expected Sim/Não) is tried against the docs first; anything else gets the usual fallback."""

    def name(self) -> Text:
        return "action_question_or_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:
        text = user_text(tracker)
        if not bad_input_response(text) and looks_like_question(text):
            return await ActionAnswerQuestion().run(dispatcher, tracker, domain)
        return await ActionFallback().run(dispatcher, tracker, domain)
