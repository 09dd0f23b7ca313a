"""Answers from the knowledge base, with their sources, and the "Isso resolveu?" loop."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from helpdesk.db import session_scope
from helpdesk.services import catalog, outcomes

from .common import entity_values, first_entity, latest_channel, latest_intent, record_outcome
from .turn import Turn, begin_turn

logger = logging.getLogger(__name__)

# Action-server settings, read here and not through knowledge.config: importing `knowledge` pulls
# faiss, bm25s and torch, which must not happen on the server's start path.
DEFAULT_ANSWER_TIMEOUT_S = 20.0
DEFAULT_ANSWER_WORKERS = 16


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


async def answer_off_loop(question: str, products: list[str] | None, conversation_id: str) -> Any:
    """knowledge.answer in the pool, bounded by KNOWLEDGE_ANSWER_TIMEOUT_S.

    The deadline is passed down, so a slow LLM is cut off in time and the answer is extractive;
    should the worker still not return within the grace period (a stuck read, a saturated pool),
    asyncio.TimeoutError reaches the caller, which takes the not-found path. The worker is left to
    finish on its own: a thread cannot be cancelled, and its result is simply dropped."""
    timeout = answer_timeout_s()
    loop = asyncio.get_running_loop()

    def call() -> Any:
        return answer_function()(question, products, conversation_id=conversation_id, timeout_s=timeout)

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


# ------------------------------------------------------------------ follow-up questions
# A short or elliptical question ("e no TEF?") continues the previous one: the retrieval query is
# the previous question, with its module terms replaced by the module the new text names, plus the
# new text when it adds more than connectors and the module. Deterministic: no LLM call.
FOLLOWUP_PREFIXES = ("e ", "mas e ", "e no ", "e na ", "e pra ", "e para ", "e o ", "e a ", "e se ")
SHORT_WORDS = 4
_FILLER = frozenset("e mas no na nos nas o a os as do da dos das de pra pro para em um uma ao com se "
                    "quanto ja tambem entao".split())
# common conjugated forms a short question may carry (infinitives, gerunds and participles are
# recognised by their endings)
_VERBS = frozenset("eh esta estao tem tenho temos faz faco fazer pode posso podemos consigo deu "
                   "aparece apareceu sai saiu abre abro fecha fecho instalo instala configuro configura "
                   "emito emite cancelo cancela atualizo atualiza funciona funcionou travou trava ficou "
                   "fica preciso precisa quero quer vai vou sei sabe existe ha".split())
_VERB_ENDINGS = ("ar", "er", "ir", "ando", "endo", "indo", "ado", "ido", "ada", "ida")
_CODE = re.compile(r"\b[a-z]{2,}-?\d{2,}\b|\d{3,}")
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
CATALOG_FILE = Path(__file__).resolve().parent.parent / "helpdesk" / "demo_data" / "catalog.yml"


def fold(text: str) -> str:
    """Lowercase without accents, one output character per input character."""
    return "".join(_fold_char(c) for c in text or "")


def _fold_char(c: str) -> str:
    base = "".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x)).lower()
    return base if len(base) == 1 else c.lower()[:1] or c


def _has_verb(words: list[str]) -> bool:
    return any(w in _VERBS or (len(w) > 3 and w.endswith(_VERB_ENDINGS)) for w in words)


def is_followup(text: str) -> bool:
    """Elliptical: starts like "e no …", "mas e …", or has at most 4 words, no verb and no code."""
    folded = " ".join(_WORD.findall(fold(text)))
    if not folded:
        return False
    if any((folded + " ").startswith(p) for p in FOLLOWUP_PREFIXES):
        return True
    words = folded.split()
    return len(words) <= SHORT_WORDS and not _has_verb(words) and not _CODE.search(folded)


@dataclass(frozen=True)
class ModuleTerms:
    code: str
    name: str
    terms: tuple[str, ...]  # folded code, name and synonyms, longest first


def catalog_modules() -> list[ModuleTerms]:
    """Module names and synonyms from the catalog (database), else helpdesk/demo_data/catalog.yml."""
    rows: list[tuple[str, str, Iterable[str]]] = []
    try:
        with session_scope() as s:
            rows = [(m.code, m.name, list(m.synonyms or [])) for m in catalog.modules(s)]
    except Exception:  # noqa: BLE001 - no database: the shipped catalog file
        logger.warning("catalog unavailable; follow-ups use %s", CATALOG_FILE)
    if not rows:
        try:
            import yaml

            data = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8")) or {}
            rows = [(m["code"], m.get("name") or m["code"], m.get("synonyms") or [])
                    for p in data.get("products") or [] for m in p.get("modules") or []]
        except Exception:  # noqa: BLE001
            logger.exception("cannot read %s", CATALOG_FILE)
    out = []
    for code, name, synonyms in rows:
        terms = {fold(t).strip() for t in (code, name, *synonyms) if fold(t).strip()}
        out.append(ModuleTerms(code, name, tuple(sorted(terms, key=len, reverse=True))))
    return out


def _mentions(folded: str, modules: list[ModuleTerms]) -> list[tuple[int, int, ModuleTerms]]:
    """Non-overlapping module mentions (whole words, longest term first), in text order."""
    found: list[tuple[int, int, ModuleTerms]] = []
    candidates = sorted(((t, m) for m in modules for t in m.terms), key=lambda tm: len(tm[0]), reverse=True)
    for term, module in candidates:
        for match in re.finditer(r"(?<![a-z0-9])" + re.escape(term) + r"(?![a-z0-9])", folded):
            s, e = match.span()
            if all(e <= fs or s >= fe for fs, fe, _ in found):
                found.append((s, e, module))
    return sorted(found, key=lambda f: f[0])


def resolve_followup(question: str, previous: str | None, modules: list[ModuleTerms] | None = None) -> str:
    """The retrieval query for `question` in the conversation (see the comment above)."""
    previous = (previous or "").strip()
    if not previous or not is_followup(question) or fold(previous).strip() == fold(question).strip():
        return question
    modules = catalog_modules() if modules is None else modules
    new_folded = fold(question)
    named = _mentions(new_folded, modules)
    rewritten = previous
    if named:
        target = named[0][2]
        # replace from the end so earlier offsets stay valid (fold keeps one char per char)
        for s, e, module in reversed(_mentions(fold(previous), modules)):
            if module.code != target.code:
                rewritten = rewritten[:s] + target.name + rewritten[e:]
        if not any(m.code == target.code for _, _, m in _mentions(fold(rewritten), modules)):
            base = rewritten.rstrip()
            mark = "?" if base.endswith("?") else ""
            rewritten = f"{base.rstrip('?').rstrip()} {target.name}{mark}"
    rest = new_folded
    for s, e, _ in reversed(named):
        rest = rest[:s] + " " + rest[e:]
    if any(w not in _FILLER for w in _WORD.findall(rest)):
        return f"{rewritten.rstrip()} {question.strip()}"
    return rewritten


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
        # a follow-up ("e no TEF?") is answered as the previous question, resolved against it
        question = resolve_followup(turn.text, tracker.get_slot("last_question"))
        events = turn.events
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
        products = ordered_products(tracker, turn)
        try:
            # off the event loop, within KNOWLEDGE_ANSWER_TIMEOUT_S; the conversation id bounds this
            # conversation's LLM calls per hour (extractive past it)
            result = await answer_off_loop(question, products, tracker.sender_id)
            grounded = bool(result.grounded)
            text = str(result.answer or "").strip()
            sources = [{"title": str(s.title), "url": str(s.url)} for s in result.sources]
            usage = {"mode": getattr(result, "mode", None), "llm_tokens": getattr(result, "llm_tokens", 0),
                     "cached": bool(getattr(result, "cached", False))}
        except asyncio.TimeoutError:
            logger.warning("knowledge.answer took longer than %.0f s; not-found path", answer_timeout_s())
            grounded, text, sources, usage = False, "", [], {}
        except Exception:  # noqa: BLE001 - the knowledge base being down must not break the chat
            logger.exception("knowledge.answer failed")
            grounded, text, sources, usage = False, "", [], {}
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
