"""WhatsApp Cloud API (Graph) provider with Atende's error policy (bot env, aiohttp).

- 130429 (throughput) and 131056 (pair rate limit): back off and retry;
- 131047 (outside the 24-hour window): not retried, recorded (the console shows "template needed");
- other 4xx: not retried;
- timeouts, connection errors and 5xx: retried with bounded exponential backoff.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import aiohttp

from .base import MessageBody, SendResult, post_json

RETRY_CODES = frozenset({130429, 131056})


def classify(http_status: int, payload: Any) -> SendResult:
    """Map a Graph API answer to ok / retry / reject."""
    if 200 <= http_status < 300:
        wamid = None
        if isinstance(payload, dict):
            msgs = payload.get("messages")
            if isinstance(msgs, list) and msgs and isinstance(msgs[0], dict):
                wamid = msgs[0].get("id")
        return SendResult("ok", wamid=wamid, http_status=http_status)
    err = payload.get("error") if isinstance(payload, dict) else None
    code = err.get("code") if isinstance(err, dict) and isinstance(err.get("code"), int) else None
    title = None
    if isinstance(err, dict):
        title = str(err.get("message") or err.get("error_user_title") or "")[:500] or None
    if code in RETRY_CODES or http_status == 429 or http_status >= 500:
        return SendResult("retry", code=code, title=title, http_status=http_status)
    return SendResult("reject", code=code, title=title, http_status=http_status)


class GraphClient:
    """``Provider`` for the Cloud API: one phone number id, a bearer token."""

    def __init__(self, base_url: str, api_version: str, phone_number_id: str, access_token: str,
                 timeout_s: float = 10.0) -> None:
        self.url = f"{base_url.rstrip('/')}/{api_version}/{phone_number_id}/messages"
        self.access_token = access_token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: Optional[aiohttp.ClientSession] = None

    async def _post(self, body: Dict[str, Any]) -> SendResult:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return await post_json(self._session, self.url, body, {"Authorization": f"Bearer {self.access_token}"},
                               classify)

    async def send(self, body: MessageBody) -> SendResult:
        return await self._post(body)

    async def mark_read(self, wamid: str, address: str, typing: bool = True) -> SendResult:
        """Meta needs only the message id (``address`` is not sent); the typing indicator rides on
        the read receipt."""
        body: Dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        if typing:
            body["typing_indicator"] = {"type": "text"}
        return await self._post(body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
