"""A local documentation web site on loopback for crawler tests (stdlib only).

    site = DocSite().start()                      # 127.0.0.1, free port
    site.add("/docs/a.html", "<html>...</html>")  # str or bytes; content type guessed from the suffix
    site.add("/slow.html", body, delay_s=2.0)     # answers after a delay
    site.redirect("/old.html", "/docs/a.html")    # 301
    site.robots("User-agent: *\\nDisallow: /private/")
    site.sitemap("/sitemap.xml", ["/docs/a.html", ...])   # or site.sitemap_index(...)
    site.url("/docs/a.html"); site.requests        # recorded (method, path, headers)
    site.remove("/docs/a.html")                    # now 404

Every page carries an ETag and a Last-Modified header and answers 304 to a matching conditional GET.
``add(..., fail_first=2)`` answers 503 twice before serving the page.
`demo_site(folder)` publishes the Markdown demo documentation as HTML pages with navigation
boilerplate, a sitemap and robots.txt.
"""
from __future__ import annotations

import hashlib
import html
import re
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
                 ".md": "text/markdown; charset=utf-8", ".txt": "text/plain; charset=utf-8",
                 ".pdf": "application/pdf", ".xml": "application/xml"}


@dataclass
class Route:
    body: bytes
    content_type: str
    status: int = 200
    delay_s: float = 0.0
    location: Optional[str] = None
    headers: Dict[str, str] = field(default_factory=dict)
    conditional: bool = True
    fail_first: int = 0  # answer fail_status this many times before serving the page
    fail_status: int = 503
    modified: float = field(default_factory=time.time)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'

    @property
    def last_modified(self) -> str:
        return formatdate(self.modified, usegmt=True)


class DocSite:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.routes: Dict[str, Route] = {}
        self.requests: List[Tuple[str, str, Dict[str, str]]] = []
        self._server: Optional[ThreadingHTTPServer] = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def start(self) -> "DocSite":
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="doc-site", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "DocSite":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ content
    def add(self, path: str, body: str | bytes, content_type: Optional[str] = None, *, status: int = 200,
            delay_s: float = 0.0, headers: Optional[Dict[str, str]] = None, conditional: bool = True,
            fail_first: int = 0, fail_status: int = 503) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        ctype = content_type or CONTENT_TYPES.get(Path(path).suffix.lower(), "text/html; charset=utf-8")
        self.routes[path] = Route(data, ctype, status, delay_s, None, dict(headers or {}), conditional,
                                  fail_first, fail_status)

    def redirect(self, path: str, target: str, status: int = 301) -> None:
        self.routes[path] = Route(b"", "text/html", status, location=target)

    def remove(self, path: str) -> None:
        self.routes.pop(path, None)

    def robots(self, text: str) -> None:
        self.add("/robots.txt", text, "text/plain")

    def sitemap(self, path: str, pages: List[str]) -> None:
        locs = "".join(f"<url><loc>{html.escape(self.url(p))}</loc></url>" for p in pages)
        self.add(path, f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/'
                       f'sitemap/0.9">{locs}</urlset>', "application/xml")

    def sitemap_index(self, path: str, sitemaps: List[str]) -> None:
        locs = "".join(f"<sitemap><loc>{html.escape(self.url(p))}</loc></sitemap>" for p in sitemaps)
        self.add(path, f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/'
                       f'schemas/sitemap/0.9">{locs}</sitemapindex>', "application/xml")

    def hits(self, path: str) -> int:
        return sum(1 for m, p, _ in self.requests if p.split("?")[0] == path and m == "GET")


def _handler(site: DocSite) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            site.requests.append(("GET", self.path, dict(self.headers.items())))
            route = site.routes.get(self.path.split("?")[0])
            if route is None:
                body = b"<html><body><h1>404</h1></body></html>"
                self.send_response(404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if route.delay_s:
                time.sleep(route.delay_s)
            if route.fail_first > 0:
                route.fail_first -= 1
                self.send_response(route.fail_status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.location is not None:
                self.send_response(route.status)
                self.send_header("Location", route.location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.conditional and route.status == 200:
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                if (inm and inm == route.etag) or (not inm and ims and ims == route.last_modified):
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            if route.conditional:
                self.send_header("ETag", route.etag)
                self.send_header("Last-Modified", route.last_modified)
            for k, v in route.headers.items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


# ---------------------------------------------------------------- demo documentation as a web site
def markdown_to_html(markdown: str, nav_links: List[str]) -> str:
    """Just enough Markdown for the demo pages, wrapped in site boilerplate (nav, footer)."""
    text = markdown
    if text.startswith("---"):
        end = text.find("\n---", 3)
        text = text[end + 4:] if end != -1 else text
    title = ""
    body: List[str] = []
    in_list = False
    for line in text.splitlines():
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        item = re.match(r"^\s*(?:-|\d+\.)\s+(.*)$", line)
        if in_list and not item:
            body.append("</ul>")
            in_list = False
        if m:
            level, heading = len(m.group(1)), html.escape(m.group(2).strip())
            title = title or heading
            body.append(f"<h{level}>{heading}</h{level}>")
        elif item:
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{html.escape(item.group(1))}</li>")
        elif line.strip():
            body.append(f"<p>{html.escape(line.strip())}</p>")
    if in_list:
        body.append("</ul>")
    nav = "".join(f'<li><a href="{href}">{html.escape(href.rsplit("/", 1)[-1])}</a></li>' for href in nav_links)
    return (f"<!DOCTYPE html><html lang=\"pt-BR\"><head><meta charset=\"utf-8\"><title>{title}</title></head>"
            f"<body><nav class=\"sidebar\"><ul>{nav}</ul></nav><main>{''.join(body)}</main>"
            f"<footer>Atende Docs © Todos os direitos reservados</footer></body></html>")


def demo_site(folder: Path, prefix: str = "/docs") -> Tuple[DocSite, List[str]]:
    """Publish every Markdown file under folder as HTML at prefix/<relative path>.html.

    Returns the started site and the list of page paths. Adds /sitemap.xml and robots.txt."""
    site = DocSite().start()
    files = sorted(Path(folder).rglob("*.md"))
    paths = [f"{prefix}/{f.relative_to(folder).with_suffix('.html').as_posix()}" for f in files]
    for f, p in zip(files, paths):
        site.add(p, markdown_to_html(f.read_text(encoding="utf-8"), paths[:5]))
    site.sitemap("/sitemap.xml", paths)
    site.robots("User-agent: *\nDisallow: /private/\n")
    return site, paths
