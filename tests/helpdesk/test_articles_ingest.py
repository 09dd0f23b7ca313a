"""The `articles: database` source kind (knowledge/articles_source.py): approved articles are
indexed with their console URL and product; a discarded or erased one leaves the index on the next
ingest; a database that is missing or not migrated is a problem of the run, never a new file."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from helpdesk import privacy
from helpdesk.config import get_settings
from helpdesk.db import session_scope
from helpdesk.demo import load_catalog
from helpdesk.services import articles, customers, technicians, tickets
from knowledge.config import Settings
from knowledge.index import IndexStore
from knowledge.ingest import ingest
from knowledge.sources import SourcesError, SourceSpec, load_sources

BODY = ("Quando o leitor de código de barras Zebra DS2208 bipa mas o PDV não recebe o código:\n"
        "1. Abra Configurações > Periféricos.\n2. Troque o modo do leitor para teclado USB (HID).\n"
        "3. Reinicie o PDV.")


def _settings(index_dir: Path) -> Settings:
    return dataclasses.replace(Settings.from_env(index_dir), crawl_delay_s=0.0)


def _sources(tmp_path: Path) -> list[SourceSpec]:
    """The articles plus one small folder (an ingest of nothing at all writes no index version)."""
    folder = tmp_path / "docs"
    folder.mkdir(exist_ok=True)
    (folder / "geral.md").write_text("# Geral\n\nO Atende ERP emite notas fiscais e cupons no PDV.\n",
                                     encoding="utf-8")
    yml = tmp_path / "sources.yml"
    yml.write_text(f"sources:\n  - name: pasta\n    product: erp\n    folder: {folder}\n"
                   "  - name: artigos\n    articles: database\n", encoding="utf-8")
    return load_sources(yml)


def _article(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int, int]:
    monkeypatch.setenv("ATENDE_CONSOLE_URL", "https://console.atende.example")
    with session_scope() as s:
        load_catalog(s)
        c = customers.create(s, responsible_name="Otávio Lins", legal_name="Mercado Lins Ltda",
                             cnpj="11.222.333/0001-81", tax_regime="Simples Nacional", phones=["+55 (21) 99876-5432"])
        tech = technicians.create(s, name="Rafael", email="rafael@x.com", password="segredo-123")
        boss = technicians.create(s, name="Bianca", email="bianca@x.com", password="segredo-123", role="manager")
        t = tickets.open_ticket(s, customer_id=c.id, channel="web", type="erro", module="pdv",
                                subject="Leitor não lê", description="O leitor bipa e nada aparece.",
                                conversation_id="web:leitor")
        tickets.assume(s, t.id, tech.id)
        tickets.resolve(s, t.id, technician_id=tech.id, solution="Modo HID.", suggest_article=True)
        aid = articles.listing(s, ["pending"])[0].id
        articles.approve(s, aid, manager_id=boss.id, title="Leitor de código de barras não lê no PDV",
                         module="pdv", body=BODY)
        return aid, boss.id, c.id


def _docs(index_dir: Path) -> dict[str, tuple[str, str | None, str | None]]:
    idx = IndexStore(index_dir).load()
    return {c.url: (c.title, c.product, c.module) for c in idx.chunks}


def test_an_approved_article_is_indexed_with_its_console_url(db_url: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    aid, boss, _ = _article(monkeypatch)
    summary = ingest(_sources(tmp_path), _settings(tmp_path / "index"), progress=False)
    assert summary.swapped and summary.failed == 0 and summary.problems == [], summary.render()
    url = f"https://console.atende.example/artigos?id={aid}"
    assert _docs(tmp_path / "index")[url] == ("Leitor de código de barras não lê no PDV", "erp", "pdv")
    chunks = [c for c in IndexStore(tmp_path / "index").load().chunks if c.url == url]
    assert any("teclado USB (HID)" in c.text for c in chunks)
    # unchanged on the next run: nothing embedded again
    again = ingest(_sources(tmp_path), _settings(tmp_path / "index"), progress=False)
    assert again.chunks_embedded == 0 and again.unchanged == 2
    # discarded: gone from the index on the next ingest
    with session_scope() as s:
        articles.discard(s, aid, manager_id=boss)
    third = ingest(_sources(tmp_path), _settings(tmp_path / "index"), progress=False)
    assert third.removed == 1 and url not in _docs(tmp_path / "index")


def test_an_erased_persons_quoted_article_leaves_the_index(db_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    aid, boss, customer = _article(monkeypatch)
    with session_scope() as s, pytest.raises(articles.PersonalDataFound) as err:
        articles.approve(s, aid, manager_id=boss, title="Leitor do Mercado Lins", module="pdv", body=BODY)
    assert err.value.warnings == ['o nome "Mercado Lins Ltda"']
    with session_scope() as s:
        articles.approve(s, aid, manager_id=boss, title="Leitor do Mercado Lins", module="pdv", body=BODY,
                         confirm_personal_data=True)
    ingest(_sources(tmp_path), _settings(tmp_path / "index"), progress=False)
    url = f"https://console.atende.example/artigos?id={aid}"
    assert url in _docs(tmp_path / "index")
    with session_scope() as s:
        privacy.erase(s, "customer", str(customer))
    summary = ingest(_sources(tmp_path), _settings(tmp_path / "index"), progress=False)
    assert summary.removed == 1 and url not in _docs(tmp_path / "index")
    assert not any("Lins" in c.text or "Lins" in c.title for c in IndexStore(tmp_path / "index").load().chunks)


def test_a_missing_database_is_a_problem_and_no_file_is_created(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nada" / "atende.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{missing}")
    from helpdesk.config import reset_settings

    reset_settings()
    try:
        assert get_settings().database_url.endswith("nada/atende.db")
        summary = ingest(_sources(tmp_path), _settings(tmp_path / "index"), progress=False)
    finally:
        monkeypatch.delenv("DATABASE_URL")
        reset_settings()
    assert summary.swapped and summary.failed == 0  # the folder is indexed all the same
    assert any("database not found" in p for p in summary.problems), summary.problems
    assert not missing.exists()


def test_an_unmigrated_database_is_a_problem(tmp_path: Path) -> None:
    import sqlite3

    from knowledge.articles_source import ArticlesUnavailable, approved_articles

    db = tmp_path / "vazio.db"
    sqlite3.connect(db).close()
    with pytest.raises(ArticlesUnavailable, match="no knowledge_articles table"):
        approved_articles(f"sqlite:///{db}")


@pytest.mark.parametrize("value", ["files", "", "true", "[database]"])
def test_the_articles_key_takes_only_database(tmp_path: Path, value: str) -> None:
    yml = tmp_path / "s.yml"
    yml.write_text(f"sources:\n  - name: a\n    articles: {value or repr('')}\n", encoding="utf-8")
    with pytest.raises(SourcesError, match="articles"):
        load_sources(yml)
