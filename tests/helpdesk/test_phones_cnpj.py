import pytest

from helpdesk.cnpj import check_digits, format_cnpj, normalize_cnpj
from helpdesk.errors import InvalidCNPJ, InvalidPhone
from helpdesk.phones import format_phone, normalize_phone, phone_variants


@pytest.mark.parametrize("raw", [
    "5511987654321", "551187654321", "+55 (11) 98765-4321", "11 98765 4321", "(11) 8765-4321",
    "011 98765-4321", "+55 11 8765 4321", "11987654321",
])
def test_brazilian_mobile_forms_share_one_key(raw: str) -> None:
    assert normalize_phone(raw) == "5511987654321"


def test_landline_keeps_eight_digits() -> None:
    assert normalize_phone("(11) 3456-7890") == "551134567890"
    assert normalize_phone("+55 11 3456-7890") == "551134567890"


def test_international_numbers() -> None:
    assert normalize_phone("+1 (650) 555-1234") == "16505551234"
    assert normalize_phone("16505551234") == "16505551234"  # WhatsApp wa_id of a US number
    assert normalize_phone("+351 912 345 678") == "351912345678"


@pytest.mark.parametrize("raw", ["", "   ", "abc", "123", "+55 (00) 98765-4321", "+55 11 1234",
                                 "(11) 1765-4321", "+0 123 456 789", "1234567890123456789", "11-9876x4321", None])
def test_invalid_phones_raise(raw) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_variants_and_format() -> None:
    assert phone_variants("11 98765-4321") == {"5511987654321", "551187654321"}
    assert format_phone("5511987654321") == "+55 (11) 98765-4321"


def test_cnpj_check_digits() -> None:
    assert normalize_cnpj("11.222.333/0001-81") == "11222333000181"
    assert check_digits("112223330001") == "81"
    assert format_cnpj("11222333000181") == "11.222.333/0001-81"


@pytest.mark.parametrize("raw", ["11.222.333/0001-82", "11222333000180", "1122233300018", "00000000000000",
                                 "11.222.333/0001-8a", "", None])
def test_bad_cnpj_raises(raw) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidCNPJ):
        normalize_cnpj(raw)
