"""WhatsApp webhook gateway: acknowledges Meta's deliveries off Rasa's event loop (bot env).

    python -m connectors.whatsapp.gateway [--host 127.0.0.1] [--port 5006] [--wake URL[,URL...]]

A small Sanic process that serves the same ``/webhooks/whatsapp/webhook`` as the Rasa channel
(GET verification, signed POST) with the same code (``webhook.register_webhook``):
same checks, same statuses, same durable inbox. After storing new items it answers 200 and wakes
the Rasa-side worker with ``POST <rasa>/webhooks/whatsapp/wake`` (coalesced: at most one request in
flight per Rasa server, plus one more if deliveries arrived meanwhile; best effort, since the worker
also polls the inbox every second). Rasa's turn handling blocks Rasa's event loop for tens of
milliseconds per message, so serving the webhook here keeps acknowledgements fast, and deliveries
are acknowledged (and kept) while Rasa restarts or is down.

Environment: the ``WHATSAPP_*`` variables and ``DATABASE_URL`` as for the channel, plus
``WHATSAPP_GATEWAY_HOST`` / ``WHATSAPP_GATEWAY_PORT`` and ``WHATSAPP_WAKE_URLS`` (comma-separated; default
``$RASA_URL/webhooks/whatsapp/wake``, else ``http://127.0.0.1:5005/webhooks/whatsapp/wake``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Sequence

import aiohttp
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from .ingest import Ingestor
from .settings import WhatsAppSettings
from .store import Store, make_engine
from .webhook import register_webhook

logger = logging.getLogger("connectors.whatsapp.gateway")

DEFAULT_PORT = 5006


class Waker:
    """Tells the Rasa servers that the inbox has new rows, coalescing bursts."""

    def __init__(self, urls: Sequence[str], timeout_s: float = 2.0) -> None:
        self.urls = [u for u in urls if u]
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: Optional[aiohttp.ClientSession] = None
        self._again = False
        self._task: Optional[asyncio.Task] = None
        self.sent = 0

    def wake(self) -> None:
        if not self.urls:
            return
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        while self._again:
            self._again = False
            await asyncio.gather(*(self._post(url) for url in self.urls))

    async def _post(self, url: str) -> None:
        assert self._session is not None
        try:
            async with self._session.post(url) as resp:
                await resp.read()
                if resp.status == 200:
                    self.sent += 1
                else:
                    logger.warning("whatsapp gateway: wake %s answered %s", url, resp.status)
        except Exception as exc:  # Rasa down or restarting: its worker reads the inbox when it starts
            logger.debug("whatsapp gateway: wake %s failed: %s", url, exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._session is not None:
            await self._session.close()


def _percentiles(values: List[float]) -> Dict[str, float]:
    if not values:
        return {}
    v = sorted(values)
    return {f"p{p}": round(v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))], 2) for p in (50, 95, 99)} | {
        "max": round(v[-1], 2), "n": len(v)}


def default_wake_urls(env: Optional[Dict[str, str]] = None) -> List[str]:
    env = dict(os.environ if env is None else env)
    raw = env.get("WHATSAPP_WAKE_URLS", "").strip()
    if raw:
        return [u.strip() for u in raw.split(",") if u.strip()]
    rasa = (env.get("RASA_URL") or "http://127.0.0.1:5005").rstrip("/")
    return [f"{rasa}/webhooks/whatsapp/wake"]


def create_app(settings: WhatsAppSettings, wake_urls: Sequence[str], name: str = "atende-wa-gateway") -> Sanic:
    app = Sanic(name)
    # Our own check answers 413 with a JSON error; Sanic only guards against absurd bodies.
    app.config.REQUEST_MAX_SIZE = max(16 * 1024 * 1024, settings.max_body_bytes * 4)
    parts: Dict[str, Any] = {}
    if not settings.app_secret:
        logger.warning("whatsapp gateway: WHATSAPP_APP_SECRET is not set; the webhook answers 503")

    async def ingest(items: List[Any]) -> int:
        return await parts["ingestor"].ingest(items)

    bp = Blueprint("whatsapp_gateway", url_prefix="/webhooks/whatsapp")
    register_webhook(bp, settings, ingest, lambda _new: parts["waker"].wake())
    app.blueprint(bp)

    @app.get("/health")
    async def health(_request: Request) -> HTTPResponse:
        waker = parts.get("waker")
        return response.json({"status": "ok", "enabled": bool(settings.app_secret),
                              "wake_urls": list(wake_urls), "wakes_sent": waker.sent if waker else 0})

    handler_s: Deque[float] = deque(maxlen=20000)

    @app.on_request
    async def _t0(request: Request) -> None:
        request.ctx.t0 = time.perf_counter()

    @app.on_response
    async def _t1(request: Request, _response: HTTPResponse) -> None:
        if request.method == "POST" and hasattr(request.ctx, "t0"):
            handler_s.append(time.perf_counter() - request.ctx.t0)

    @app.get("/stats")
    async def stats(request: Request) -> HTTPResponse:
        """Server-side times of the recent POSTs (ms): in the handler, and committing their batch
        (with the SQLite lock retries); ``?reset=1`` starts over. For the benchmark."""
        ingestor = parts.get("ingestor")
        store = list(ingestor.timings) if ingestor else []
        out = {"handler_ms": _percentiles([x * 1000 for x in handler_s]),
               "commit_ms": _percentiles([t * 1000 for t, _ in store]),
               "batches": len(store), "lock_retries": sum(r for _, r in store)}
        if request.args.get("reset"):
            handler_s.clear()
            if ingestor:
                ingestor.timings.clear()
        return response.json(out)

    @app.listener("before_server_start")
    async def _start(_app: Any, _loop: Any) -> None:
        store = Store(make_engine(settings.database_url, settings.sqlite_synchronous))
        store.create_tables()
        parts["ingestor"] = Ingestor(store, settings.sqlite_synchronous)
        parts["waker"] = Waker(wake_urls)
        # Keep the long-lived objects of start-up (Sanic, SQLAlchemy, aiohttp) out of the garbage
        # collector's full passes, which would otherwise pause acknowledgements.
        gc.collect()
        gc.freeze()
        logger.info("whatsapp gateway: storing into %s, waking %s", store.engine.url.render_as_string(
            hide_password=True), ", ".join(wake_urls) or "nobody")

    @app.listener("after_server_stop")
    async def _stop(_app: Any, _loop: Any) -> None:
        if "waker" in parts:
            await parts["waker"].close()
        if "ingestor" in parts:
            parts["ingestor"].close()

    return app


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m connectors.whatsapp.gateway", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default=os.environ.get("WHATSAPP_GATEWAY_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("WHATSAPP_GATEWAY_PORT", str(DEFAULT_PORT))))
    ap.add_argument("--wake", default="", help="comma-separated wake URLs (default: WHATSAPP_WAKE_URLS or "
                                               "$RASA_URL/webhooks/whatsapp/wake)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    wake = [u.strip() for u in args.wake.split(",") if u.strip()] or default_wake_urls()
    app = create_app(WhatsAppSettings.from_env(), wake)
    app.run(host=args.host, port=args.port, workers=1, access_log=False, motd=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
