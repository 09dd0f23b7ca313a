"""Ingestion: sources -> fetch -> extract -> chunk -> embed -> index, incremental and atomic.

Size: the ingestion pipeline's stages and its incremental bookkeeping in one place, so the order of
the stages and what each persists can be read top to bottom.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from tqdm import tqdm

from .chunk import chunk_document
from .config import REPO_ROOT, Settings
from .embed import get_embedder
from .extract import ExtractError, decode, detect_format, extract
from .fetch import Fetcher, FetchError, FetchResult
from .index import FLAT_LIMIT, IndexStore
from .models import Chunk, Document
from .publish import (PublishError, check_base_url, docs_url, page_path, published_root, render_markdown_page,
                      render_sections, section_anchors, strip_front_matter, sweep, vendor_url, write_page)
from .sources import SourceSpec

log = logging.getLogger(__name__)

FILE_SUFFIXES = {".md", ".markdown", ".html", ".htm", ".pdf", ".txt", ".text"}
EMBED_BLOCK = 2048
DEFAULT_PUBLIC_URL = "http://localhost:5005"


def public_url(environ: dict[str, str] | None = None) -> str:
    """Where customers open Atende's published pages (``/docs/``): KNOWLEDGE_PUBLIC_URL, else
    RASA_URL (the chat server that serves them), else the local default. Raises RuntimeError."""
    env = os.environ if environ is None else environ
    name = "KNOWLEDGE_PUBLIC_URL" if env.get("KNOWLEDGE_PUBLIC_URL") else "RASA_URL"
    try:
        return check_base_url(env.get(name) or DEFAULT_PUBLIC_URL, name)
    except PublishError as exc:
        raise RuntimeError(str(exc)) from exc


@dataclass
class IngestSummary:
    fetched: int = 0
    not_modified: int = 0
    unchanged: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    removed: int = 0
    documents: int = 0
    chunks: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    version: str | None = None
    swapped: bool = False
    problems: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            "Resumo da ingestão:",
            f"  páginas/arquivos obtidos: {self.fetched} (não modificados: {self.not_modified}, "
            f"sem mudança: {self.unchanged}, novos ou alterados: {self.updated})",
            f"  ignorados: {self.skipped}   com falha: {self.failed}   removidos do índice: {self.removed}",
            f"  documentos no índice: {self.documents}   trechos: {self.chunks} "
            f"(embeddings calculados agora: {self.chunks_embedded})",
            f"  tempo: {self.seconds:.1f} s (embeddings: {self.embed_seconds:.1f} s)",
            f"  versão: {self.version or '-'}" + (" (ativada)" if self.swapped else " (índice anterior mantido)"),
        ]
        lines += [f"  ! {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  ! ... e mais {len(self.problems) - 50} problemas")
        return "\n".join(lines)


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path.resolve())


class _Run:
    def __init__(self, settings: Settings, store: IndexStore, fetcher: Fetcher, progress: bool,
                 public_url: str = DEFAULT_PUBLIC_URL) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.progress = progress
        self.summary = IngestSummary()
        self.prev_docs: dict[str, dict[str, Any]] = {}
        self.prev_chunks: dict[str, list[tuple[Chunk, np.ndarray]]] = {}
        self.docs: dict[str, dict[str, Any]] = {}
        self.kept: dict[str, list[tuple[Chunk, np.ndarray]]] = {}
        self.pending: dict[str, list[Chunk]] = {}
        self.seen: set[str] = set()  # URLs already requested in this run (sources may overlap)
        self.public_url = public_url
        self.published = published_root(settings.index_dir)
        self.pages: dict[str, str] = {}  # published page -> document key, in this run

    # ---------------------------------------------------------------- previous version
    def load_previous(self) -> None:
        version = self.store.current_version()
        if not version:
            return
        try:
            meta, chunks, embeddings, docs = self.store.load_raw(version)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("previous index %s unreadable (%s); re-embedding everything", version, exc)
            return
        if meta.get("embedding_model") != self.settings.embedding_model:
            log.info("embedding model changed (%s -> %s): every chunk is embedded again",
                     meta.get("embedding_model"), self.settings.embedding_model)
            self.prev_docs = {k: dict(v, content_hash=None, etag=None, last_modified=None) for k, v in docs.items()}
            return
        self.prev_docs = docs
        for chunk, vec in zip(chunks, embeddings):
            self.prev_chunks.setdefault(chunk.doc_key, []).append((chunk, vec))

    # ---------------------------------------------------------------- per document
    def _problem(self, key: str, reason: str) -> None:
        log.warning("%s: %s", key, reason)
        self.summary.problems.append(f"{key}: {reason}")

    def keep_previous(self, key: str, reason: str, failed: bool = True) -> None:
        if failed:
            self.summary.failed += 1
        else:
            self.summary.skipped += 1
        if key in self.prev_docs and key in self.prev_chunks and key not in self.docs:
            self.docs[key] = self.prev_docs[key]
            self.kept[key] = self.prev_chunks[key]
            self._problem(key, f"{reason} (previous version kept)")
        else:
            self._problem(key, f"{reason} (skipped)")

    def handle(self, key: str, source: SourceSpec, data: bytes | None, *, url: str, content_type: str | None,
               etag: str | None = None, last_modified: str | None = None, not_modified: bool = False,
               module_hint: str | None = None, links: list[str] | None = None, name: str | None = None,
               publish: str | None = None) -> None:
        """One document; ``name`` (default: url) is what its format is detected from, ``publish`` the
        page Atende publishes it as (``<source>/<path>.html``, knowledge/publish.py)."""
        if key in self.docs:
            return
        self.summary.fetched += 1
        prev = self.prev_docs.get(key)
        if not_modified:
            if prev and key in self.prev_chunks:
                self.summary.not_modified += 1
                self.docs[key] = dict(prev, links=links if links is not None else prev.get("links", []))
                self.kept[key] = self.prev_chunks[key]
                return
            self.keep_previous(key, "304 Not Modified without a stored copy")
            return
        assert data is not None
        digest = hashlib.sha256(data).hexdigest()
        state: dict[str, Any] = {"source": source.name, "url": url, "etag": etag, "last_modified": last_modified,
                                 "content_hash": digest, "links": links or []}
        # the same bytes cited at the same URL keep their chunks (a new URL: the citations change)
        if prev and prev.get("content_hash") == digest and prev.get("url") == url and key in self.prev_chunks:
            if publish and not self.published.joinpath(*publish.split("/")).is_file():
                self.export(key, publish, data)
            self.summary.unchanged += 1
            self.docs[key] = dict(prev, **{k: v for k, v in state.items() if v is not None})
            self.docs[key].pop("published", None)
            if publish:
                self.docs[key]["published"] = publish
            self.kept[key] = self.prev_chunks[key]
            return
        try:
            doc = extract(name or url, data, content_type)
        except ExtractError as exc:
            self.keep_previous(key, str(exc), failed=False)
            return
        doc.url = url
        doc.product = source.product or doc.product
        doc.module = doc.module or module_hint or source.module
        chunks = chunk_document(doc, key)
        if not chunks:
            self.keep_previous(key, "no text content", failed=False)
            return
        if publish:
            headings = self.export(key, publish, data, doc)
            if headings is not None:
                state["published"] = publish
                anchors = section_anchors(headings, [(c.extra.get("section"), c.heading) for c in chunks], doc.title)
                for chunk, anchor in zip(chunks, anchors):
                    if anchor:
                        chunk.url = f"{url}#{anchor}"
        self.summary.updated += 1
        state.update(title=doc.title, product=doc.product, module=doc.module)
        self.docs[key] = state
        self.pending[key] = chunks

    def export(self, key: str, page: str, data: bytes, doc: Document | None = None) -> list[tuple[str, str]] | None:
        """Write the published page of a folder document; its headings ``[(anchor_id, id)]``, or
        None when it cannot be written (a problem of the run)."""
        try:
            if doc is None:
                doc = extract(key, data, None)
            if detect_format(key, None, data) == "markdown":
                text = strip_front_matter(decode(data, None, "markdown"))
                content, headings = render_markdown_page(text, doc.title)
            else:
                content, headings = render_sections(doc.title, [(s.headings, s.text) for s in doc.sections])
            write_page(self.published, page, content)
        except (ExtractError, OSError) as exc:
            self._problem(key, f"page not published ({page}): {exc}")
            return None
        return headings

    def page_for(self, source: SourceSpec, folder: Path, path: Path, key: str) -> tuple[str, str | None]:
        """The citation URL of a folder file, and the page Atende publishes (None: the vendor's)."""
        rel = path.relative_to(folder)
        if source.public_base_url:
            return vendor_url(source.public_base_url, rel), None
        page = page_path(source.name, rel)
        if page is None:
            self._problem(key, "not published: a hidden file or folder (the server refuses dot names)")
            return key, None
        owner = self.pages.setdefault(page, key)
        if owner != key:
            self._problem(key, f"not published: {page} is already the page of {owner}")
            return key, None
        return docs_url(self.public_url, page), page

    # ---------------------------------------------------------------- per source
    def _bar(self, items: Iterable[Any], desc: str, total: int | None = None) -> Iterable[Any]:
        return tqdm(items, desc=desc, total=total, unit="doc", disable=not self.progress, file=sys.stderr,
                    leave=False)

    def run_folder(self, source: SourceSpec, folder: Path) -> bool:
        if not folder.is_dir():
            self._problem(str(folder), "folder not found")
            return False
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FILE_SUFFIXES)
        for path in self._bar(files, f"{source.name} (pasta)"):
            key = _display_path(path)
            module_hint = None
            if source.module_from_subdir:
                rel = path.relative_to(folder).parts
                module_hint = rel[0] if len(rel) > 1 else None
            try:
                size = path.stat().st_size
                if size > self.settings.max_bytes:
                    self.keep_previous(key, f"too large ({size} bytes > {self.settings.max_bytes})", failed=False)
                    continue
                data = path.read_bytes()
            except OSError as exc:
                self.keep_previous(key, f"unreadable: {exc}")
                continue
            url, page = self.page_for(source, folder, path, key)
            self.handle(key, source, data, url=url, content_type=None, module_hint=module_hint, name=key,
                        publish=page)
        return True

    def _fetch_one(self, source: SourceSpec, url: str) -> None:
        if url in self.seen:
            return
        self.seen.add(url)
        prev = self.prev_docs.get(url) or {}
        try:
            res = self.fetcher.fetch(url, etag=prev.get("etag"), last_modified=prev.get("last_modified"),
                                     hosts=source.hosts)
        except FetchError as exc:
            if exc.gone:
                self.summary.failed += 1
                self._problem(url, f"{exc.reason} (page gone, removed)")
            else:
                self.keep_previous(url, exc.reason)
            return
        self._result(source, url, res, None)

    def _result(self, source: SourceSpec, url: str, res: FetchResult, links: list[str] | None) -> None:
        self.handle(url, source, None if res.not_modified else res.content, url=res.url,
                    content_type=res.content_type, etag=res.etag, last_modified=res.last_modified,
                    not_modified=res.not_modified, links=links)

    def run_urls(self, source: SourceSpec, urls: list[str], desc: str) -> None:
        for url in self._bar(urls, desc):
            self._fetch_one(source, url)

    def run_sitemap(self, source: SourceSpec) -> bool:
        assert source.sitemap
        try:
            urls = self.fetcher.sitemap_urls(source.sitemap, hosts=source.hosts)
        except FetchError as exc:
            self._problem(source.sitemap, f"sitemap unreadable: {exc.reason}")
            return False
        if source.prefix:
            urls = [u for u in urls if u.startswith(source.prefix)]
        self.run_urls(source, urls[: source.max_pages or self.settings.max_pages], f"{source.name} (sitemap)")
        return True

    def run_crawl(self, source: SourceSpec) -> bool:
        assert source.start_url
        known = {k: (v.get("etag"), v.get("last_modified"), list(v.get("links") or []))
                 for k, v in self.prev_docs.items() if v.get("source") == source.name}
        ok = False
        bar = tqdm(desc=f"{source.name} (rastreamento)", unit="pág", disable=not self.progress, file=sys.stderr,
                   leave=False)
        for url, res, links in self.fetcher.crawl(source.start_url, source.prefix,
                                                  source.max_pages or self.settings.max_pages, known,
                                                  hosts=source.hosts):
            bar.update(1)
            self.seen.add(url)
            if isinstance(res, FetchError):
                if url == source.start_url and not res.gone:
                    self._problem(url, f"start page unreachable: {res.reason}")
                    self.keep_previous(url, res.reason)
                    bar.close()
                    return False
                if res.gone:
                    self.summary.failed += 1
                    self._problem(url, f"{res.reason} (page gone, removed)")
                else:
                    self.keep_previous(url, res.reason)
                continue
            ok = True
            self._result(source, url, res, links)
        bar.close()
        return ok

    def run_articles(self, source: SourceSpec) -> bool:
        """The console's approved articles (``articles: database``), cited with their console URLs;
        an unreachable or unmigrated database keeps the articles indexed before."""
        from .articles_source import ArticlesUnavailable, approved_articles

        try:
            docs = approved_articles()
        except ArticlesUnavailable as exc:
            self._problem(f"{source.name} (artigos)", str(exc))
            return False
        for doc in self._bar(docs, f"{source.name} (artigos)"):
            self.handle(doc["key"], source, doc["data"], url=doc["url"], content_type="text/markdown; charset=utf-8",
                        module_hint=doc["module"])
        return True

    def run_source(self, source: SourceSpec) -> None:
        complete = True
        if source.articles:
            complete &= self.run_articles(source)
        if source.folder is not None:
            complete &= self.run_folder(source, source.folder)
        if source.sitemap:
            complete &= self.run_sitemap(source)
        if source.start_url:
            complete &= self.run_crawl(source)
        if source.urls:
            self.run_urls(source, list(source.urls), f"{source.name} (URLs)")
        if not complete:
            # the source could not be listed: its documents are kept, not treated as vanished
            for key, state in self.prev_docs.items():
                if state.get("source") == source.name and key not in self.docs and key in self.prev_chunks:
                    self.docs[key] = state
                    self.kept[key] = self.prev_chunks[key]


def ingest(sources: list[SourceSpec], settings: Settings, *, progress: bool | None = None,
           fetcher: Fetcher | None = None, flat_limit: int = FLAT_LIMIT) -> IngestSummary:
    """Build a new index version from the sources; the live version keeps serving until the swap."""
    t0 = time.perf_counter()
    progress = sys.stderr.isatty() if progress is None else progress
    # a bad KNOWLEDGE_PUBLIC_URL stops here, before anything is written
    publishing = any(s.folder is not None and not s.public_base_url for s in sources)
    site = public_url() if publishing else DEFAULT_PUBLIC_URL
    store = IndexStore(settings.index_dir)
    own_fetcher = fetcher is None
    fetcher = fetcher or Fetcher(user_agent=settings.user_agent, delay_s=settings.crawl_delay_s,
                                 timeout_s=settings.fetch_timeout_s, max_retries=settings.max_retries,
                                 max_bytes=settings.max_bytes, allowed_private_hosts=settings.allowed_private_hosts)
    # sources flagged allow_private_network may reach their own hosts on private addresses
    fetcher.guard.allow_private(h for s in sources if s.allow_private_network for h in s.hosts)
    try:
        with store.writer_lock():
            run = _Run(settings, store, fetcher, progress, site)
            run.load_previous()
            for source in sources:
                run.run_source(source)
            summary = run.summary
            summary.removed = sum(1 for k in run.prev_docs if k not in run.docs)
            pending_keys = [k for k in run.docs if k in run.pending]
            new_chunks = [c for k in pending_keys for c in run.pending[k]]
            kept_total = sum(len(v) for k, v in run.kept.items() if k in run.docs)
            if not new_chunks and not kept_total:
                summary.problems.append("nothing to index: no document produced text")
                summary.version = store.current_version()
                summary.seconds = time.perf_counter() - t0
                return summary
            unchanged = (not new_chunks and summary.removed == 0 and store.current_version() is not None
                         and set(run.docs) == set(run.prev_docs))
            if unchanged:
                _sweep_published(run)
                summary.version = store.current_version()
                summary.documents = len(run.docs)
                summary.chunks = kept_total
                summary.seconds = time.perf_counter() - t0
                return summary
            te = time.perf_counter()
            embedder = get_embedder(settings.embedding_model)
            texts = [c.embed_text() for c in new_chunks]
            parts: list[np.ndarray] = []
            with tqdm(total=len(texts), desc="embeddings", unit="trecho", disable=not progress,
                      file=sys.stderr, leave=False) as bar:
                for start in range(0, len(texts), EMBED_BLOCK):
                    block = texts[start:start + EMBED_BLOCK]
                    parts.append(embedder.encode(block))
                    bar.update(len(block))
            summary.embed_seconds = time.perf_counter() - te
            summary.chunks_embedded = len(new_chunks)
            new_vecs = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)
            chunks: list[Chunk] = []
            vecs: list[np.ndarray] = []
            offset = 0
            for key in run.docs:
                if key in run.pending:
                    n = len(run.pending[key])
                    chunks.extend(run.pending[key])
                    vecs.append(new_vecs[offset:offset + n])
                    offset += n
                elif key in run.kept:
                    chunks.extend(c for c, _ in run.kept[key])
                    vecs.append(np.stack([v for _, v in run.kept[key]]))
            embeddings = np.ascontiguousarray(np.concatenate(vecs), dtype=np.float32)
            summary.version = store.write(chunks, embeddings, run.docs,
                                          {"embedding_model": settings.embedding_model,
                                           "sources": [s.name for s in sources]}, flat_limit=flat_limit)
            summary.swapped = True
            _sweep_published(run)
            summary.documents = len(run.docs)
            summary.chunks = len(chunks)
            summary.seconds = time.perf_counter() - t0
            return summary
    finally:
        if own_fetcher:
            fetcher.close()


def _sweep_published(run: _Run) -> None:
    """The published folder mirrors the live index: a page whose document left it is removed."""
    keep = {str(state["published"]) for state in run.docs.values() if state.get("published")}
    try:
        removed = sweep(run.published, keep)
    except OSError as exc:
        run._problem(str(run.published), f"published pages not cleaned up: {exc}")
        return
    if removed:
        log.info("removed %d published page(s) of documents no longer indexed", removed)
