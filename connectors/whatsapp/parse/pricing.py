"""Meta's ``pricing`` object of a status → what ``whatsapp_pricing`` stores (pure, never raises).

The object is untrusted and secondary: whatever it holds, the status itself is still applied (a
confirmation must never be lost to a bad price tag), so a wrong shape here does not make the
notification malformed (parse/cloud.py leaves ``pricing`` out of its shape checks). Each field is
kept only when it has its documented form: ``billable`` a boolean; ``category``, ``type`` and
``pricing_model`` short words. A field of another type, or a string out of bounds, is dropped;
a well-formed value that Meta's reference does not list (a new category) is kept. Either way the
reason is stored with the row (``reason``), at most ``MAX_REASON_CHARS`` characters.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Pattern, Sequence

from atende_contract import wa_pricing

from .common import describe

MAX_WORD_CHARS = 40  # whatsapp_pricing.category / pricing_type are VARCHAR(40)
MAX_MODEL_CHARS = 16
MAX_REASON_CHARS = 400
_WORD = re.compile(r"[a-z][a-z0-9_]{0,%d}" % (MAX_WORD_CHARS - 1))
_MODEL = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,%d}" % (MAX_MODEL_CHARS - 1))


def _word(raw: Dict[str, Any], key: str, pattern: Pattern[str], known: Sequence[str],
          reasons: List[str]) -> Optional[str]:
    value = raw.get(key)
    if value is None:
        reasons.append(f"no {key}")
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        reasons.append(f"{key} {describe(value)} dropped (not a {key} name)")
        return None
    if value not in known:
        reasons.append(f"unknown {key} {value!r}")
    return value


def parse_pricing(raw: Any) -> Optional[Dict[str, Any]]:
    """The row fields of Meta's ``pricing`` (``billable``, ``category``, ``pricing_model``,
    ``pricing_type``, ``reason``); None when the status has no pricing object."""
    if raw is None:
        return None
    out: Dict[str, Any] = {"billable": None, "category": None, "pricing_model": None, "pricing_type": None}
    reasons: List[str] = []
    if not isinstance(raw, dict):
        out["reason"] = f"pricing {describe(raw)} is not an object"
        return out
    billable = raw.get("billable")
    if isinstance(billable, bool):
        out["billable"] = billable
    elif billable is not None:
        reasons.append(f"billable {describe(billable)} dropped (not a boolean)")
    out["category"] = _word(raw, "category", _WORD, wa_pricing.CATEGORIES, reasons)
    out["pricing_model"] = _word(raw, "pricing_model", _MODEL, wa_pricing.MODELS, reasons)
    if raw.get("type") is not None or out["pricing_model"] != "CBP":  # CBP statuses have no type
        out["pricing_type"] = _word(raw, "type", _WORD, wa_pricing.TYPES, reasons)
    reason = "; ".join(reasons)
    out["reason"] = (reason if len(reason) <= MAX_REASON_CHARS else reason[:MAX_REASON_CHARS - 1] + "…") or None
    return out
