"""Polite HTTP fetching: robots.txt, per-host rate limit, timeouts, retries with backoff,
conditional GET (ETag / Last-Modified), a size cap; plus sitemap reading and prefix crawling."""
from __future__ import annotations

import logging
import random
import threading
import time
import urllib.robotparser
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from bs4 import BeautifulSoup

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_SITEMAP_DEPTH = 5
MAX_SITEMAPS = 200


class FetchError(Exception):
    """A URL could not be fetched. `gone` marks a page that no longer exists (404/410)."""

    def __init__(self, url: str, reason: str, *, gone: bool = False) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.gone = gone


@dataclass
class FetchResult:
    url: str  # final URL after redirects
    status: int
    content: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Fetcher:
    def __init__(self, *, user_agent: str, delay_s: float = 0.5, timeout_s: float = 15.0, max_retries: int = 3,
                 max_bytes: int = 20 * 1024 * 1024, backoff_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.user_agent = user_agent
        self.delay_s = delay_s
        self.max_retries = max_retries
        self.max_bytes = max_bytes
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._client = httpx.Client(
            follow_redirects=True, max_redirects=5, headers={"User-Agent": user_agent},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        )
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._last_hit: dict[str, float] = {}
        self._lock = threading.Lock()
        self.requests = 0

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- politeness
    def _host(self, url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def _robots_for(self, url: str) -> urllib.robotparser.RobotFileParser | None:
        host = self._host(url)
        if host not in self._robots:
            parser: urllib.robotparser.RobotFileParser | None = urllib.robotparser.RobotFileParser()
            try:
                self._wait(host)
                resp = self._client.get(host + "/robots.txt")
                self.requests += 1
                if resp.status_code >= 500:
                    parser.disallow_all = True  # type: ignore[union-attr]
                elif resp.status_code >= 400:
                    parser = None  # no robots.txt: everything allowed
                else:
                    parser.parse(resp.text.splitlines())  # type: ignore[union-attr]
            except httpx.HTTPError as exc:
                log.warning("robots.txt of %s unreachable (%s); proceeding without it", host, exc)
                parser = None
            self._robots[host] = parser
        return self._robots[host]

    def allowed(self, url: str) -> bool:
        parser = self._robots_for(url)
        return True if parser is None else parser.can_fetch(self.user_agent, url)

    def _delay_for(self, host: str) -> float:
        parser = self._robots.get(host)
        delay = None
        if parser is not None:
            try:
                delay = parser.crawl_delay(self.user_agent)
            except Exception:  # pragma: no cover - defensive, robotparser quirks
                delay = None
        return max(self.delay_s, float(delay or 0))

    def _wait(self, host: str) -> None:
        with self._lock:
            last = self._last_hit.get(host)
            now = time.monotonic()
            delay = self._delay_for(host)
            wait = 0.0 if last is None else last + delay - now
            self._last_hit[host] = now + max(wait, 0.0)
        if wait > 0:
            self._sleep(wait)

    # ---------------------------------------------------------------- fetching
    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
              check_robots: bool = True) -> FetchResult:
        if urlsplit(url).scheme not in ("http", "https"):
            raise FetchError(url, "unsupported URL scheme")
        if check_robots and not self.allowed(url):
            raise FetchError(url, "disallowed by robots.txt")
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        host = self._host(url)
        last_error = "unknown error"
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(self.backoff_s * (2 ** (attempt - 1)) * (1 + random.random() * 0.25))
            self._wait(host)
            try:
                result = self._get(url, headers)
            except FetchError:
                raise
            except httpx.TimeoutException as exc:
                last_error = f"timeout ({type(exc).__name__})"
                continue
            except httpx.TransportError as exc:
                last_error = f"network error ({type(exc).__name__}: {exc})"
                continue
            if result.status in RETRY_STATUSES:
                last_error = f"HTTP {result.status}"
                continue
            if result.status in (404, 410):
                raise FetchError(url, f"HTTP {result.status}", gone=True)
            if result.status >= 400:
                raise FetchError(url, f"HTTP {result.status}")
            return result
        raise FetchError(url, f"{last_error} after {self.max_retries + 1} attempts")

    def _get(self, url: str, headers: dict[str, str]) -> FetchResult:
        self.requests += 1
        with self._client.stream("GET", url, headers=headers) as resp:
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise FetchError(url, f"too large ({int(declared)} bytes > {self.max_bytes})")
            body = bytearray()
            if resp.status_code == 200:
                for part in resp.iter_bytes():
                    body.extend(part)
                    if len(body) > self.max_bytes:
                        raise FetchError(url, f"too large (> {self.max_bytes} bytes)")
            return FetchResult(url=str(resp.url), status=resp.status_code, content=bytes(body),
                               content_type=resp.headers.get("content-type"), etag=resp.headers.get("etag"),
                               last_modified=resp.headers.get("last-modified"))

    # ---------------------------------------------------------------- discovery
    def sitemap_urls(self, sitemap_url: str) -> list[str]:
        """All page URLs of a sitemap (or sitemap index), loops and deep nesting cut off."""
        seen_maps: set[str] = set()
        urls: list[str] = []
        seen_urls: set[str] = set()

        def visit(url: str, depth: int) -> None:
            norm = urldefrag(url)[0]
            if norm in seen_maps:
                log.warning("sitemap loop: %s already read; skipped", norm)
                return
            if depth > MAX_SITEMAP_DEPTH or len(seen_maps) >= MAX_SITEMAPS:
                log.warning("sitemap %s nested too deep; skipped", norm)
                return
            seen_maps.add(norm)
            try:
                res = self.fetch(norm)
            except FetchError as exc:
                if depth == 0:
                    raise
                log.warning("sitemap skipped: %s", exc)
                return
            try:
                soup = BeautifulSoup(res.content, "xml")
            except Exception as exc:  # pragma: no cover - lxml is lenient
                raise FetchError(norm, f"invalid sitemap XML: {exc}") from exc
            if soup.find("sitemapindex") is not None:
                for loc in soup.select("sitemap > loc"):
                    visit(urljoin(norm, loc.get_text(strip=True)), depth + 1)
            else:
                locs = soup.select("url > loc")
                if not locs and depth == 0 and soup.find("urlset") is None:
                    raise FetchError(norm, "not a sitemap (no <urlset> or <sitemapindex>)")
                for loc in locs:
                    page = urldefrag(urljoin(norm, loc.get_text(strip=True)))[0]
                    if page not in seen_urls:
                        seen_urls.add(page)
                        urls.append(page)

        visit(sitemap_url, 0)
        return urls

    def crawl(self, start_url: str, prefix: str | None = None, max_pages: int = 5000,
              known: dict[str, tuple[str | None, str | None, list[str]]] | None = None
              ) -> Iterator[tuple[str, FetchResult | FetchError, list[str]]]:
        """Breadth-first crawl from start_url, following links that start with prefix.

        `known` maps URLs to (etag, last_modified, links) from the previous run, so that a
        page answered 304 Not Modified still leads to the pages it links to."""
        prefix = prefix or start_url.rsplit("/", 1)[0] + "/"
        queue: deque[str] = deque([urldefrag(start_url)[0]])
        seen = {queue[0]}
        count = 0
        known = known or {}
        while queue and count < max_pages:
            url = queue.popleft()
            count += 1
            et, lm, old_links = known.get(url, (None, None, []))
            try:
                res = self.fetch(url, etag=et, last_modified=lm)
            except FetchError as exc:
                yield url, exc, []
                continue
            links: list[str] = list(old_links) if res.not_modified else []
            ctype = (res.content_type or "").lower()
            if res.status == 200 and ("html" in ctype or res.content[:200].lstrip().lower().startswith((b"<!doctype", b"<html"))):
                try:
                    soup = BeautifulSoup(res.content, "lxml")
                    links = [urldefrag(urljoin(res.url, a["href"]))[0] for a in soup.find_all("a", href=True)]
                except Exception:  # pragma: no cover - lxml is lenient
                    links = []
            links = [link for link in dict.fromkeys(links) if link.startswith(prefix)]
            yield url, res, links
            for link in links:
                if link not in seen:
                    seen.add(link)
                    queue.append(link)
