"""knowledge.publish: the safe Markdown renderer, the published-path resolver, and their wiring
into ingestion: folder sources' `public_base_url`, the pages Atende publishes, their anchors and
their removal (issue 14 item 7). The route that serves them: tests/connectors/test_website_docs.py.

The renderer's output is parsed back with the standard library's HTML parser, so a test sees the
elements and attributes a browser would build, not just substrings.
"""
from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from knowledge.publish import anchor_id, render_markdown, resolve_published


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Tree:
    tree = _Tree()
    tree.feed(page)
    return tree


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "h4", "h5", "h6", "p", "ul",
                "ol", "li", "pre", "code", "a"}


def test_headings_get_stable_ascii_anchors_and_repeats_are_numbered() -> None:
    assert anchor_id("Abertura e fechamento de caixa") == "abertura-e-fechamento-de-caixa"
    assert anchor_id("Configuração do TEF (versão 2)") == "configuracao-do-tef-versao-2"
    assert anchor_id("???") == "secao"
    page = render_markdown("# Instalação\n\ntexto\n\n## Requisitos\n\n## Requisitos\n", "PDV")
    ids = [attrs.get("id") for tag, attrs in parse(page).tags if tag in {"h1", "h2"}]
    assert ids == ["instalacao", "requisitos", "requisitos-2"]


def test_hostile_markdown_renders_as_text_only() -> None:
    source = "\n".join([
        '# Título <script>alert("h")</script>',
        '## x" onmouseover="alert(1)',
        '<img src=x onerror="alert(2)">',
        "<iframe src=https://evil.example></iframe>",
        "- item <b onclick=alert(3)>negrito</b>",
        "[clique](javascript:alert(1)) e [dados](data:text/html;base64,PHNjcmlwdD4=)",
        "[ok](https://docs.example.com/pdv?a=1&b=2)",
        "```",
        "</code></pre><script>alert(4)</script>",
        "```",
    ])
    page = render_markdown(source, 'Página "<x>"')
    tree = parse(page)
    tags = {tag for tag, _ in tree.tags}
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS
    for tag, attrs in tree.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "a":
            assert attrs["href"] == "https://docs.example.com/pdv?a=1&b=2"
            assert attrs["rel"] == "noopener noreferrer"
    assert sum(1 for tag, _ in tree.tags if tag == "a") == 1
    heading_ids = [attrs["id"] for tag, attrs in tree.tags if tag in {"h1", "h2"}]
    assert all(set(i) <= set("abcdefghijklmnopqrstuvwxyz0123456789-") for i in heading_ids)
    text = "".join(tree.text)
    # what was hostile is still readable, as text, for the customer
    assert '<script>alert("h")</script>' in text
    assert "</code></pre><script>alert(4)</script>" in text
    # a refused link keeps its label and leaves no stray piece of its url behind
    assert "clique e dados" in text
    assert "javascript" not in page.lower()


def _published(tmp_path: Path) -> Path:
    root = tmp_path / "published"
    (root / "erp" / "pdv").mkdir(parents=True)
    (root / "erp" / "pdv" / "caixa.html").write_text("<p>caixa</p>", encoding="utf-8")
    (root / "erp" / ".oculto.html").write_text("x", encoding="utf-8")
    (root / "erp" / "pdv" / "notas.md").write_text("x", encoding="utf-8")
    (tmp_path / "secret.html").write_text("segredo", encoding="utf-8")
    return root


def test_resolver_serves_only_html_files_inside_the_folder(tmp_path: Path) -> None:
    root = _published(tmp_path)
    assert resolve_published(root, "erp/pdv/caixa.html") == (root / "erp/pdv/caixa.html").resolve()
    for bad in ["", "/etc/passwd", "../secret.html", "erp/../../secret.html", "erp/./pdv/caixa.html",
                "erp//pdv/caixa.html", "erp\\pdv\\caixa.html", "erp/.oculto.html", "erp/pdv/notas.md",
                "erp/pdv", "erp/pdv/missing.html", "%2e%2e/secret.html"]:
        assert resolve_published(root, bad) is None, bad


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
def test_resolver_refuses_symlinks_out_of_and_inside_the_folder(tmp_path: Path) -> None:
    root = _published(tmp_path)
    (root / "erp" / "fora.html").symlink_to(tmp_path / "secret.html")
    (root / "atalho").symlink_to(root / "erp" / "pdv", target_is_directory=True)
    assert resolve_published(root, "erp/fora.html") is None
    assert resolve_published(root, "atalho/caixa.html") is None


# ---------------------------------------------------------------- the page's style and policy
def test_the_only_style_is_the_one_the_policy_allows_by_hash() -> None:
    import base64
    import hashlib
    import re

    from knowledge.publish import CSP

    page = render_markdown("# Título\n\ntexto", "T")
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CSP
    assert CSP.startswith("default-src 'none';") and "script-src" not in CSP and "unsafe" not in CSP
    assert "<script" not in page


def test_headings_read_as_the_extractor_reads_them_and_ordered_lists() -> None:
    from knowledge.extract import extract_markdown

    source = "# **Guia** do `PDV` ##\n\n## [Passos](https://x.example) iniciais\n\n1. um\n2. dois\n\n- a\n- b\n"
    page = render_markdown(source, "Guia")
    tree = parse(page)
    ids = [attrs["id"] for tag, attrs in tree.tags if tag in {"h1", "h2"}]
    trails = [s.headings[-1] for s in extract_markdown("g.md", source).sections]
    assert ids == ["guia-do-pdv", "passos-iniciais"]
    assert [anchor_id(t) for t in trails] == ["passos-iniciais"]
    assert [tag for tag, _ in tree.tags if tag in {"ol", "ul", "li"}] == ["ol", "li", "li", "ul", "li", "li"]


# ---------------------------------------------------------------- sources: public_base_url
def _sources_file(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "docs").mkdir(exist_ok=True)
    path = tmp_path / "sources.yml"
    path.write_text(f"sources:\n  - name: pdv\n    product: erp\n    folder: docs\n{extra}", encoding="utf-8")
    return path


def test_public_base_url_is_validated(tmp_path: Path) -> None:
    from knowledge.sources import SourcesError, load_sources

    good = load_sources(_sources_file(tmp_path, "    public_base_url: https://ajuda.example.com/pdv\n"))
    assert good[0].public_base_url == "https://ajuda.example.com/pdv/"
    assert load_sources(_sources_file(tmp_path, ""))[0].public_base_url is None
    bad = {
        "ftp://ajuda.example.com/": "http(s) URL",
        "javascript:alert(1)": "http(s) URL",
        "/relativo/": "http(s) URL",
        "https://user:senha@ajuda.example.com/": "credentials",
        "https://ajuda.example.com/?x=1": "query or a fragment",
        "https://ajuda.example.com/#topo": "query or a fragment",
        "'https://ajuda.example.com/a b'": "spaces",
        "https://ajuda.example.com:99999/": "not a valid URL",
        "123": "http(s) URL",
        "[https://a.example]": "http(s) URL",
    }
    for value, message in bad.items():
        with pytest.raises(SourcesError, match=r"sources\[0\]: 'public_base_url'") as exc:
            load_sources(_sources_file(tmp_path, f"    public_base_url: {value}\n"))
        assert message in str(exc.value), (value, str(exc.value))
    url_source = tmp_path / "url.yml"
    url_source.write_text("sources:\n  - name: s\n    urls: [https://a.example/x]\n"
                          "    public_base_url: https://a.example/\n", encoding="utf-8")
    with pytest.raises(SourcesError, match="folder sources only"):
        load_sources(url_source)


def test_a_bad_sources_file_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from knowledge.cli import main

    path = _sources_file(tmp_path, "    public_base_url: https://u:p@ajuda.example.com/\n")
    (tmp_path / "docs" / "a.md").write_text("# A\n\nTexto suficiente para virar um trecho do índice.\n")
    assert main(["ingest", "--sources", str(path), "--index", str(tmp_path / "idx"), "--quiet"]) == 2
    assert "credentials" in capsys.readouterr().err
    assert not (tmp_path / "idx").exists()


def test_a_bad_public_url_stops_ingestion_before_anything_is_written(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from knowledge.ingest import ingest
    from knowledge.sources import load_sources
    from tests.knowledge.conftest import fast_settings

    path = _sources_file(tmp_path, "")
    (tmp_path / "docs" / "a.md").write_text("# A\n\nTexto suficiente para virar um trecho do índice.\n")
    for bad in ("javascript:alert(1)", "https://u:p@atende.example", "https://atende.example/?a=1"):
        monkeypatch.setenv("KNOWLEDGE_PUBLIC_URL", bad)
        with pytest.raises(RuntimeError, match="KNOWLEDGE_PUBLIC_URL"):
            ingest(load_sources(path), fast_settings(tmp_path / "idx"), progress=False)
        assert not (tmp_path / "idx").exists()


# ---------------------------------------------------------------- ingestion publishes the pages
CAIXA = """---
title: Caixa do PDV
module: pdv
---
# Caixa do PDV

Introdução ao caixa do PDV, com o que o operador precisa saber antes de começar.

## Abrir o caixa

### Passos

1. Pressione F2 (Abrir caixa) e informe o valor do fundo de troco para o turno.
2. Confira o comprovante de abertura impresso.

## Fechar o caixa

### Passos

1. Pressione F10 (Fechar caixa) e informe os valores contados de cada forma de pagamento.

## Hostil <script>alert(1)</script>

Texto com <img src=x onerror=alert(2)> e [link](javascript:alert(3)) que vira texto na página.
"""


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    (docs / "pdv").mkdir(parents=True, exist_ok=True)
    (docs / "pdv" / "caixa.md").write_text(CAIXA, encoding="utf-8")
    (docs / "pdv" / "faq.html").write_text(
        "<html><head><title>FAQ do PDV</title></head><body><main><h1>FAQ do PDV</h1>"
        "<h2>O PDV funciona sem internet?</h2><p>Sim, o PDV vende em contingência offline e envia "
        "as vendas quando a conexão volta.</p><script>alert(1)</script></main></body></html>", encoding="utf-8")
    (docs / "leia-me.txt").write_text("Leia-me do PDV\n\nInstale o PDV em cada caixa da loja antes do treinamento.\n",
                                      encoding="utf-8")
    return docs


def _ingest(tmp_path: Path, spec_extra: dict | None = None):  # type: ignore[no-untyped-def]
    from knowledge.index import IndexStore
    from knowledge.ingest import ingest
    from knowledge.sources import SourceSpec
    from tests.knowledge.conftest import fast_settings

    settings = fast_settings(tmp_path / "idx")
    spec = SourceSpec(name="pdv-docs", product="erp", folder=tmp_path / "docs", **(spec_extra or {}))
    summary = ingest([spec], settings, progress=False)
    assert summary.version, summary.render()
    return summary, IndexStore(settings.index_dir).load(), settings.index_dir / "published"


def _fragment_target(root: Path, url: str, public: str) -> tuple[Path, str]:
    from urllib.parse import unquote

    assert url.startswith(public + "docs/pdv-docs/"), url
    page, _, fragment = url[len(public + "docs/"):].partition("#")
    return root / unquote(page), fragment


def test_ingestion_publishes_sanitised_pages_and_cites_their_sections(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOWLEDGE_PUBLIC_URL", "https://atende.example.com/suporte")
    public = "https://atende.example.com/suporte/"
    _docs(tmp_path)
    summary, index, root = _ingest(tmp_path)
    assert summary.failed == 0 and summary.skipped == 0, summary.render()
    pages = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert pages == ["pdv-docs/leia-me.txt.html", "pdv-docs/pdv/caixa.html", "pdv-docs/pdv/faq.html"]
    by_heading = {}
    for chunk in index.chunks:
        page, fragment = _fragment_target(root, chunk.url, public)
        html_text = page.read_text(encoding="utf-8")
        assert fragment and f'id="{fragment}"' in html_text, chunk.url  # every citation lands on a section
        by_heading.setdefault((chunk.doc_key.rsplit("/", 1)[-1], chunk.heading), fragment)
        tree = parse(html_text)
        assert {tag for tag, _ in tree.tags} <= ALLOWED_TAGS
        assert not any(name.startswith("on") for _, attrs in tree.tags for name in attrs)
        assert "javascript" not in html_text.lower() and "<script" not in html_text
    # the second "Passos" of the page is passos-2, as the page numbers it
    assert by_heading[("caixa.md", "Abrir o caixa > Passos")] == "passos"
    assert by_heading[("caixa.md", "Fechar o caixa > Passos")] == "passos-2"
    assert by_heading[("caixa.md", "")] == "caixa-do-pdv"  # the introduction: the title heading
    assert by_heading[("faq.html", "O PDV funciona sem internet?")] == "o-pdv-funciona-sem-internet"
    caixa = parse((root / "pdv-docs/pdv/caixa.html").read_text(encoding="utf-8"))
    assert "<script>alert(1)</script>" in "".join(caixa.text)  # shown as text
    assert "module: pdv" not in "".join(caixa.text)  # the front matter is not part of the page
    assert {c.module for c in index.chunks if c.doc_key.endswith("caixa.md")} == {"pdv"}


def test_reingestion_updates_and_removes_the_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOWLEDGE_PUBLIC_URL", "http://127.0.0.1:5005")
    docs = _docs(tmp_path)
    _, _, root = _ingest(tmp_path)
    caixa = root / "pdv-docs/pdv/caixa.html"
    stray = root / "pdv-docs" / "velha.html"  # a page no document names (an older run's)
    stray.write_text("antiga", encoding="utf-8")
    # unchanged files keep their chunks; a page deleted by hand is written again
    caixa.unlink()
    second, _, _ = _ingest(tmp_path)
    assert second.unchanged == 3 and second.chunks_embedded == 0, second.render()
    assert caixa.is_file() and not stray.exists()
    # a changed page is rewritten, a removed one loses its page (and its folder when empty)
    (docs / "pdv" / "caixa.md").write_text(CAIXA.replace("## Fechar o caixa", "## Encerrar o turno"),
                                           encoding="utf-8")
    (docs / "pdv" / "faq.html").unlink()
    third, index, _ = _ingest(tmp_path)
    assert third.removed == 1, third.render()
    assert "encerrar-o-turno" in caixa.read_text(encoding="utf-8")
    assert not (root / "pdv-docs/pdv/faq.html").exists()
    assert any(c.url.endswith("#encerrar-o-turno") or c.url.endswith("#passos-2") for c in index.chunks)
    (docs / "pdv" / "caixa.md").unlink()
    _ingest(tmp_path)
    assert not (root / "pdv-docs" / "pdv").exists()
    assert (root / "pdv-docs" / "leia-me.txt.html").is_file()


def test_a_vendor_base_url_is_cited_and_nothing_is_published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOWLEDGE_PUBLIC_URL", "http://127.0.0.1:5005")
    _docs(tmp_path)
    _, first, root = _ingest(tmp_path)
    assert (root / "pdv-docs/pdv/caixa.html").is_file()
    # the same files, now published by the vendor: new URLs (new chunks), Atende's pages removed
    _, index, _ = _ingest(tmp_path, {"public_base_url": "https://ajuda.example.com/pdv/"})
    assert {c.url for c in index.chunks} == {"https://ajuda.example.com/pdv/pdv/caixa.html",
                                             "https://ajuda.example.com/pdv/pdv/faq.html",
                                             "https://ajuda.example.com/pdv/leia-me.txt"}
    assert not any(p.is_file() for p in root.rglob("*"))
    assert first.chunks and all("/docs/pdv-docs/" in c.url for c in first.chunks)


def test_page_paths_refuse_what_the_server_would_refuse() -> None:
    from pathlib import PurePosixPath

    from knowledge.publish import docs_url, page_path, publish_name, vendor_url

    assert page_path("erp-demo", PurePosixPath("nfe/Guia NF-e.md")) == "erp-demo/nfe/Guia NF-e.html"
    assert docs_url("http://localhost:5005", "erp-demo/nfe/Guia NF-e.html") == \
        "http://localhost:5005/docs/erp-demo/nfe/Guia%20NF-e.html"
    assert page_path("erp-demo", PurePosixPath("manual.pdf")) == "erp-demo/manual.pdf.html"
    assert page_path("erp-demo", PurePosixPath(".git/config.md")) is None
    assert page_path("erp-demo", PurePosixPath("a/.oculto.md")) is None
    # an ad hoc --path source is named by its folder: a slug with a hash, never a path
    name = publish_name("/srv/docs/../etc")
    assert "/" not in name and not name.startswith(".") and name.startswith("etc-")
    assert vendor_url("https://ajuda.example.com/erp", PurePosixPath("nfe/faq.md")) == \
        "https://ajuda.example.com/erp/nfe/faq.html"
