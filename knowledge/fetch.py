"""Polite HTTP fetching: robots.txt, per-host rate limit, timeouts, retries with backoff,
conditional GET (ETag / Last-Modified), a size cap; plus sitemap reading and prefix crawling.

Every request stays within a set of hosts (a source's own hosts) and goes through the network
guard (`knowledge.netguard`): redirects are followed here, hop by hop, each hop checked again.

Size: one fetcher for folders, sitemaps and crawled sites, sharing the politeness, retry and size
rules (and the network guard) that must apply to all of them.
"""
from __future__ import annotations

import logging
import random
import threading
import time
import urllib.robotparser
from collections import deque
from dataclasses import dataclass
from typing import Callable, Collection, Iterable, Iterator
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from bs4 import BeautifulSoup

from .netguard import NetGuard, Refused, guarded_transport, url_host

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
MAX_SITEMAP_DEPTH = 5
MAX_SITEMAPS = 200


class FetchError(Exception):
    """A URL could not be fetched. `gone` marks a page that no longer exists (404/410); `refused`
    a URL or address the network guard does not allow (never retried), `redirected` when that
    was a redirect target rather than the URL itself."""

    def __init__(self, url: str, reason: str, *, gone: bool = False, refused: bool = False,
                 redirected: bool = False) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.gone = gone
        self.refused = refused
        self.redirected = redirected


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
                 sleep: Callable[[float], None] = time.sleep, allowed_private_hosts: Iterable[str] = ()) -> None:
        self.user_agent = user_agent
        self.delay_s = delay_s
        self.max_retries = max_retries
        self.max_bytes = max_bytes
        self.backoff_s = backoff_s
        self._sleep = sleep
        self.guard = NetGuard(allowed_private_hosts)
        self._client = httpx.Client(
            transport=guarded_transport(self.guard), follow_redirects=False, headers={"User-Agent": user_agent},
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

    def _robots_for(self, url: str, hosts: Collection[str]) -> urllib.robotparser.RobotFileParser | None:
        host = self._host(url)
        if host not in self._robots:
            parser: urllib.robotparser.RobotFileParser | None = urllib.robotparser.RobotFileParser()
            try:
                self._wait(host)
                resp = self._request(host + "/robots.txt", {}, hosts)
                if resp.status >= 500:
                    parser.disallow_all = True  # type: ignore[union-attr]
                elif resp.status >= 400 or resp.status in REDIRECT_STATUSES:
                    parser = None  # no robots.txt: everything allowed
                else:
                    parser.parse(resp.content.decode("utf-8", "replace").splitlines())  # type: ignore[union-attr]
            except FetchError as exc:
                if exc.refused and not exc.redirected:
                    raise FetchError(url, exc.reason, refused=True) from None  # the host itself is refused
                log.warning("robots.txt of %s unreachable (%s); proceeding without it", host, exc.reason)
                parser = None
            except httpx.HTTPError as exc:
                log.warning("robots.txt of %s unreachable (%s); proceeding without it", host, exc)
                parser = None
            self._robots[host] = parser
        return self._robots[host]

    def allowed(self, url: str, hosts: Collection[str] | None = None) -> bool:
        parser = self._robots_for(url, self._scope(url, hosts))
        return True if parser is None else parser.can_fetch(self.user_agent, url)

    def _scope(self, url: str, hosts: Collection[str] | None) -> Collection[str]:
        """The hosts a request for url may reach: the given ones, else url's own host."""
        if hosts is not None:
            return hosts
        try:
            return {url_host(url)}
        except Refused as exc:
            raise FetchError(url, f"refused: {exc}", refused=True) from None

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
              check_robots: bool = True, hosts: Collection[str] | None = None) -> FetchResult:
        """GET url. hosts: where the request and its redirects may go (default: url's own host)."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise FetchError(url, "unsupported URL scheme")
        scope = self._scope(url, hosts)
        try:
            self.guard.check_url(url, scope)
        except Refused as exc:
            raise FetchError(url, f"refused: {exc}", refused=True) from None
        if check_robots and not self.allowed(url, scope):
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
                result = self._request(url, headers, scope)
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

    def _request(self, url: str, headers: dict[str, str], hosts: Collection[str]) -> FetchResult:
        """One GET with redirects followed by hand: every hop must stay within hosts and pass the
        network guard again (its address is checked when its connection opens)."""
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            try:
                if hop:
                    self.guard.check_url(current, hosts)
                self.requests += 1
                with self._client.stream("GET", current, headers=headers) as resp:
                    location = resp.headers.get("location")
                    if resp.status_code in REDIRECT_STATUSES and location:
                        current = urldefrag(urljoin(str(resp.url), location.strip()))[0]
                        continue
                    return self._read(url, resp)
            except Refused as exc:
                where = f" redirect to {current}" if hop else ""
                raise FetchError(url, f"refused{where}: {exc}", refused=True, redirected=bool(hop)) from None
        raise FetchError(url, f"too many redirects (more than {MAX_REDIRECTS})")

    def _read(self, url: str, resp: httpx.Response) -> FetchResult:
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
    def _in_scope(self, url: str, hosts: Collection[str], found_in: str) -> bool:
        """Whether url is on one of hosts; a URL elsewhere is logged and never requested."""
        try:
            self.guard.check_url(url, hosts)
            return True
        except Refused as exc:
            log.warning("%s lists %s: %s; skipped (not fetched)", found_in, url, exc)
            return False

    def sitemap_urls(self, sitemap_url: str, hosts: Collection[str] | None = None) -> list[str]:
        """All page URLs of a sitemap (or sitemap index), loops and deep nesting cut off.

        Sitemaps and pages on hosts other than `hosts` (default: the sitemap's own host) are
        skipped with a warning, never fetched."""
        scope = self._scope(sitemap_url, hosts)
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
                res = self.fetch(norm, hosts=scope)
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
                    child = urljoin(norm, loc.get_text(strip=True))
                    if self._in_scope(child, scope, f"sitemap {norm}"):
                        visit(child, depth + 1)
            else:
                locs = soup.select("url > loc")
                if not locs and depth == 0 and soup.find("urlset") is None:
                    raise FetchError(norm, "not a sitemap (no <urlset> or <sitemapindex>)")
                for loc in locs:
                    page = urldefrag(urljoin(norm, loc.get_text(strip=True)))[0]
                    if page not in seen_urls and self._in_scope(page, scope, f"sitemap {norm}"):
                        seen_urls.add(page)
                        urls.append(page)

        visit(sitemap_url, 0)
        return urls

    def crawl(self, start_url: str, prefix: str | None = None, max_pages: int = 5000,
              known: dict[str, tuple[str | None, str | None, list[str]]] | None = None,
              hosts: Collection[str] | None = None) -> Iterator[tuple[str, FetchResult | FetchError, list[str]]]:
        """Breadth-first crawl from start_url, following links that start with prefix.

        `known` maps URLs to (etag, last_modified, links) from the previous run, so that a
        page answered 304 Not Modified still leads to the pages it links to. Requests stay on
        `hosts` (default: the start URL's host); a link elsewhere is logged and skipped."""
        prefix = prefix or start_url.rsplit("/", 1)[0] + "/"
        try:
            scope = self._scope(start_url, hosts)
        except FetchError as exc:
            yield start_url, exc, []
            return
        queue: deque[str] = deque([urldefrag(start_url)[0]])
        seen = {queue[0]}
        count = 0
        known = known or {}
        while queue and count < max_pages:
            url = queue.popleft()
            count += 1
            et, lm, old_links = known.get(url, (None, None, []))
            try:
                res = self.fetch(url, etag=et, last_modified=lm, hosts=scope)
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
            links = [link for link in dict.fromkeys(links)
                     if link.startswith(prefix) and self._in_scope(link, scope, f"page {url}")]
            yield url, res, links
            for link in links:
                if link not in seen:
                    seen.add(link)
                    queue.append(link)
