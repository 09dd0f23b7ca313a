"""knowledge.publish: the safe Markdown renderer and the published-path resolver (issue 14 item 7).

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


ALLOWED_TAGS = {"html", "head", "meta", "title", "body", "h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "li",
                "pre", "code", "a"}


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
