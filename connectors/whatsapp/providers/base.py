"""The contract between the worker and a WhatsApp provider (Cloud API, Z-API).

The outbox holds Cloud API message bodies (outbound.py renders text, reply buttons, lists, images,
documents and ready templates within Meta's limits; the app env reads them for transcripts), so a
provider takes such a body and delivers it its own way: the Cloud API posts it as is, Z-API
translates it to its endpoints. ``Provider`` lists every call the worker makes; the test
tests/connectors/test_whatsapp_providers.py fails when a provider's signatures drift from it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable, Dict, Literal, Optional, Protocol, runtime_checkable

import aiohttp

# A Cloud API message body: {"messaging_product", "recipient_type", "to" | "recipient", "type", ...}
MessageBody = Dict[str, Any]


@dataclass(frozen=True)
class SendResult:
    """What became of one request: ``ok`` (``wamid`` = the provider's message id), ``retry``
    (throttled, 5xx, timeout: back off and send again) or ``reject`` (never resent)."""

    outcome: Literal["ok", "retry", "reject"]
    wamid: Optional[str] = None
    code: Optional[int] = None
    title: Optional[str] = None
    http_status: Optional[int] = None


@runtime_checkable
class Provider(Protocol):
    async def send(self, body: MessageBody) -> SendResult:
        """Send one outbox message: text, reply buttons, a list, an image, a document or a
        template, as a Cloud API body addressed with ``to`` (wa_id) or ``recipient`` (bsuid)."""
        ...

    async def mark_read(self, wamid: str, address: str, typing: bool = True) -> SendResult:
        """Mark received message ``wamid`` of ``address`` as read and, with ``typing``, show the
        typing indicator until the next reply (where the provider has one)."""
        ...

    async def close(self) -> None:
        """Close the HTTP session (the worker is stopping)."""
        ...


async def post_json(session: aiohttp.ClientSession, url: str, body: Dict[str, Any], headers: Dict[str, str],
                    classify_response: Callable[[int, Any], SendResult]) -> SendResult:
    """POST a JSON body and classify the answer; timeouts and connection errors are retried."""
    try:
        async with session.post(url, json=body, headers=headers) as resp:
            try:
                payload = await resp.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                payload = None
            return classify_response(resp.status, payload)
    except asyncio.TimeoutError:
        return SendResult("retry", title="timeout")
    except aiohttp.ClientError as exc:
        return SendResult("retry", title=f"connection error: {exc}")
