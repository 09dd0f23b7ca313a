"""Tables one environment writes and the other reads.

The bot env writes Rasa's ``events`` (the tracker store) and the WhatsApp connector's tables
(``whatsapp_outbox``, ``whatsapp_pricing``, ...); the app env reads them read-only (transcripts on
the ticket screen, failed sends such as 131047, the WhatsApp cost in the reports). The names and
the columns read are pinned here; tests in both environments check them against the real table
definitions.
"""

from __future__ import annotations

EVENTS = "events"
# Columns of Rasa's `events` the console reads (timestamp: UNIX seconds; data: the event's JSON).
EVENTS_COLUMNS = ("id", "sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")

WHATSAPP_OUTBOX = "whatsapp_outbox"
# `recipient` is the bare WhatsApp id (the conversation id without `whatsapp:`).
WHATSAPP_OUTBOX_COLUMNS = ("id", "recipient", "status", "send_state", "error_code", "error_title",
                           "needs_template", "body", "created_at")

WHATSAPP_INBOX = "whatsapp_inbox"
# The 24-hour window (atende_contract.wa_window): the customer's last message is the latest
# `received_at` of a row with kind "message" from `sender` (the bare WhatsApp id).
WHATSAPP_INBOX_COLUMNS = ("sender", "kind", "received_at")
# The console's "Problemas do WhatsApp" page: rows the connector stored with `state` "ignored" and
# why (`reason`, the connector's English text; `text` the customer's, `data` the item's JSON).
WHATSAPP_INBOX_PROBLEM_COLUMNS = ("id", "sender", "kind", "state", "text", "data", "reason", "received_at")

WHATSAPP_WINDOWS = "whatsapp_windows"
# Meta's `conversation.expiration_timestamp` (UNIX seconds) seen on statuses, per `recipient`.
WHATSAPP_WINDOWS_COLUMNS = ("recipient", "expires_at", "updated_at")

WHATSAPP_ALIASES = "whatsapp_aliases"
# A number change: the new `wa_id` continues the conversation of `conversation` (the first number).
WHATSAPP_ALIASES_COLUMNS = ("wa_id", "conversation", "changed_at")

WHATSAPP_PRICING = "whatsapp_pricing"
# Meta's `pricing` object of the statuses, one row per message (`wamid`): `recipient` is the bare
# address, `conversation` Rasa's conversation id (`whatsapp:<address>`, as tickets keep it);
# `recorded_at` UNIX seconds. The console prices `category` with whatsapp_prices (its own table).
WHATSAPP_PRICING_COLUMNS = ("wamid", "recipient", "conversation", "billable", "category", "pricing_model",
                            "pricing_type", "reason", "recorded_at")
