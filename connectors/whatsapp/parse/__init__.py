"""Webhook bodies → inbox items, for both providers (pure, stdlib only).

- common.py: the inbox item, id bounds, shape checks, ``neutralise``;
- cloud.py: a Cloud API notification (validated as a whole), with one module per kind of part:
  messages.py, calls.py, statuses.py (identity.py: who sent it);
- zapi.py: a Z-API callback.
"""

from .cloud import parse_notification
from .common import (INBOUND_CALL_TEXT, MEDIA_RECEIVED_TEXT, InboundItem, NotificationError, ParseResult,
                     neutralise)
from .zapi import parse_callback

__all__ = ["INBOUND_CALL_TEXT", "MEDIA_RECEIVED_TEXT", "InboundItem", "NotificationError", "ParseResult",
           "neutralise", "parse_callback", "parse_notification"]
