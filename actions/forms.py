"""Validation of the ticket form (description, module, type) and the rating form."""
from __future__ import annotations

import re
from typing import Any, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.services import catalog, customers

from .common import fold, user_text
from .guard import is_emoji_only

MAX_DESCRIPTION = 4000
NO_MODULE = "nenhum"
DONT_KNOW = {"nao sei", "sei la", "nenhum", "nenhum deles", "outro", "outros", "nao tenho certeza", "nenhum"}

TYPE_WORDS: list[tuple[str, str]] = [
    ("erro", "erro"), ("problema", "erro"), ("bug", "erro"), ("falha", "erro"), ("defeito", "erro"),
    ("duvida", "duvida"), ("pergunta", "duvida"), ("como", "duvida"),
    ("atualiza", "atualizacao"), ("versao", "atualizacao"), ("upgrade", "atualizacao"),
    ("instala", "instalacao"), ("implanta", "instalacao"),
    ("comercial", "comercial"), ("compra", "comercial"), ("contratar", "comercial"), ("vendas", "comercial"),
    ("outro", "outro"), ("outra", "outro"),
]
VALID_TYPES = ("erro", "duvida", "atualizacao", "instalacao", "comercial", "outro")
RATING_WORDS = {"um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3, "quatro": 4, "cinco": 5}


def classify_type(value: str) -> str | None:
    key = fold(value)
    if key in VALID_TYPES:
        return key
    for word, code in TYPE_WORDS:
        if word in key:
            return code
    return None


def resolve_module(value: str) -> str | None:
    """A module code for what the customer said, NO_MODULE for "não sei", None if unknown."""

    key = fold(value).strip(" .!?")
    if key in DONT_KNOW:
        return NO_MODULE
    with session_scope() as s:
        module = catalog.find_module(s, key)
        if module is not None:
            return str(module.code)
        for prefix in ("no ", "na ", "o ", "a ", "e no ", "e na ", "modulo "):
            if key.startswith(prefix):
                module = catalog.find_module(s, key[len(prefix):])
                if module is not None:
                    return str(module.code)
        for word in re.findall(r"[a-z0-9\-]+", key):
            module = catalog.find_module(s, word)
            if module is not None:
                return str(module.code)
    return None


def module_named_in(text: str) -> str | None:
    """The one catalog module a description names, else None: when the NLU misses the module
    entity, the form still does not ask for what the customer already said ("o tef nao passa
    cartao", "a frente de caixa travou"). Only a module's code, its name or a synonym of several
    words counts, as whole words: one-word synonyms ("caixa", "integracao", "bot") are too common
    in a description to classify it. Two different modules named, or none: None (the form asks)."""
    key = " " + " ".join(re.findall(r"[a-z0-9\-]+", fold(text))) + " "
    found: set[str] = set()
    with session_scope() as s:
        for module in catalog.modules(s):
            for name in (module.code, module.name, *(module.synonyms or [])):
                words = " ".join(re.findall(r"[a-z0-9\-]+", fold(str(name or ""))))
                if name not in (module.code, module.name) and " " not in words:
                    continue
                if words and f" {words} " in key:
                    found.add(str(module.code))
                    break
    return found.pop() if len(found) == 1 else None


class ValidateTicketForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_ticket_form"

    def validate_ticket_description(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                    tracker: Tracker, domain: DomainDict) -> dict[Text, Any]:
        text = str(slot_value or "").strip()
        if len(text) > MAX_DESCRIPTION:
            dispatcher.utter_message(response="utter_message_too_long")
            return {"ticket_description": None}
        if len(text) < 4 or is_emoji_only(text) or text.startswith("/"):
            dispatcher.utter_message(response="utter_invalid_description")
            return {"ticket_description": None}
        if not tracker.get_slot("ticket_module"):
            code = module_named_in(text)
            if code is not None:
                return {"ticket_description": text, "ticket_module": code}
        return {"ticket_description": text}

    def validate_ticket_module(self, slot_value: Any, dispatcher: CollectingDispatcher,
                               tracker: Tracker, domain: DomainDict) -> dict[Text, Any]:
        value = str(slot_value or "").strip()
        code = resolve_module(value) if value else None
        if code is None and tracker.get_slot("requested_slot") != "ticket_module":
            # A prefilled module that is not in the catalog (the NLU may tag a stray word, "de" in
            # "cartao de debito", beside the real "tef"): the message's other module entities, then
            # a module the text names; else ask for it.
            latest = tracker.latest_message or {}
            for entity in latest.get("entities") or []:
                if entity.get("entity") == "module" and str(entity.get("value") or "").strip():
                    code = resolve_module(str(entity["value"]))
                    if code is not None and code != NO_MODULE:
                        return {"ticket_module": code}
            return {"ticket_module": module_named_in(str(latest.get("text") or ""))}
        if code is None:
            dispatcher.utter_message(response="utter_invalid_module")
            return {"ticket_module": None}
        return {"ticket_module": code}

    def validate_ticket_type(self, slot_value: Any, dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> dict[Text, Any]:
        code = classify_type(str(slot_value or ""))
        if code is None:
            if tracker.get_slot("requested_slot") == "ticket_type":
                dispatcher.utter_message(response="utter_invalid_ticket_type")
            return {"ticket_type": None}
        return {"ticket_type": code}


class ActionAskTicketModule(Action):
    """Ask for the module; identified customers get their own modules as buttons."""

    def name(self) -> Text:
        return "action_ask_ticket_module"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[Text, Any]) -> list[EventType]:

        buttons: list[dict[str, str]] = []
        cust = tracker.get_slot("customer_id")
        if cust:
            try:
                with session_scope() as s:
                    customer = customers.get(s, int(cust))
                    seen: set[str] = set()
                    for lic in customer.licenses:
                        if lic.status == "ativa" and lic.module.code not in seen:
                            seen.add(lic.module.code)
                            buttons.append({"title": lic.module.name,
                                            "payload": f'/inform_module{{"module": "{lic.module.code}"}}'})
            except (DomainError, ValueError):
                buttons = []
        if buttons:
            buttons = buttons[:9] + [{"title": "Não sei", "payload": f'/inform_module{{"module": "{NO_MODULE}"}}'}]
            dispatcher.utter_message(response="utter_ask_ticket_module", buttons=buttons)
        else:
            dispatcher.utter_message(response="utter_ask_ticket_module_free")
        return []


def parse_rating(value: Any, text: str) -> int | str | None:
    """1-5, "skip" when the customer moved on to something else, None when the number is invalid."""
    for candidate in (str(value or ""), text):
        key = fold(candidate)
        numbers = re.findall(r"\d+", key)
        if numbers:
            n = int(numbers[0])
            return n if 1 <= n <= 5 else None
        for word, n in RATING_WORDS.items():
            if re.search(rf"\b{word}\b", key):
                return n
    return "skip"


class ValidateRatingForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_rating_form"

    def validate_rating(self, slot_value: Any, dispatcher: CollectingDispatcher,
                        tracker: Tracker, domain: DomainDict) -> dict[Text, Any]:
        intent = str((tracker.latest_message.get("intent") or {}).get("name") or "")
        if slot_value in (None, "") or intent.startswith("EXTERNAL_"):
            return {"rating": None}
        text = user_text(tracker)
        rating = parse_rating(slot_value, "" if text.startswith("/") else text)
        if rating is None:
            dispatcher.utter_message(response="utter_invalid_rating")
            return {"rating": None}
        return {"rating": str(rating)}
