"""What both providers' parsers share (pure, stdlib only): the inbox item, the bounds of ids and
the shape checks. A notification is **malformed** (``NotificationError``: the webhook answers 400
and changes nothing) when a value of the wrong JSON type is in any object the parser reads, or a
string is not valid Unicode (a lone surrogate such as ``"\\ud800"``, which no database can store).

Ids are bounded: addresses (``MAX_ID_CHARS`` characters; a ``wa_id`` is ASCII digits, a ``bsuid``
and other non-phone addresses ``[A-Za-z0-9._-]``) and item ids (message, call and status ids:
printable ASCII, ``MAX_ITEM_ID_CHARS``). An id of the right type but out of those bounds does not
reject the delivery: that one item is **skipped** (``SkipItem``: no inbox row, the reason is in
``ParseResult.ignored`` and logged), so the other customers' messages batched in the same delivery
are still stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Pattern, Tuple, Union

from atende_contract.text import neutralise as neutralise_command

INBOUND_CALL_TEXT = "/inbound_call"
MEDIA_RECEIVED_TEXT = "/media_received"

# Bounds of ids (see the module docstring). The inbox columns are sender VARCHAR(128), item_id and
# button_id VARCHAR(255): "<item id>#status:<name>" stays within 128 + 8 + 32.
MAX_ID_CHARS = 64
MAX_ITEM_ID_CHARS = 128
MAX_NAME_CHARS = 32
MAX_BUTTON_ID_CHARS = 255
WA_ID = re.compile(r"[0-9]{1,%d}" % MAX_ID_CHARS)  # a phone: wa_id, from, to
BSUID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,%d}" % (MAX_ID_CHARS - 1))  # "US.123"; also group ids
ITEM_ID = re.compile(r"[!-~]{1,%d}" % MAX_ITEM_ID_CHARS)  # wamid / call id / status id: printable ASCII
NAME = re.compile(r"[!-~]{1,%d}" % MAX_NAME_CHARS)  # status values and call events
UNKNOWN_ADDRESS = "unknown"  # the address of a status that names no recipient

ItemKind = Literal["message", "call", "status"]
ItemAction = Literal["rasa", "status", "ignore", "alias"]  # alias: the customer changed number


class NotificationError(ValueError):
    """The body is not a valid notification (malformed): the webhook answers 400."""


class SkipItem(Exception):
    """One item of an otherwise valid notification cannot be stored (an id out of bounds)."""


@dataclass(frozen=True)
class InboundItem:
    """One thing from a notification that gets an inbox row."""

    item_id: str  # unique: the wamid, "<call id>#<event>", "<wamid>#status:<status>"
    kind: ItemKind
    address: str  # the customer's address: the wa_id, or the bsuid when there is no phone
    action: ItemAction
    text: Optional[str] = None  # the user text for Rasa (action == "rasa")
    metadata: Dict[str, Any] = field(default_factory=dict)
    reason: Optional[str] = None  # why it is ignored (action == "ignore")
    button_id: Optional[str] = None  # interactive/template reply id, mapped to a payload later
    status: Optional[Dict[str, Any]] = None  # for kind == "status"
    call: Optional[Dict[str, Any]] = None  # for kind == "call"


@dataclass
class ParseResult:
    items: List[InboundItem] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)  # parts without an inbox row, with the reason


def neutralise(text: str) -> str:
    """Strip leading slashes so user text can never trigger an intent or set slots in Rasa (and
    NUL characters, which PostgreSQL cannot store)."""
    return neutralise_command(text.replace("\x00", "")).strip()


def describe(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for reasons and logs."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


# A shape is a type or tuple of types (isinstance; a bool is never an int), a dict (an object whose
# listed keys, when present and not null, have their shapes; other keys are not looked at) or a
# one-element list (a list whose items all have that shape).
Shape = Union[type, Tuple[type, ...], Dict[str, Any], List[Any]]


def check_shape(value: Any, shape: Shape, where: str) -> None:
    """Raise NotificationError unless ``value`` has ``shape`` (iterative: any depth)."""
    stack: List[Tuple[Any, Shape, str]] = [(value, shape, where)]
    while stack:
        v, s, w = stack.pop()
        if isinstance(s, dict):
            if not isinstance(v, dict):
                raise NotificationError(f"{w} must be an object")
            for key, sub in s.items():
                item = v.get(key)
                if item is not None:
                    stack.append((item, sub, f"{w}.{key}"))
        elif isinstance(s, list):
            if not isinstance(v, list):
                raise NotificationError(f"{w} must be a list")
            stack.extend((item, s[0], f"{w}[{i}]") for i, item in enumerate(v))
        else:
            types = s if isinstance(s, tuple) else (s,)
            if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
                names = " or ".join("a string" if t is str else f"a {t.__name__}" for t in types)
                raise NotificationError(f"{w} must be {names}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(doc: Any) -> None:
    """Raise NotificationError if a string anywhere in ``doc`` (keys included) holds a lone
    surrogate: JSON can encode it (``"\\ud800"``), UTF-8 and so the database cannot."""
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                raise NotificationError("a string is not valid Unicode (lone surrogate)")
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def bounded(value: Optional[str], pattern: Pattern[str], what: str) -> Optional[str]:
    """An id from a validated notification: None when absent or empty, else ``value`` when it
    matches ``pattern``; raises SkipItem when it does not."""
    if not value:
        return None
    if pattern.fullmatch(value):
        return value
    raise SkipItem(f"{what} {describe(value)} is out of bounds")


def button_key(value: Any) -> Optional[str]:
    """A reply/option id as stored for the payload lookup (None when it cannot be one of ours)."""
    if isinstance(value, str) and value and len(value) <= MAX_BUTTON_ID_CHARS and "\x00" not in value:
        return value
    return None
