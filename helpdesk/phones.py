"""Phone numbers: Brazilian normalisation (country code, area code, mobile ninth digit).

The canonical form is the E.164 digits without "+". Brazilian mobiles always carry the ninth
digit in canonical form, so a number written with or without it maps to the same key.
"""
from __future__ import annotations

import re

from .errors import InvalidPhone

_ALLOWED = re.compile(r"^[\d\s()+\-./]+$")


def _br_canonical(national: str) -> str | None:
    """National digits (area code + subscriber) to canonical, or None if not Brazilian."""
    if len(national) not in (10, 11):
        return None
    ddd, sub = national[:2], national[2:]
    if ddd[0] == "0" or ddd[1] == "0":
        return None
    if len(sub) == 9:
        if sub[0] != "9":
            return None
        return "55" + ddd + sub
    # 8-digit subscriber: landlines start with 2-5, mobiles (old format) with 6-9.
    if sub[0] in "2345":
        return "55" + ddd + sub
    if sub[0] in "6789":
        return "55" + ddd + "9" + sub
    return None


def normalize_phone(raw: str) -> str:
    """Return the canonical digits of a phone number or raise InvalidPhone.

    >>> normalize_phone("+55 (11) 98765-4321")
    '5511987654321'
    >>> normalize_phone("551187654321")
    '5511987654321'
    """
    if raw is None or not isinstance(raw, str):
        raise InvalidPhone(f"not a phone number: {raw!r}")
    text = raw.strip()
    if not text or not _ALLOWED.match(text):
        raise InvalidPhone(f"not a phone number: {raw!r}")
    international = text.startswith("+")
    digits = re.sub(r"\D", "", text)
    if international:
        if digits.startswith("55"):
            br = _br_canonical(digits[2:])
            if br:
                return br
            raise InvalidPhone(f"not a valid Brazilian number: {raw!r}")
        if 8 <= len(digits) <= 15 and digits[0] != "0":
            return digits
        raise InvalidPhone(f"not a valid international number: {raw!r}")
    # Without "+": Brazilian first (with or without 55, with a trunk 0), then international.
    candidates = []
    if digits.startswith("55") and len(digits) in (12, 13):
        candidates.append(digits[2:])
    if digits.startswith("0") and len(digits) in (11, 12):
        candidates.append(digits[1:])
    candidates.append(digits)
    for national in candidates:
        br = _br_canonical(national)
        if br:
            return br
    if 11 <= len(digits) <= 15 and digits[0] != "0" and not digits.startswith("55"):
        return digits
    raise InvalidPhone(f"not a valid phone number: {raw!r}")


def phone_variants(raw: str) -> set[str]:
    """Every way WhatsApp may send the same number (Brazilian mobiles with and without the 9)."""
    canonical = normalize_phone(raw)
    variants = {canonical}
    if canonical.startswith("55") and len(canonical) == 13 and canonical[4] == "9":
        variants.add(canonical[:4] + canonical[5:])
    return variants


def format_phone(canonical: str) -> str:
    """Human form for the console: +55 (11) 98765-4321."""
    if canonical.startswith("55") and len(canonical) in (12, 13):
        ddd, sub = canonical[2:4], canonical[4:]
        return f"+55 ({ddd}) {sub[:-4]}-{sub[-4:]}"
    return "+" + canonical
