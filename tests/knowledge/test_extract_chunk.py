"""Extraction, tokenisation and chunking (no model needed)."""
from __future__ import annotations

import pytest

from knowledge.chunk import chunk_document, split_text
from knowledge.extract import ExtractError, extract
from knowledge.models import Document, Section
from knowledge.pdfwriter import render_pdf
from knowledge.text import tokenize


def test_tokenize_folds_accents_stems_and_keeps_error_codes() -> None:
    tokens = tokenize("Erro TEF-102 na emissão das Notas")
    assert "tef-102" in tokens and "tef" in tokens and "102" in tokens
    assert "na" not in tokens and "das" not in tokens  # Portuguese stopwords
    assert tokenize("emissão") == tokenize("emissao") == tokenize("EMISSÃO")
    assert tokenize("notas") == tokenize("nota")


def test_markdown_sections_follow_headings_and_front_matter() -> None:
    md = ("---\ntitle: Guia do PDV\nmodule: pdv\n---\n# Guia\nIntro do guia.\n\n## Instalação\n"
          "Passo **um** com [link](http://x).\n\n### Detalhe\nTexto do detalhe.\n```\n# não é título\n```\n")
    doc = extract("guia.md", md.encode())
    assert doc.title == "Guia do PDV" and doc.module == "pdv"
    trails = [s.headings for s in doc.sections]
    assert trails == [["Guia"], ["Guia", "Instalação"], ["Guia", "Instalação", "Detalhe"]]
    assert "Passo um com link." in doc.sections[1].text
    assert "# não é título" in doc.sections[2].text


def test_html_main_content_without_boilerplate() -> None:
    page = ("<html><head><title>Erros do PDV</title><script>var x=1</script></head><body>"
            "<nav class='menu'><a href='/'>Início</a> Menu lateral</nav>"
            "<div class='cookie-banner'>Aceite os cookies</div>"
            "<main><h1>Erros do PDV</h1><p>Introdução.</p><h2>PDV-201</h2><p>Impressora não responde.</p>"
            "<ul><li>Verifique o <b>papel</b></li></ul></main><footer>Copyright rodapé</footer></body></html>")
    doc = extract("http://x/erros.html", page.encode(), "text/html; charset=utf-8")
    text = " ".join(s.text for s in doc.sections)
    assert doc.title == "Erros do PDV"
    assert "Impressora não responde." in text and "- Verifique o papel" in text
    for junk in ("Menu lateral", "cookies", "rodapé", "var x"):
        assert junk not in text
    assert doc.sections[-1].headings == ["Erros do PDV", "PDV-201"]


def test_pdf_text_is_extracted_with_accents() -> None:
    data = render_pdf("Manual do TEF", ["# Conciliação", "Importação do extrato da adquirente às 6h."])
    doc = extract("manual.pdf", data)
    assert doc.title == "Manual do TEF"
    assert "Importação do extrato da adquirente às 6h." in doc.sections[0].text.replace("\n", " ")
    assert doc.sections[0].headings == ["Página 1"]


@pytest.mark.parametrize("name,data,ctype,message", [
    ("corrupt.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog garbage", None, "PDF"),
    ("empty.html", b"<html><body><nav>menu</nav><div> </div></body></html>", "text/html", "no text"),
    ("blank.txt", b"   \n  ", "text/plain", "empty"),
    ("latin1.html", "<html><body><p>Emissão de nota fiscal eletrônica</p></body></html>".encode("latin-1"),
     "text/html", "not valid UTF-8"),
    ("image.png", b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png", "unsupported"),
])
def test_bad_content_raises_a_clear_error(name: str, data: bytes, ctype: str | None, message: str) -> None:
    with pytest.raises(ExtractError, match=message):
        extract(name, data, ctype)


def test_declared_charset_is_honoured() -> None:
    page = "<html><body><p>Emissão de nota fiscal eletrônica em contingência</p></body></html>"
    doc = extract("p.html", page.encode("latin-1"), "text/html; charset=ISO-8859-1")
    assert "Emissão de nota fiscal eletrônica" in doc.sections[0].text


def test_split_text_bounds_size_and_overlaps() -> None:
    sentences = [f"Frase número {i} sobre o cadastro de produtos no sistema." for i in range(60)]
    parts = split_text(" ".join(sentences), max_chars=400, overlap=100)
    assert len(parts) > 3
    assert all(len(p) <= 400 for p in parts)
    for a, b in zip(parts, parts[1:]):
        assert a[-40:] in b  # the tail of a chunk opens the next one
    joined = " ".join(parts)
    assert all(s in joined for s in sentences)


def test_chunks_carry_product_module_title_and_heading_trail() -> None:
    doc = Document(url="erp/nfe/x.md", title="Erros da NF-e", product="erp", module="nfe",
                   sections=[Section(["Erros da NF-e"], "curto"),
                             Section(["Erros da NF-e", "Rejeição 204"], "Duplicidade de NF-e. " * 5)])
    chunks = chunk_document(doc, "erp/nfe/x.md")
    assert chunks and all(c.product == "erp" and c.module == "nfe" and c.title == "Erros da NF-e" for c in chunks)
    assert chunks[0].heading == "Rejeição 204" and "curto" in chunks[0].text  # tiny intro merged forward
    assert chunks[0].embed_text().startswith("Erros da NF-e > Rejeição 204\n")
    assert len({c.id for c in chunks}) == len(chunks)
