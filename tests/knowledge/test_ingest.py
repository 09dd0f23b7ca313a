"""Ingestion end to end: crawling a real loopback doc site, incremental updates, bad input, atomic swap."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from knowledge.index import IndexStore
from knowledge.ingest import ingest
from knowledge.pdfwriter import render_pdf
from knowledge.runtime import answer, get_runtime
from knowledge.sources import SourceSpec
from tests.knowledge.conftest import fast_settings
from tests.support.doc_site import DocSite, markdown_to_html

PAGES = {
    "/docs/index.html": ("Central de ajuda", "Bem-vindo à central de ajuda do Atende PDV.",
                         ["instalacao.html", "erros.html", "antigo.html", "sumiu.html", "lento.html",
                          "/private/interno.html", "manual.pdf"]),
    "/docs/instalacao.html": ("Instalação do PDV", "Execute o instalador AtendePDVSetup.exe como administrador "
                              "e informe o número do caixa.", []),
    "/docs/erros.html": ("Erros do PDV", "PDV-201: a impressora não responde. Verifique o papel e a tampa.", []),
    "/docs/novo.html": ("Página nova", "Conteúdo que substituiu a página antiga sobre sangria de caixa.", []),
    "/docs/lento.html": ("Página lenta", "Fechamento de caixa com conferência cega dos valores.", []),
    "/private/interno.html": ("Interno", "Documento interno que não pode ser indexado.", []),
}


def _page(title: str, text: str, links: list[str]) -> str:
    md = f"# {title}\n\n{text}\n"
    return markdown_to_html(md, links)


def _site() -> DocSite:
    site = DocSite().start()
    for path, (title, text, links) in PAGES.items():
        site.add(path, _page(title, text, links), delay_s=0.3 if "lento" in path else 0.0)
    site.redirect("/docs/antigo.html", "/docs/novo.html")
    site.add("/docs/manual.pdf", render_pdf("Manual do TEF", ["# Pinpad", "Conecte o pinpad na porta USB "
                                                              "e clique em Detectar pinpad."]))
    site.robots("User-agent: *\nDisallow: /private/\n")
    site.sitemap("/sitemap.xml", ["/docs/instalacao.html", "/docs/erros.html", "/docs/manual.pdf",
                                  "/docs/sumiu.html"])
    return site


def test_crawl_sitemap_incremental_and_removal(tmp_path: Path) -> None:
    site = _site()
    try:
        settings = fast_settings(tmp_path / "idx")
        sources = [SourceSpec(name="crawl", product="erp", module="pdv", start_url=site.url("/docs/index.html"),
                              prefix=site.url("/docs/")),
                   SourceSpec(name="map", product="erp", sitemap=site.url("/sitemap.xml"))]
        first = ingest(sources, settings, progress=False)
        assert first.swapped, first.render()
        index = IndexStore(settings.index_dir).load()
        urls = {c.url for c in index.chunks}
        assert site.url("/docs/novo.html") in urls  # redirect followed, final URL cited
        assert site.url("/docs/manual.pdf") in urls  # PDF
        assert site.url("/docs/lento.html") in urls  # slow page within the timeout
        assert not any("private" in u for u in urls) and site.hits("/private/interno.html") == 0  # robots.txt
        assert any("sumiu.html" in p and "404" in p for p in first.problems)  # the 404 is logged
        assert {c.product for c in index.chunks} == {"erp"}
        assert {c.module for c in index.chunks if c.url.endswith("erros.html")} == {"pdv"}
        assert first.failed == 1 and first.updated == first.documents == 6
        assert "Resumo da ingestão" in first.render()

        # second run: everything answered 304, nothing embedded again, no new version
        second = ingest(sources, settings, progress=False)
        assert second.not_modified == 6 and second.chunks_embedded == 0 and not second.swapped
        assert second.version == first.version
        assert any(h.get("If-None-Match") for m, p, h in site.requests if p == "/docs/erros.html")

        # a page changes, another vanishes: only the changed page is embedded, the vanished one leaves
        title, _, links = PAGES["/docs/erros.html"]
        site.add("/docs/erros.html", _page(title, "PDV-230: caixa já aberto em outro computador.", links))
        site.remove("/docs/instalacao.html")
        third = ingest(sources, settings, progress=False)
        assert third.swapped and third.version != first.version
        assert third.updated == 1 and third.removed == 1
        new_index = IndexStore(settings.index_dir).load()
        assert not any(c.url.endswith("instalacao.html") for c in new_index.chunks)
        assert third.chunks_embedded == sum(1 for c in new_index.chunks if c.url.endswith("erros.html"))
        assert any("PDV-230" in c.text for c in new_index.chunks)
    finally:
        site.stop()


def test_bad_input_is_logged_and_skipped_and_previous_index_keeps_serving(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site = DocSite().start()
    try:
        settings = fast_settings(tmp_path / "idx", max_bytes=10 * 1024 * 1024)
        site.add("/docs/bom.html", _page("Sangria de caixa", "Para fazer sangria pressione F6 e informe o valor.", []))
        good = SourceSpec(name="good", product="erp", urls=(site.url("/docs/bom.html"),))
        assert ingest([good], settings, progress=False).swapped
        first_version = IndexStore(settings.index_dir).current_version()
        reader = get_runtime(settings.index_dir)
        before = answer("como faço sangria no caixa?", index_dir=settings.index_dir)
        assert before.grounded

        # only an unreachable host: nothing new, the live version stays
        dead = SourceSpec(name="dead", product="erp", sitemap="http://127.0.0.1:9/sitemap.xml")
        only_dead = ingest([dead], settings, progress=False)
        assert not only_dead.swapped and IndexStore(settings.index_dir).current_version() == first_version

        site.add("/docs/vazio.html", "<html><body><nav>menu</nav><div></div></body></html>")
        site.add("/docs/corrompido.pdf", b"%PDF-1.7\n1 0 obj <<\n garbage without xref", "application/pdf")
        site.add("/docs/enorme.pdf", b"%PDF-1.4\n" + b"0" * (50 * 1024 * 1024), "application/pdf")
        site.add("/docs/latin1.html", "<html><body><p>Emissão de nota em contingência offline.</p></body></html>"
                 .encode("latin-1"), "text/html")
        site.add("/docs/novo.html", _page("Suprimento de caixa", "Para suprimento de troco pressione F7.", []))
        site.sitemap_index("/loop.xml", ["/loop2.xml"])
        site.sitemap_index("/loop2.xml", ["/loop.xml", "/map.xml"])
        site.sitemap("/map.xml", ["/docs/vazio.html", "/docs/corrompido.pdf", "/docs/enorme.pdf",
                                  "/docs/latin1.html", "/docs/novo.html"])
        looped = SourceSpec(name="looped", product="erp", sitemap=site.url("/loop.xml"))
        with caplog.at_level(logging.WARNING, logger="knowledge"):
            summary = ingest([good, dead, looped], settings, progress=False)
        log = caplog.text
        assert "sitemap loop" in log
        assert "127.0.0.1:9" in log and "network error" in log
        assert "vazio.html" in log and "no text" in log
        assert "corrompido.pdf" in log and "corrupt PDF" in log
        assert "enorme.pdf" in log and "too large" in log
        assert "latin1.html" in log and "UTF-8" in log
        assert summary.swapped and summary.skipped == 3 and summary.failed >= 1
        index = IndexStore(settings.index_dir).load()
        assert {c.url for c in index.chunks} == {site.url("/docs/bom.html"), site.url("/docs/novo.html")}
        # the process that was serving keeps answering, and picks up the new version
        assert answer("como faço sangria no caixa?", index_dir=settings.index_dir).grounded
        assert reader.current() is not None and reader.current().version == summary.version  # type: ignore[union-attr]
        assert answer("suprimento de troco", index_dir=settings.index_dir).sources[0].url.endswith("novo.html")
    finally:
        site.stop()


def test_readers_never_see_a_half_written_index(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Cadastro de clientes\n\nCadastre clientes em Cadastros > Clientes > Novo.\n")
    settings = fast_settings(tmp_path / "idx")
    src = SourceSpec(name="f", product="erp", folder=folder)
    ingest([src], settings, progress=False)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                ans = answer("cadastro de clientes", index_dir=settings.index_dir)
                assert ans.grounded and ans.sources
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
                errors.append(exc)
                return

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(3):
            (folder / f"n{i}.md").write_text(f"# Página {i}\n\nConteúdo novo número {i} sobre estoque.\n")
            assert ingest([src], settings, progress=False).swapped
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    store = IndexStore(settings.index_dir)
    assert not list(store.versions.glob(".tmp-*")) and len(list(store.versions.iterdir())) <= 3
    assert (settings.index_dir / "CURRENT").read_text().strip() == store.current_version()
