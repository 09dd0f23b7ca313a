"""The crawler cannot be turned against the network it runs in (SSRF), against real loopback servers.

Loopback stands in for both sides: a host allowed by name (`localhost`, as an operator would allow
an intranet docs host) plays the "public" documentation site, and other loopback addresses
(127.0.0.2, ::1) play internal services that must never see a request.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import logging
import socket
from http.server import ThreadingHTTPServer
from pathlib import Path
import threading

import pytest

from knowledge.config import Settings
from knowledge.ingest import IngestSummary, ingest
from knowledge.sources import SourceSpec, load_sources
from tests.support.doc_site import DocSite, _handler

PAGE = ("<html><head><title>Sangria</title></head><body><main><h1>Sangria de caixa</h1>"
        "<p>Para fazer a sangria pressione F6, informe o valor e confirme com a senha do supervisor.</p>"
        "</main></body></html>")
SECRET = "<html><body><main><h1>Interno</h1><p>Chave secreta do servidor interno.</p></main></body></html>"


def _settings(tmp_path: Path) -> Settings:
    """Settings from the environment (so KNOWLEDGE_ALLOWED_PRIVATE_HOSTS applies), fast fetching."""
    return dataclasses.replace(Settings.from_env(tmp_path / "idx"), crawl_delay_s=0.0, fetch_timeout_s=2.0,
                               max_retries=0)


def _nothing_written(index_dir: Path) -> bool:
    versions = index_dir / "versions"
    return not (index_dir / "CURRENT").exists() and not (versions.exists() and any(versions.iterdir()))


def _problem(summary: IngestSummary, url: str) -> str:
    found = [p for p in summary.problems if p.startswith(url + ":")]
    assert found, (url, summary.problems)
    return found[0]


class _V6Site(DocSite):
    """A DocSite on ::1."""

    def __init__(self) -> None:
        super().__init__(host="::1")

    @property
    def base_url(self) -> str:
        return f"http://[::1]:{self.port}"

    def start(self) -> "_V6Site":
        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        self._server = Server(("::1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="doc-site-v6", daemon=True).start()
        return self


@pytest.fixture()
def internal() -> DocSite:
    """An internal service on 127.0.0.2 that must never be reached."""
    with DocSite(host="127.0.0.2") as site:
        site.add("/x.html", SECRET)
        yield site


# ---------------------------------------------------------------- allowance
def test_loopback_source_is_refused_without_the_allowance_and_nothing_is_indexed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with DocSite() as site:
        site.add("/docs/a.html", PAGE)
        site.sitemap("/sitemap.xml", ["/docs/a.html"])
        sources = [SourceSpec(name="urls", product="erp", urls=(site.url("/docs/a.html"),)),
                   SourceSpec(name="map", product="erp", sitemap=site.url("/sitemap.xml")),
                   SourceSpec(name="crawl", product="erp", start_url=site.url("/docs/a.html"))]
        settings = _settings(tmp_path)
        summary = ingest(sources, settings, progress=False)
        assert not summary.swapped and _nothing_written(settings.index_dir), summary.render()
        assert site.requests == []  # not even robots.txt
        reason = _problem(summary, site.url("/docs/a.html"))
        assert "refused" in reason and "127.0.0.1 is a loopback address" in reason
        assert "KNOWLEDGE_ALLOWED_PRIVATE_HOSTS" in reason  # the error says how to allow an intranet host
        assert "loopback" in _problem(summary, site.url("/sitemap.xml"))

        # the CLI says so too and exits 1
        from knowledge.cli import main

        assert main(["ingest", "--path", site.url("/sitemap.xml"), "--index", str(tmp_path / "cli"), "--quiet"]) == 1
        assert "127.0.0.1 is a loopback address" in capsys.readouterr().err
        assert site.requests == [] and _nothing_written(tmp_path / "cli")

        # the operator allows the host: by setting...
        monkeypatch.setenv("KNOWLEDGE_ALLOWED_PRIVATE_HOSTS", "docs.intranet, 127.0.0.1")
        allowed = ingest(sources[:1], _settings(tmp_path / "env"), progress=False)
        assert allowed.swapped and allowed.documents == 1, allowed.render()

        # ...or on the source (sources.yml)
        monkeypatch.delenv("KNOWLEDGE_ALLOWED_PRIVATE_HOSTS")
        sources_file = tmp_path / "sources.yml"
        sources_file.write_text(f"sources:\n  - name: intranet\n    product: erp\n    allow_private_network: true\n"
                                f"    urls: ['{site.url('/docs/a.html')}']\n")
        flagged = ingest(load_sources(sources_file), _settings(tmp_path / "flag"), progress=False)
        assert flagged.swapped and flagged.documents == 1, flagged.render()


# ---------------------------------------------------------------- host allowlist
def test_sitemap_urls_on_another_host_are_never_fetched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, internal: DocSite, caplog: pytest.LogCaptureFixture) -> None:
    # both loopback addresses are allowed as private: only the host allowlist can stop the request
    monkeypatch.setenv("KNOWLEDGE_ALLOWED_PRIVATE_HOSTS", "127.0.0.1,127.0.0.2")
    with DocSite() as site:
        site.add("/docs/a.html", PAGE)
        site.add("/sitemap.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                                 f"<url><loc>{site.url('/docs/a.html')}</loc></url>"
                                 f"<url><loc>{internal.url('/x.html')}</loc></url></urlset>", "application/xml")
        site.add("/index.xml", '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                               f"<sitemap><loc>{site.url('/sitemap.xml')}</loc></sitemap>"
                               f"<sitemap><loc>{internal.url('/sitemap.xml')}</loc></sitemap></sitemapindex>",
                 "application/xml")
        site.add("/docs/start.html", f'<html><body><main><h1>Início</h1><p>Documentação do caixa.</p>'
                                     f'<a href="{internal.url("/x.html")}">interno</a></main></body></html>')
        site.redirect("/docs/moved.html", internal.url("/x.html"))
        settings = _settings(tmp_path)
        with caplog.at_level(logging.WARNING, logger="knowledge"):
            summary = ingest([SourceSpec(name="map", product="erp", sitemap=site.url("/index.xml")),
                              SourceSpec(name="crawl", product="erp", start_url=site.url("/docs/start.html"),
                                         prefix="http://127.0.0."),
                              SourceSpec(name="moved", product="erp", urls=(site.url("/docs/moved.html"),))],
                             settings, progress=False)
        assert summary.swapped, summary.render()
        assert internal.requests == []  # no robots.txt, no sitemap, no page, no redirect target
        assert site.hits("/docs/a.html") == 1
        assert f"lists {internal.url('/x.html')}" in caplog.text and "not a host of this source" in caplog.text
        assert f"lists {internal.url('/sitemap.xml')}" in caplog.text
        moved = _problem(summary, site.url("/docs/moved.html"))
        assert f"refused redirect to {internal.url('/x.html')}" in moved and "not a host of this source" in moved


# ---------------------------------------------------------------- redirects re-checked
def test_redirects_to_internal_addresses_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, internal: DocSite) -> None:
    # "localhost" plays the public docs host (allowed by name); 127.0.0.2, ::1 and the metadata address
    # are hosts of the source too, so only the address check (made again at each hop) stops them
    monkeypatch.setenv("KNOWLEDGE_ALLOWED_PRIVATE_HOSTS", "localhost,169.254.169.254")
    with DocSite(host="localhost") as site, _V6Site() as v6:
        v6.add("/x.html", SECRET)
        site.add("/docs/new.html", PAGE)
        site.redirect("/docs/old.html", "/docs/new.html")  # same host: followed
        targets = {"/r-v4.html": internal.url("/x.html"), "/r-v6.html": v6.url("/x.html"),
                   "/r-meta.html": "http://169.254.169.254/latest/meta-data/iam/",
                   "/r-mapped.html": f"http://[::ffff:127.0.0.2]:{internal.port}/x.html",
                   "/r-int.html": f"http://2130706434:{internal.port}/x.html"}
        for path, target in targets.items():
            site.redirect(path, target, status=302)
        site.redirect("/loop-a.html", "/loop-b.html")
        site.redirect("/loop-b.html", "/loop-a.html")
        urls = tuple(site.url(p) for p in ["/docs/old.html", *targets, "/loop-a.html"]) + (
            internal.url("/"), v6.url("/"), "http://169.254.169.254/", f"http://[::ffff:127.0.0.2]:{internal.port}/",
            f"http://2130706434:{internal.port}/")
        settings = _settings(tmp_path)
        summary = ingest([SourceSpec(name="s", product="erp", urls=urls)], settings, progress=False)
        assert summary.swapped, summary.render()
        assert internal.requests == [] and v6.requests == []
        expected = {"/r-v4.html": "127.0.0.2 is a loopback address", "/r-v6.html": "::1 is a loopback address",
                    "/r-meta.html": "169.254.169.254 is a cloud metadata address",
                    "/r-mapped.html": "a loopback address (embedded in ::ffff:",
                    "/r-int.html": "2130706434 is a non-canonical IP address form"}
        for path, words in expected.items():
            reason = _problem(summary, site.url(path))
            assert f"refused redirect to {targets[path]}" in reason and words in reason, reason
        assert "too many redirects" in _problem(summary, site.url("/loop-a.html"))
        assert site.hits("/loop-a.html") <= 3  # a hop limit, not an endless loop
        docs = summary.documents
        assert docs == 1  # /docs/old.html -> /docs/new.html


# ---------------------------------------------------------------- resolution and IP forms
def test_a_name_resolving_to_a_private_address_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 127.0.0.1 is allowed as written, but "localhost" is another host: it is checked after resolution
    monkeypatch.setenv("KNOWLEDGE_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
    with DocSite() as site:
        site.add("/docs/a.html", PAGE)
        url = f"http://localhost:{site.port}/docs/a.html"
        settings = _settings(tmp_path)
        summary = ingest([SourceSpec(name="s", product="erp", urls=(url,))], settings, progress=False)
        assert not summary.swapped and _nothing_written(settings.index_dir)
        assert site.requests == []
        assert "localhost resolves to 127.0.0.1, which is a loopback address" in _problem(summary, url)


def test_ipv4_mapped_ipv6_and_numeric_forms_do_not_bypass_the_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOWLEDGE_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")  # these forms are not "127.0.0.1"
    with DocSite() as site:
        site.add("/docs/a.html", PAGE)
        p = site.port
        forms = [f"http://[::ffff:127.0.0.1]:{p}/docs/a.html", f"http://[::ffff:7f00:1]:{p}/docs/a.html",
                 f"http://2130706433:{p}/docs/a.html", f"http://0x7f.0.0.1:{p}/docs/a.html",
                 f"http://017700000001:{p}/docs/a.html", f"http://0x7f000001:{p}/docs/a.html"]
        settings = _settings(tmp_path)
        summary = ingest([SourceSpec(name="s", product="erp", urls=tuple(forms))], settings, progress=False)
        assert not summary.swapped and _nothing_written(settings.index_dir)
        assert site.requests == []
        for url in forms:
            assert "refused" in _problem(summary, url)


def test_address_classification() -> None:
    from knowledge.netguard import address_problem

    refused = {
        "127.0.0.1": "loopback", "127.8.9.10": "loopback", "::1": "loopback", "10.1.2.3": "private",
        "172.16.5.4": "private", "192.168.0.10": "private", "fc00::1": "private", "fd12:3456::1": "private",
        "169.254.10.20": "link-local", "fe80::1": "link-local", "100.64.0.1": "carrier-grade NAT",
        "100.127.255.254": "carrier-grade NAT", "0.0.0.0": "unspecified", "::": "unspecified",
        "224.0.0.251": "multicast", "ff02::1": "multicast", "240.0.0.1": "reserved",
        "169.254.169.254": "metadata", "fd00:ec2::254": "metadata", "168.63.129.16": "metadata",
        "::ffff:10.0.0.1": "private", "::ffff:169.254.169.254": "metadata", "2002:7f00:1::": "loopback",
        "64:ff9b::a9fe:a9fe": "metadata", "192.0.2.1": "private", "192.0.0.8": "not a public", "198.18.0.1": "private",
    }
    for addr, words in refused.items():
        problem = address_problem(ipaddress.ip_address(addr))
        assert problem and words in problem, (addr, problem)
    for addr in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"):
        assert address_problem(ipaddress.ip_address(addr)) is None, addr
    # an operator-allowed host may be private, but never metadata, unspecified or multicast
    for addr in ("10.0.0.1", "127.0.0.1", "fd12::1", "169.254.1.1", "100.64.0.1"):
        assert address_problem(ipaddress.ip_address(addr), private_ok=True) is None, addr
    for addr in ("169.254.169.254", "fd00:ec2::254", "0.0.0.0", "224.0.0.1", "::ffff:169.254.169.254"):
        assert address_problem(ipaddress.ip_address(addr), private_ok=True), addr


def test_url_checks_before_any_request() -> None:
    from knowledge.netguard import NetGuard, Refused

    guard = NetGuard(["metadata.google.internal", "169.254.169.254", "docs.intranet"])
    for url, words in [("http://metadata.google.internal/computeMetadata/v1/", "metadata host"),
                       ("http://METADATA.GOOGLE.INTERNAL./", "metadata host"),
                       ("http://169.254.169.254/latest/", "metadata"), ("http://[fd00:ec2::254]/", "metadata"),
                       ("http://127.1/", "non-canonical"), ("http://0177.0.0.1/", "invalid"),
                       ("http://2130706433/", "non-canonical"), ("file:///etc/passwd", "scheme"),
                       ("gopher://docs.intranet/", "scheme"), ("http://evil.example/", "not a host of this source"),
                       ("http://docs.intranet@evil.example/", "not a host of this source")]:
        with pytest.raises(Refused, match=words):
            guard.check_url(url, {"docs.intranet", "metadata.google.internal", "169.254.169.254", "127.1",
                                  "0177.0.0.1", "2130706433", "fd00:ec2::254"})
    assert guard.check_url("http://DOCS.intranet./a", {"docs.intranet"}) == "docs.intranet"


# ---------------------------------------------------------------- pinning
def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """One resolution per connection, every address checked, and the socket connects to that address:
    a name that changes its answer between the check and the connect (DNS rebinding) cannot win."""
    from knowledge.netguard import NetGuard, Refused, _GuardedBackend

    real = socket.getaddrinfo
    answers = {"docs.intranet": [["127.0.0.1"], ["169.254.169.254"]],
               "mixed.example": [["93.184.216.34", "127.0.0.1"]]}
    calls: list[str] = []

    def fake(host: str, port: object, *args: object, **kwargs: object) -> list[tuple]:  # type: ignore[type-arg]
        if host in answers:
            calls.append(host)
            addrs = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addrs]
        return real(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with DocSite() as site:
        backend = _GuardedBackend(NetGuard(["docs.intranet"]))
        stream = backend.connect_tcp("docs.intranet", site.port, timeout=2.0)
        try:
            assert stream.get_extra_info("socket").getpeername()[0] == "127.0.0.1"
        finally:
            stream.close()
        assert calls == ["docs.intranet"]  # resolved once; the second answer (metadata) was never asked for
        with pytest.raises(Refused, match="metadata"):
            backend.connect_tcp("docs.intranet", site.port, timeout=2.0)  # a new connection is checked again
        with pytest.raises(Refused, match="mixed.example resolves to 127.0.0.1"):
            backend.connect_tcp("mixed.example", site.port, timeout=2.0)  # every address must pass
    assert site.requests == []
