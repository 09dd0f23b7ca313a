"""Sources file and the polite fetcher against a real loopback web site (no model needed)."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from knowledge.fetch import Fetcher, FetchError
from knowledge.sources import SourcesError, load_sources, source_for_path
from tests.knowledge.conftest import DEMO_SOURCES, LOOPBACK_ALLOWANCE
from tests.support.doc_site import DocSite

UA = "AtendeTestBot/1.0"


def _fetcher(**kw: object) -> tuple[Fetcher, list[float]]:
    sleeps: list[float] = []
    f = Fetcher(user_agent=UA, delay_s=kw.pop("delay_s", 0.0), timeout_s=kw.pop("timeout_s", 2.0),  # type: ignore[arg-type]
                max_retries=kw.pop("max_retries", 2), backoff_s=0.01, sleep=sleeps.append,  # type: ignore[arg-type]
                allowed_private_hosts=LOOPBACK_ALLOWANCE, **kw)  # the loopback doc site is allowed
    return f, sleeps


def test_demo_sources_file_declares_both_products() -> None:
    specs = load_sources(DEMO_SOURCES)
    # and the console's approved articles (their product comes from each article's module)
    assert [s.name for s in specs if s.articles] == ["artigos"]
    specs = [s for s in specs if not s.articles]
    assert {s.product for s in specs} == {"erp", "omni"}
    for s in specs:
        assert s.folder is not None and s.folder.is_dir() and s.module_from_subdir
    pages = [p for s in specs for p in s.folder.rglob("*") if p.suffix in (".md", ".html", ".pdf")]  # type: ignore[union-attr]
    assert len(pages) >= 40
    assert any(p.suffix == ".pdf" for p in pages) and any(p.suffix == ".html" for p in pages)


@pytest.mark.parametrize("content,message", [
    ("sources: [{name: a, product: erp}]", "needs at least one"),
    ("sources: [{name: a, folder: x, colour: red}]", "unknown keys"),
    ("sources: [{name: a, sitemap: 'ftp://x/s.xml'}]", "http"),
    ("sources: [{name: a, product: 'ERP Grande', folder: x}]", "lowercase code"),
    ("sources: [{name: a, folder: x}, {name: a, folder: y}]", "duplicate"),
    ("sources: [{name: a, urls: ['http://h/a'], allow_private_network: 'sim'}]", "true or false"),
    ("fontes: []", "top-level"),
    ("sources: [unclosed", "invalid YAML"),
])
def test_bad_sources_file_gives_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "s.yml"
    f.write_text(content)
    with pytest.raises(SourcesError, match=message):
        load_sources(f)


def test_missing_sources_file_and_path(tmp_path: Path) -> None:
    with pytest.raises(SourcesError, match="not found"):
        load_sources(tmp_path / "nope.yml")
    with pytest.raises(SourcesError, match="not found"):
        source_for_path(str(tmp_path / "nope"))
    assert source_for_path("http://h/docs/sitemap.xml").sitemap == "http://h/docs/sitemap.xml"
    assert source_for_path("http://h/docs/", "erp").start_url == "http://h/docs/"


def test_robots_txt_is_respected_and_rate_limit_applies() -> None:
    with DocSite() as site:
        site.robots("User-agent: *\nDisallow: /private/\nCrawl-delay: 5\n")
        site.add("/a.html", "<p>a</p>")
        site.add("/private/b.html", "<p>b</p>")
        f, sleeps = _fetcher()
        with f:
            assert f.fetch(site.url("/a.html")).status == 200
            with pytest.raises(FetchError, match="robots"):
                f.fetch(site.url("/private/b.html"))
            f.fetch(site.url("/a.html"))
        assert site.hits("/private/b.html") == 0
        assert site.hits("/robots.txt") == 1  # cached per host
        assert sleeps and max(sleeps) > 4  # robots Crawl-delay honoured between requests


def test_conditional_get_returns_not_modified() -> None:
    with DocSite() as site:
        site.add("/a.html", "<p>conteúdo</p>")
        with _fetcher()[0] as f:
            first = f.fetch(site.url("/a.html"))
            assert first.etag and first.last_modified
            again = f.fetch(site.url("/a.html"), etag=first.etag, last_modified=first.last_modified)
            assert again.not_modified and again.content == b""
        headers = site.requests[-1][2]
        assert headers.get("If-None-Match") == first.etag


def test_retries_with_backoff_then_success_and_then_give_up() -> None:
    with DocSite() as site:
        site.add("/flaky.html", "<p>ok</p>", fail_first=2)
        site.add("/down.html", "<p>never</p>", fail_first=99)
        f, sleeps = _fetcher(max_retries=2)
        with f:
            assert f.fetch(site.url("/flaky.html")).status == 200
            backoffs = list(sleeps)
            assert len(backoffs) == 2 and backoffs[1] > backoffs[0]  # exponential
            with pytest.raises(FetchError, match="HTTP 503 after 3 attempts"):
                f.fetch(site.url("/down.html"))
        assert site.hits("/flaky.html") == 3


def test_not_found_is_marked_gone_and_redirect_followed() -> None:
    with DocSite() as site:
        site.add("/new.html", "<p>novo</p>")
        site.redirect("/old.html", "/new.html")
        with _fetcher()[0] as f:
            with pytest.raises(FetchError) as err:
                f.fetch(site.url("/missing.html"))
            assert err.value.gone
            assert f.fetch(site.url("/old.html")).url == site.url("/new.html")


def test_timeout_on_slow_page_and_unreachable_host() -> None:
    with DocSite() as site:
        site.add("/slow.html", "<p>devagar</p>", delay_s=1.5)
        with _fetcher(timeout_s=0.5, max_retries=1)[0] as f:
            with pytest.raises(FetchError, match="timeout"):
                f.fetch(site.url("/slow.html"), check_robots=False)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with _fetcher(max_retries=1)[0] as f:
        with pytest.raises(FetchError, match="network error"):
            f.fetch(f"http://127.0.0.1:{port}/x.html")


def test_oversized_download_is_refused() -> None:
    big = b"<p>" + b"x" * (3 * 1024 * 1024) + b"</p>"
    with DocSite() as site:
        site.add("/big.html", big)
        with _fetcher(max_bytes=1024 * 1024)[0] as f:
            with pytest.raises(FetchError, match="too large"):
                f.fetch(site.url("/big.html"))


def test_looping_sitemap_index_terminates_with_each_page_once() -> None:
    with DocSite() as site:
        site.sitemap_index("/sitemap.xml", ["/s1.xml", "/s2.xml"])
        site.sitemap_index("/s2.xml", ["/sitemap.xml", "/s1.xml"])  # loops back
        site.sitemap("/s1.xml", ["/a.html", "/b.html", "/a.html"])
        with _fetcher()[0] as f:
            urls = f.sitemap_urls(site.url("/sitemap.xml"))
        assert urls == [site.url("/a.html"), site.url("/b.html")]
        assert site.hits("/sitemap.xml") == 1 and site.hits("/s1.xml") == 1


def test_crawl_follows_links_within_prefix_only() -> None:
    with DocSite() as site:
        site.add("/docs/index.html", '<a href="a.html">a</a><a href="/outside.html">fora</a><a href="b.html#x">b</a>')
        site.add("/docs/a.html", '<p>a</p><a href="/docs/index.html">volta</a>')
        site.add("/docs/b.html", "<p>b</p>")
        site.add("/outside.html", "<p>fora</p>")
        with _fetcher()[0] as f:
            got = [(u, getattr(r, "status", None)) for u, r, _ in f.crawl(site.url("/docs/index.html"),
                                                                           site.url("/docs/"))]
        assert [u for u, _ in got] == [site.url(p) for p in ("/docs/index.html", "/docs/a.html", "/docs/b.html")]
        assert site.hits("/outside.html") == 0
