"""Meta's pricing of WhatsApp messages: the vocabulary both environments speak (pure).

Every status webhook of a message Atende sent may carry a ``pricing`` object (Meta's "Status
messages webhook reference", developers.facebook.com/documentation/business-messaging/whatsapp/
webhooks/reference/messages/status/): ``billable`` (deprecated under per-message pricing),
``category``, ``pricing_model`` (``CBP``: the old conversation-based pricing, ``PMP``: per-message
pricing since July 2025) and ``type`` (PMP only). The bot env stores it per message
(``whatsapp_pricing``, atende_contract.tables); the app env prices it with the managers' BRL
prices per category (helpdesk/services/wa_cost.py) using ``charged`` below.
"""

from __future__ import annotations

from typing import Optional

CATEGORIES = ("marketing", "marketing_lite", "utility", "authentication", "authentication_international",
              "service", "referral_conversion")
MODELS = ("CBP", "PMP")
TYPES = ("regular", "free_customer_service", "free_entry_point")
FREE_TYPES = ("free_customer_service", "free_entry_point")

CATEGORY_LABELS = {
    "marketing": "marketing", "marketing_lite": "marketing lite", "utility": "utilidade",
    "authentication": "autenticação", "authentication_international": "autenticação internacional",
    "service": "serviço", "referral_conversion": "conversão de anúncio (ponto de entrada gratuito)",
}


def charged(billable: Optional[bool], pricing_type: Optional[str]) -> Optional[bool]:
    """Whether Meta charges the message: a free ``type`` (customer-service window, free entry
    point) or ``billable`` false is free; ``billable`` true or ``type`` regular is charged; with
    neither said, None (unknown: counted, never priced)."""
    if pricing_type in FREE_TYPES or billable is False:
        return False
    if billable is True or pricing_type == "regular":
        return True
    return None
