"""Turn Rasa bot messages into WhatsApp Cloud API message bodies within Meta's limits (pure).

- text is split at 4,096 characters (at a line break or a space when one is near, so links stay
  whole and in the text);
- 1 to 3 options become reply buttons (titles at most 20 characters), 4 to 10 a list (rows at most
  10, titles at most 24, descriptions at most 72); more than 10 become several lists;
- an option whose payload is a link is written into the text instead of becoming a button;
- each interactive message gets a random ``ref``; option ids are ``<ref>.<n>`` and the map
  ``id -> payload`` is stored on the outbox row, so a reply is mapped back to the payload that the
  assistant chose (ids the connector never sent are treated as plain text).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

TEXT_MAX = 4096
INTERACTIVE_BODY_MAX = 1024
BUTTON_TITLE_MAX = 20
BUTTONS_MAX = 3
LIST_ROWS_MAX = 10
LIST_TITLE_MAX = 24
LIST_DESCRIPTION_MAX = 72
LIST_BUTTON_LABEL = "Ver opções"
LIST_SECTION_TITLE = "Opções"
DEFAULT_PROMPT = "Escolha uma opção:"
MORE_OPTIONS_PROMPT = "Mais opções:"

_URL = re.compile(r"https?://\S+", re.IGNORECASE)


@dataclass
class Outgoing:
    """One Graph API message (without ``to``) and the option ids it carries."""

    body: Dict[str, Any]
    ref: Optional[str] = None
    options: Dict[str, str] = field(default_factory=dict)  # option id -> Rasa payload
    hold: bool = False  # outside the 24-hour window: kept until the customer writes (templates.py)
    needs_template: bool = False  # outside the window with no template sent for it
    reason: Optional[str] = None  # why it is held (shown by the console)

    @property
    def kind(self) -> str:
        return str(self.body.get("type"))


def split_text(text: str, limit: int = TEXT_MAX) -> List[str]:
    """Split ``text`` into chunks of at most ``limit`` characters, preferring line breaks/spaces."""
    text = text.strip()
    chunks: List[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = window.rfind("\n")
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit  # no good boundary: hard cut
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        chunks.append(text)
    return chunks


def shorten(title: str, limit: int) -> str:
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def _unique(titles: List[str], limit: int) -> List[str]:
    out: List[str] = []
    for i, t in enumerate(titles):
        cand = t or f"Opção {i + 1}"
        n = 2
        while cand in out:
            suffix = f" ({n})"
            cand = shorten(t, limit - len(suffix)) + suffix
            n += 1
        out.append(cand)
    return out


def text_message(body: str) -> Outgoing:
    return Outgoing({"type": "text", "text": {"body": body, "preview_url": bool(_URL.search(body))}})


def _new_ref() -> str:
    return secrets.token_hex(6)


def _buttons(prompt: str, options: List[Dict[str, str]]) -> Outgoing:
    ref = _new_ref()
    titles = _unique([shorten(o["title"], BUTTON_TITLE_MAX) for o in options], BUTTON_TITLE_MAX)
    mapping: Dict[str, str] = {}
    buttons = []
    for i, (opt, title) in enumerate(zip(options, titles)):
        oid = f"{ref}.{i}"
        mapping[oid] = opt["payload"]
        buttons.append({"type": "reply", "reply": {"id": oid, "title": title}})
    body = {"type": "interactive", "interactive": {"type": "button", "body": {"text": prompt},
                                                   "action": {"buttons": buttons}}}
    return Outgoing(body, ref, mapping)


def _list(prompt: str, options: List[Dict[str, str]]) -> Outgoing:
    ref = _new_ref()
    titles = _unique([shorten(o["title"], LIST_TITLE_MAX) for o in options], LIST_TITLE_MAX)
    mapping: Dict[str, str] = {}
    rows = []
    for i, (opt, title) in enumerate(zip(options, titles)):
        oid = f"{ref}.{i}"
        mapping[oid] = opt["payload"]
        row: Dict[str, str] = {"id": oid, "title": title}
        full = " ".join(opt["title"].split())
        if full != title:  # the full title did not fit: show it as the description
            row["description"] = shorten(full, LIST_DESCRIPTION_MAX)
        rows.append(row)
    body = {"type": "interactive", "interactive": {
        "type": "list", "body": {"text": prompt},
        "action": {"button": LIST_BUTTON_LABEL, "sections": [{"title": LIST_SECTION_TITLE, "rows": rows}]}}}
    return Outgoing(body, ref, mapping)


def with_options(text: str, raw_options: List[Dict[str, Any]]) -> List[Outgoing]:
    """Text plus options: reply buttons (<= 3) or lists (4..10 rows each)."""
    options: List[Dict[str, str]] = []
    links: List[str] = []
    for o in raw_options:
        title = str(o.get("title") or "").strip()
        payload = str(o.get("payload") or o.get("url") or "").strip()
        if not payload:
            continue
        if _URL.fullmatch(payload):  # links stay in the text
            links.append(f"{title}: {payload}" if title else payload)
            continue
        options.append({"title": title or payload, "payload": payload})
    text = "\n".join([t for t in [text.strip(), *links] if t])
    if not options:
        return [text_message(c) for c in split_text(text)] if text else []

    out: List[Outgoing] = []
    limit = INTERACTIVE_BODY_MAX if len(options) <= BUTTONS_MAX else TEXT_MAX
    chunks = split_text(text) if text else []
    prompt = DEFAULT_PROMPT
    if chunks and len(chunks[-1]) <= limit:
        prompt = chunks.pop()
    out += [text_message(c) for c in chunks]
    if len(options) <= BUTTONS_MAX:
        out.append(_buttons(prompt, options))
        return out
    for start in range(0, len(options), LIST_ROWS_MAX):
        out.append(_list(prompt if start == 0 else MORE_OPTIONS_PROMPT, options[start:start + LIST_ROWS_MAX]))
    return out


def render(message: Dict[str, Any]) -> List[Outgoing]:
    """All Graph API messages for one Rasa bot message (``text``, ``buttons``, ``image``, ...)."""
    out: List[Outgoing] = []
    text = str(message.get("text") or "")
    options = message.get("buttons") or message.get("quick_replies") or []
    if options:
        out += with_options(text, list(options))
    elif text.strip():
        out += [text_message(c) for c in split_text(text)]
    custom = message.get("custom")
    if isinstance(custom, dict) and isinstance(custom.get("whatsapp"), dict):
        # the assistant may hand a ready Graph body (e.g. a template) under custom.whatsapp
        out.append(Outgoing(dict(custom["whatsapp"])))
    image = message.get("image")
    if isinstance(image, str) and image.startswith(("http://", "https://")):
        out.append(Outgoing({"type": "image", "image": {"link": image}}))
    attachment = message.get("attachment")
    if isinstance(attachment, str) and attachment.startswith(("http://", "https://")):
        out.append(Outgoing({"type": "document", "document": {"link": attachment}}))
    return out
