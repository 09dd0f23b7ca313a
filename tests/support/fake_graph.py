"""A fake WhatsApp Cloud API (Graph) server on loopback, for tests and benchmarks (stdlib only).

It answers ``POST /{version}/{phone_number_id}/messages`` like Meta does, checks every request
against Meta's limits (token, text <= 4096, reply buttons <= 3 with titles <= 20, lists with
<= 10 rows, titles <= 24, descriptions <= 72, ...) and records each request, with the violations it
found. Errors can be injected (into message sends, not mark-as-read): a Graph error code (130429, 131056, 131047, any 4xx), a 5xx, or a
delay longer than the client's timeout.

Use it in-process (``FakeGraph().start()``) or from another process/env through its control API:
``GET /_fake/requests``, ``POST /_fake/inject`` (JSON ``{"code": 131047, "http_status": 400,
"times": 1}`` or ``{"delay_s": 5, "times": 1}``), ``POST /_fake/reset``.
Run standalone: ``python tests/support/fake_graph.py --port 0`` prints ``FAKE_GRAPH_URL=...``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import queue
import urllib.error
import urllib.request
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

TEXT_MAX = 4096
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
BUTTONS_MAX = 3
INTERACTIVE_BODY_MAX = 1024
LIST_BODY_MAX = 4096
LIST_BUTTON_MAX = 20
LIST_ROWS_MAX = 10
LIST_SECTIONS_MAX = 10
LIST_ROW_ID_MAX = 200
LIST_TITLE_MAX = 24
LIST_DESCRIPTION_MAX = 72
SECTION_TITLE_MAX = 24
CALLBACK_MAX = 512

ERROR_TITLES = {
    130429: "Rate limit hit",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    131047: "Re-engagement message",
    131026: "Message undeliverable",
    100: "Invalid parameter",
    190: "Invalid OAuth access token",
}


@dataclass
class Injection:
    code: Optional[int] = None
    http_status: int = 400
    delay_s: float = 0.0
    times: int = 1


@dataclass
class Recorded:
    path: str
    body: Any
    status: int
    violations: List[str]
    wamid: Optional[str]
    at: float = field(default_factory=time.time)


TEMPLATE_PARAM_MAX = 1024  # a body's text, parameters included, is at most 1,024 characters


def validate_message(body: Any) -> List[str]:
    """Meta's limits for a /messages request; returns the violations (empty when valid)."""
    v: List[str] = []
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    if body.get("messaging_product") != "whatsapp":
        v.append("messaging_product must be 'whatsapp'")
    if body.get("status") == "read":  # mark as read (+ typing indicator)
        if not isinstance(body.get("message_id"), str) or not body["message_id"]:
            v.append("message_id required for status=read")
        ti = body.get("typing_indicator")
        if ti is not None and ti != {"type": "text"}:
            v.append("typing_indicator must be {'type': 'text'}")
        return v
    to = body.get("to") or body.get("recipient")
    if not isinstance(to, str) or not to:
        v.append("'to' is required")
    cb = body.get("biz_opaque_callback_data")
    if cb is not None and (not isinstance(cb, str) or len(cb) > CALLBACK_MAX):
        v.append("biz_opaque_callback_data must be a string <= 512")
    mtype = body.get("type")
    if mtype == "text":
        text = (body.get("text") or {}).get("body")
        if not isinstance(text, str) or not text.strip():
            v.append("text.body must be a non-empty string")
        elif len(text) > TEXT_MAX:
            v.append(f"text.body longer than {TEXT_MAX}")
    elif mtype == "interactive":
        v += _validate_interactive(body.get("interactive"))
    elif mtype in ("image", "document", "audio", "video", "sticker"):
        media = body.get(mtype) or {}
        if not (media.get("link") or media.get("id")):
            v.append(f"{mtype} needs a link or an id")
    elif mtype == "template":
        tpl = body.get("template") or {}
        if not tpl.get("name") or not (tpl.get("language") or {}).get("code"):
            v.append("template needs name and language.code")
        for comp in tpl.get("components") or []:
            for p in (comp or {}).get("parameters") or []:
                value = p.get("text") if isinstance(p, dict) and p.get("type") == "text" else None
                # Meta (132018): a text parameter is non-empty, one line, no tab, no 4+ spaces in a row
                if not isinstance(value, str) or not value.strip() or re.search(r"[\n\t]| {4,}", value):
                    v.append("template text parameter empty or with new lines, tabs or 4+ spaces")
                elif len(value) > TEMPLATE_PARAM_MAX:
                    v.append(f"template text parameter longer than {TEMPLATE_PARAM_MAX}")
    else:
        v.append(f"unsupported message type {mtype!r}")
    return v


def _validate_interactive(inter: Any) -> List[str]:
    v: List[str] = []
    if not isinstance(inter, dict):
        return ["interactive must be an object"]
    itype = inter.get("type")
    body_text = (inter.get("body") or {}).get("text")
    action = inter.get("action") or {}
    if itype == "button":
        if not isinstance(body_text, str) or not body_text.strip() or len(body_text) > INTERACTIVE_BODY_MAX:
            v.append(f"button body.text must be 1..{INTERACTIVE_BODY_MAX} characters")
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= BUTTONS_MAX:
            return v + [f"action.buttons must have 1..{BUTTONS_MAX} items"]
        ids, titles = set(), set()
        for b in buttons:
            reply = (b or {}).get("reply") or {}
            bid, title = reply.get("id"), reply.get("title")
            if b.get("type") != "reply":
                v.append("button type must be 'reply'")
            if not isinstance(bid, str) or not bid or len(bid) > BUTTON_ID_MAX:
                v.append("button id must be 1..256 characters")
            if not isinstance(title, str) or not title or len(title) > BUTTON_TITLE_MAX:
                v.append(f"button title {title!r} must be 1..{BUTTON_TITLE_MAX} characters")
            if bid in ids or title in titles:
                v.append("button ids and titles must be unique")
            ids.add(bid)
            titles.add(title)
    elif itype == "list":
        if not isinstance(body_text, str) or not body_text.strip() or len(body_text) > LIST_BODY_MAX:
            v.append(f"list body.text must be 1..{LIST_BODY_MAX} characters")
        label = action.get("button")
        if not isinstance(label, str) or not label or len(label) > LIST_BUTTON_MAX:
            v.append(f"list action.button must be 1..{LIST_BUTTON_MAX} characters")
        sections = action.get("sections")
        if not isinstance(sections, list) or not 1 <= len(sections) <= LIST_SECTIONS_MAX:
            return v + ["action.sections must have 1..10 items"]
        rows_total, ids = 0, set()
        for s in sections:
            st = s.get("title")
            if len(sections) > 1 and not st:
                v.append("section title required when there are several sections")
            if st is not None and (not isinstance(st, str) or len(st) > SECTION_TITLE_MAX):
                v.append(f"section title must be <= {SECTION_TITLE_MAX} characters")
            for row in s.get("rows") or []:
                rows_total += 1
                rid, title, desc = row.get("id"), row.get("title"), row.get("description")
                if not isinstance(rid, str) or not rid or len(rid) > LIST_ROW_ID_MAX or rid in ids:
                    v.append("row ids must be unique, 1..200 characters")
                ids.add(rid)
                if not isinstance(title, str) or not title or len(title) > LIST_TITLE_MAX:
                    v.append(f"row title {title!r} must be 1..{LIST_TITLE_MAX} characters")
                if desc is not None and (not isinstance(desc, str) or len(desc) > LIST_DESCRIPTION_MAX):
                    v.append(f"row description must be <= {LIST_DESCRIPTION_MAX} characters")
        if not 1 <= rows_total <= LIST_ROWS_MAX:
            v.append(f"a list must have 1..{LIST_ROWS_MAX} rows in all")
    elif itype == "request_contact_info":
        # Meta: asks a user (e.g. one known only by a BSUID) to share their phone; fixed button text
        if not isinstance(body_text, str) or not body_text.strip() or len(body_text) > INTERACTIVE_BODY_MAX:
            v.append(f"request_contact_info body.text must be 1..{INTERACTIVE_BODY_MAX} characters")
        if action.get("name") != "request_contact_info":
            v.append("request_contact_info action.name must be 'request_contact_info'")
    else:
        v.append(f"unsupported interactive type {itype!r}")
    for part, limit in (("header", 60), ("footer", 60)):
        text = (inter.get(part) or {}).get("text")
        if text is not None and len(text) > limit:
            v.append(f"{part}.text longer than {limit}")
    return v


def graph_error(code: int, message: Optional[str] = None) -> Dict[str, Any]:
    return {"error": {"message": message or ERROR_TITLES.get(code, "Error"), "type": "OAuthException",
                      "code": code, "error_data": {"messaging_product": "whatsapp",
                                                   "details": message or ERROR_TITLES.get(code, "Error")},
                      "fbtrace_id": uuid.uuid4().hex[:20]}}


class _JsonHandler(BaseHTTPRequestHandler):
    """Keep-alive JSON request handler shared by the fake Graph API and the fake Z-API."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _body(self) -> Tuple[bytes, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            return raw, json.loads(raw or b"null")
        except ValueError:
            return raw, None


class FakeGraph:
    def __init__(self, access_token: str = "test-token", phone_number_id: str = "1122334455667",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.lock = threading.Lock()
        self.requests: List[Recorded] = []
        self.injections: List[Injection] = []
        fake = self

        class Handler(_JsonHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/_fake/requests"):
                    with fake.lock:
                        self._send(200, [r.__dict__ for r in fake.requests])
                else:
                    self._send(404, graph_error(100, "Unknown path"))

            def do_POST(self) -> None:  # noqa: N802
                raw, body = self._body()
                if self.path == "/_fake/inject":
                    fake.inject(**(body or {}))
                    self._send(200, {"ok": True})
                    return
                if self.path == "/_fake/reset":
                    fake.reset()
                    self._send(200, {"ok": True})
                    return
                status, payload = fake.handle(self.path, self.headers.get("Authorization"), body)
                if status == -1:  # injected timeout: the connection is simply dropped late
                    self.close_connection = True
                    return
                self._send(status, payload)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002
                pass  # a client that goes away (e.g. a killed Rasa server) is not an error here

        self.server = Server((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None
        self._echo: Optional[Tuple[str, str]] = None
        self._echo_retry_for_s = 300.0
        self._echo_queue: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self._echo_inflight = 0

    def echo_statuses(self, webhook_url: str, app_secret: str, retry_for_s: float = 300.0,
                      concurrency: int = 16) -> None:
        """Like Meta: after each accepted send, POST a signed "sent" status (echoing
        biz_opaque_callback_data) to the webhook, retrying while it is down. Meta delivers webhooks
        concurrently, so ``concurrency`` threads deliver (and retry) statuses in parallel: one
        status waiting on a down webhook does not hold the others back."""
        self._echo = (webhook_url, app_secret)
        self._echo_retry_for_s = retry_for_s
        for _ in range(max(1, concurrency)):
            threading.Thread(target=self._echo_loop, daemon=True).start()

    def set_echo_target(self, webhook_url: str) -> None:
        """Send the next status deliveries (and retries) to another webhook URL."""
        assert self._echo is not None
        self._echo = (webhook_url, self._echo[1])

    def echo_backlog(self) -> int:
        """Statuses not yet delivered (queued or being retried)."""
        with self.lock:
            return self._echo_queue.qsize() + self._echo_inflight

    def _echo_loop(self) -> None:
        while True:
            status = self._echo_queue.get()
            with self.lock:
                self._echo_inflight += 1
            try:
                self._echo_one(status)
            finally:
                with self.lock:
                    self._echo_inflight -= 1

    def _echo_one(self, status: Dict[str, Any]) -> None:
        assert self._echo is not None
        secret = self._echo[1]
        doc = {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {
                "display_phone_number": "551140040000", "phone_number_id": self.phone_number_id},
                "statuses": [status]}}]}]}
        body = json.dumps(doc).encode()
        sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        deadline = time.time() + self._echo_retry_for_s
        while time.time() < deadline:
            url = self._echo[0]
            req = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": sig})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeGraph":
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeGraph":
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()

    def inject(self, code: Optional[int] = None, http_status: Optional[int] = None, delay_s: float = 0.0,
               times: int = 1) -> None:
        if http_status is None:
            http_status = 429 if code == 130429 else 400
        with self.lock:
            self.injections.append(Injection(code, http_status, delay_s, times))

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.injections.clear()

    def handle(self, path: str, auth: Optional[str], body: Any) -> Tuple[int, Any]:
        m = re.fullmatch(r"/(v\d+\.\d+)/([^/]+)/messages", path)
        wamid: Optional[str] = None
        if not m:
            status, payload, violations = 404, graph_error(100, f"Unknown path {path}"), ["unknown path"]
        elif auth != f"Bearer {self.access_token}":
            status, payload, violations = 401, graph_error(190), ["bad access token"]
        elif m.group(2) != self.phone_number_id:
            status, payload, violations = 400, graph_error(100, "Unknown phone number id"), ["wrong phone number id"]
        else:
            violations = validate_message(body)
            is_read = isinstance(body, dict) and body.get("status") == "read"
            injection = self._take_injection() if not violations and not is_read else None
            if violations:
                status, payload = 400, graph_error(100, "; ".join(violations))
            elif injection is not None and injection.delay_s:
                self._record(path, body, -1, ["injected timeout"], None)
                time.sleep(injection.delay_s)
                return -1, None
            elif injection is not None:
                code = injection.code or 0
                status = injection.http_status
                payload = graph_error(code) if code else {"error": {"message": "Injected", "code": 2}}
            elif body.get("status") == "read":
                status, payload = 200, {"success": True}
            else:
                wamid = f"wamid.{uuid.uuid4().hex}"
                to = body.get("to")
                user_id = body.get("recipient") if to is None else None  # a send to a BSUID
                contact = {"input": to, "wa_id": to} if to is not None else {"input": user_id, "user_id": user_id}
                status, payload = 200, {"messaging_product": "whatsapp",
                                        "contacts": [contact], "messages": [{"id": wamid}]}
                if self._echo is not None:
                    st: Dict[str, Any] = {"id": wamid, "status": "sent", "timestamp": str(int(time.time()))}
                    st.update({"recipient_id": to} if to is not None else {"recipient_user_id": user_id})
                    if body.get("biz_opaque_callback_data"):
                        st["biz_opaque_callback_data"] = body["biz_opaque_callback_data"]
                    self._echo_queue.put(st)
        self._record(path, body, status, violations, wamid)
        return status, payload

    def _take_injection(self) -> Optional[Injection]:
        with self.lock:
            if not self.injections:
                return None
            inj = self.injections[0]
            inj.times -= 1
            if inj.times <= 0:
                self.injections.pop(0)
            return inj

    def _record(self, path: str, body: Any, status: int, violations: List[str], wamid: Optional[str]) -> None:
        with self.lock:
            self.requests.append(Recorded(path, body, status, violations, wamid))

    # ---- helpers for tests -------------------------------------------------------------------
    def sent(self) -> List[Recorded]:
        """Accepted message sends (not mark-as-read)."""
        with self.lock:
            return [r for r in self.requests if r.status == 200 and isinstance(r.body, dict)
                    and r.body.get("status") != "read"]

    def reads(self) -> List[Recorded]:
        with self.lock:
            return [r for r in self.requests if isinstance(r.body, dict) and r.body.get("status") == "read"]

    def violations(self) -> List[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.violations and r.violations != ["injected timeout"]]

    def wait_for_sent(self, n: int, timeout: float = 20.0) -> List[Recorded]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            sent = self.sent()
            if len(sent) >= n:
                return sent
            time.sleep(0.05)
        return self.sent()

    def texts_to(self, to: str) -> List[str]:
        """The text of every accepted send to one recipient (text body or interactive body)."""
        out: List[str] = []
        for r in self.sent():
            if (r.body.get("to") or r.body.get("recipient")) != to:
                continue
            if r.body.get("type") == "text":
                out.append(r.body["text"]["body"])
            elif r.body.get("type") == "interactive":
                out.append(r.body["interactive"]["body"]["text"])
        return out

    def wait_texts(self, to: str, n: int, timeout: float = 20.0) -> List[str]:
        """Wait until `n` texts were sent to `to` (or the timeout); returns what was sent."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.texts_to(to)
            if len(got) >= n:
                return got
            time.sleep(0.05)
        return self.texts_to(to)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default="test-token")
    ap.add_argument("--phone-number-id", default="1122334455667")
    args = ap.parse_args()
    fake = FakeGraph(args.token, args.phone_number_id, port=args.port)
    print(f"FAKE_GRAPH_URL={fake.base_url}", flush=True)
    fake.server.serve_forever()


if __name__ == "__main__":
    main()


class FakeZapi:
    """A fake Z-API (z-api.io) on loopback: ``POST /instances/{id}/token/{token}/{endpoint}`` with the
    ``Client-Token`` header, for the endpoints the connector uses (send-text, send-button-list,
    send-option-list, send-image, send-document/{ext}, read-message). Each request is checked
    (credentials, phone, non-empty message, 1..3 buttons with id and label, 1..10 options) and
    recorded; ``inject(http_status, times)`` makes the next sends fail."""

    def __init__(self, instance_id: str = "INST1", instance_token: str = "itoken", client_token: str = "ctoken",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.instance_id, self.instance_token, self.client_token = instance_id, instance_token, client_token
        self.lock = threading.Lock()
        self.requests: List[Recorded] = []
        self.injections: List[Injection] = []
        fake = self

        class Handler(_JsonHandler):
            def do_POST(self) -> None:  # noqa: N802
                _raw, body = self._body()
                self._send(*fake.handle(self.path, self.headers.get("Client-Token"), body))

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeZapi":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def inject(self, http_status: int, times: int = 1) -> None:
        with self.lock:
            self.injections.append(Injection(None, http_status, 0.0, times))

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.injections.clear()

    @staticmethod
    def validate(endpoint: str, body: Any) -> List[str]:
        v: List[str] = []
        if not isinstance(body, dict):
            return ["body is not a JSON object"]
        # the number, or a contact's LID (developer.z-api.io/en/tips/lid: "999999999999999@lid")
        if not re.fullmatch(r"\d{10,15}|\d{1,32}@lid", str(body.get("phone") or "")):
            v.append("phone must be 10..15 digits or a LID (digits@lid)")
        if endpoint == "read-message":
            return v + ([] if body.get("messageId") else ["messageId required"])
        if endpoint in ("send-text", "send-button-list", "send-option-list"):
            msg = body.get("message")
            if not isinstance(msg, str) or not msg.strip():
                v.append("message must be a non-empty string")
        if endpoint == "send-button-list":
            buttons = (body.get("buttonList") or {}).get("buttons")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
                v.append("buttonList.buttons must have 1..3 items")
            elif not all(isinstance(b, dict) and b.get("id") and b.get("label") for b in buttons):
                v.append("every button needs an id and a label")
        elif endpoint == "send-option-list":
            ol = body.get("optionList") or {}
            options = ol.get("options")
            if not ol.get("title") or not ol.get("buttonLabel"):
                v.append("optionList needs title and buttonLabel")
            if not isinstance(options, list) or not 1 <= len(options) <= 10:
                v.append("optionList.options must have 1..10 items")
            elif not all(isinstance(o, dict) and o.get("id") and o.get("title") for o in options):
                v.append("every option needs an id and a title")
        elif endpoint == "send-image":
            if not body.get("image"):
                v.append("image required")
        elif endpoint.startswith("send-document/"):
            if not body.get("document"):
                v.append("document required")
        elif endpoint != "send-text":
            v.append(f"unknown endpoint {endpoint}")
        return v

    def handle(self, path: str, client_token: Optional[str], body: Any) -> Tuple[int, Any]:
        m = re.fullmatch(r"/instances/([^/]+)/token/([^/]+)/(.+)", path)
        mid: Optional[str] = None
        if not m or (m.group(1), m.group(2)) != (self.instance_id, self.instance_token):
            status, payload, violations = 404, {"error": "Instance not found"}, ["unknown instance"]
        elif client_token != self.client_token:
            status, payload, violations = 401, {"error": "Client-Token not allowed"}, ["bad client token"]
        else:
            endpoint = m.group(3)
            violations = self.validate(endpoint, body)
            injection = None
            if not violations and endpoint != "read-message":
                with self.lock:
                    if self.injections:
                        injection = self.injections[0]
                        injection.times -= 1
                        if injection.times <= 0:
                            self.injections.pop(0)
            if violations:
                status, payload = 400, {"error": "; ".join(violations)}
            elif injection is not None:
                status, payload = injection.http_status, {"error": "injected", "message": "Injected failure"}
            elif endpoint == "read-message":
                status, payload = 200, {"value": True}
            else:
                mid = uuid.uuid4().hex.upper()[:32]
                status, payload = 200, {"zaapId": uuid.uuid4().hex.upper(), "messageId": mid, "id": mid}
        with self.lock:
            self.requests.append(Recorded(path, body, status, violations, mid))
        return status, payload

    def sent(self) -> List[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.status == 200 and not r.path.endswith("/read-message")]

    def messages_to(self, phone: str) -> List[Tuple[str, str]]:
        """(endpoint, message) of every accepted send to ``phone``."""
        return [(r.path.rsplit("/token/", 1)[1].split("/", 1)[1], r.body.get("message", ""))
                for r in self.sent() if r.body.get("phone") == phone]

    def wait_messages(self, phone: str, n: int, timeout: float = 20.0) -> List[Tuple[str, str]]:
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.messages_to(phone)) < n:
            time.sleep(0.05)
        return self.messages_to(phone)
