"""CNPJ (Brazilian company registry number) validation with check digits."""
from __future__ import annotations

import re

from .errors import InvalidCNPJ

_W1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
_W2 = [6] + _W1


def _check_digit(digits: str, weights: list[int]) -> str:
    total = sum(int(d) * w for d, w in zip(digits, weights))
    rest = total % 11
    return "0" if rest < 2 else str(11 - rest)


def check_digits(base12: str) -> str:
    """The two check digits for the first 12 digits of a CNPJ."""
    first = _check_digit(base12, _W1)
    return first + _check_digit(base12 + first, _W2)


def normalize_cnpj(raw: str) -> str:
    """Return the 14 digits of a valid CNPJ or raise InvalidCNPJ."""
    if raw is None or not isinstance(raw, str):
        raise InvalidCNPJ(f"not a CNPJ: {raw!r}")
    text = raw.strip()
    if not re.fullmatch(r"[\d.\-/\s]+", text or "x"):
        raise InvalidCNPJ(f"not a CNPJ: {raw!r}")
    digits = re.sub(r"\D", "", text)
    if len(digits) != 14 or digits == digits[0] * 14:
        raise InvalidCNPJ(f"CNPJ must have 14 digits: {raw!r}")
    if check_digits(digits[:12]) != digits[12:]:
        raise InvalidCNPJ(f"CNPJ check digits do not match: {raw!r}")
    return digits


def is_valid_cnpj(raw: str) -> bool:
    try:
        normalize_cnpj(raw)
        return True
    except InvalidCNPJ:
        return False


def format_cnpj(digits: str) -> str:
    d = re.sub(r"\D", "", digits)
    if len(d) != 14:
        return digits
    return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"
