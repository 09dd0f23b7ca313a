"""A fake OpenAI-compatible chat-completions server on loopback, for tests (stdlib only).

In-process use::

    with FakeOpenAI() as llm:                       # binds 127.0.0.1 on a free port
        os.environ["OPENAI_BASE_URL"] = llm.url       # "http://127.0.0.1:PORT/v1"
        llm.set_reply("Resposta citando [1].")       # next reply (queued, used once)
        llm.default_reply = "..."                     # reply when the queue is empty
        llm.reply_fn = lambda body: "..."            # or compute the reply from the request
        llm.default_delay_s = 1.0                     # every reply not queued with its own delay waits 1 s
        llm.max_concurrent                            # most requests seen in flight at once
        ...
        llm.requests[-1].json["messages"]            # every request is recorded
        llm.last_messages()                          # shortcut for the last chat messages
        llm.requests[-1].headers["authorization"]    # header names are lowercased

``set_reply(content, status=200, delay_s=0.0, error=None)`` queues one reply; a status other than
200 answers an OpenAI-style error body. Streaming requests (``"stream": true``) get SSE chunks.

From another process: ``python -m loopback.openai_api --port 0`` prints
``FAKE_OPENAI_URL=http://127.0.0.1:PORT/v1``; control it through ``GET /_fake/requests``,
``POST /_fake/reply`` (JSON ``{"content": "...", "status": 200, "delay_s": 0}``) and
``POST /_fake/reset``.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Deque, Dict, List, Optional

DEFAULT_REPLY = "NAO_ENCONTRADO"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: Dict[str, str]
    json: Any
    at: float = field(default_factory=time.time)


@dataclass
class Reply:
    content: Optional[str] = None
    status: int = 200
    delay_s: float = 0.0
    error: Optional[str] = None


class FakeOpenAI:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, default_reply: str = DEFAULT_REPLY) -> None:
        self.host = host
        self.port = port
        self.default_reply = default_reply
        # seconds every reply waits before it is sent, unless queued with its own delay_s (a slow LLM)
        self.default_delay_s = 0.0
        self.in_flight = 0
        self.max_concurrent = 0
        self.reply_fn: Optional[Callable[[Any], str]] = None
        self.requests: List[RecordedRequest] = []
        self._queue: Deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """Base URL for OPENAI_BASE_URL (ends in /v1)."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> "FakeOpenAI":
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ control
    def set_reply(self, content: Optional[str] = None, *, status: int = 200, delay_s: float = 0.0,
                  error: Optional[str] = None) -> None:
        """Queue the next reply (each queued reply is used once, in order)."""
        with self._lock:
            self._queue.append(Reply(content, status, delay_s, error))

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.reply_fn = None
            self.default_delay_s = 0.0
            self.max_concurrent = 0

    def chat_requests(self) -> List[RecordedRequest]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    def last_messages(self) -> List[Dict[str, Any]]:
        reqs = self.chat_requests()
        if not reqs:
            raise AssertionError("the fake OpenAI server received no chat completion request")
        return list(reqs[-1].json.get("messages", []))

    def _next(self, body: Any) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            fn = self.reply_fn
        return Reply(fn(body) if fn else self.default_reply, delay_s=self.default_delay_s)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _usage(body: Any, content: str) -> Dict[str, int]:
    """Token counts as a provider reports them (here: about 4 characters per token)."""
    prompt = sum(len(str(m.get("content", ""))) for m in (body or {}).get("messages", []) if isinstance(m, dict))
    p, c = max(1, prompt // 4), max(1, len(content) // 4)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _completion(model: str, content: str, body: Any = None) -> Dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": _usage(body, content),
    }


def _handler(fake: FakeOpenAI) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                self.close_connection = True

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                return {"_raw": raw.decode("utf-8", "replace")}

        def do_GET(self) -> None:
            if self.path.startswith("/_fake/requests"):
                self._send(200, [r.__dict__ for r in fake.requests])
            elif self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            body = self._body()
            if self.path.startswith("/_fake/reply"):
                b = body or {}
                fake.set_reply(b.get("content"), status=int(b.get("status", 200)),
                               delay_s=float(b.get("delay_s", 0)), error=b.get("error"))
                self._send(200, {"ok": True})
                return
            if self.path.startswith("/_fake/reset"):
                fake.reset()
                self._send(200, {"ok": True})
                return
            fake.requests.append(RecordedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"unknown path {self.path}"}})
                return
            reply = fake._next(body)
            delay = reply.delay_s or fake.default_delay_s
            if delay:
                fake._enter()
                try:
                    time.sleep(delay)
                finally:
                    fake._leave()
            if reply.status != 200:
                self._send(reply.status, {"error": {"message": reply.error or "fake error", "type": "server_error",
                                                    "code": reply.status}})
                return
            model = (body or {}).get("model", "fake-model")
            content = reply.content if reply.content is not None else fake.default_reply
            if (body or {}).get("stream"):
                chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                         "model": model,
                         "choices": [{"index": 0, "delta": {"role": "assistant", "content": content},
                                      "finish_reason": None}]}
                end = dict(chunk, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
                data = f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode()
                self._send(200, data, "text/event-stream")
                return
            self._send(200, _completion(model, content, body))

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="default reply content")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds every reply waits (a slow LLM)")
    args = parser.parse_args()
    fake = FakeOpenAI(args.host, args.port, args.reply)
    fake.default_delay_s = args.delay
    fake.start()
    print(f"FAKE_OPENAI_URL={fake.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
