"""On-disk index: versioned directories, an atomically replaced CURRENT pointer, FAISS + BM25."""
from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import bm25s
import faiss
import numpy as np

from .models import Chunk
from .text import tokenize

log = logging.getLogger(__name__)

FLAT_LIMIT = 100_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96
FORMAT_VERSION = 1


class IndexNotFound(Exception):
    pass


def build_faiss(embeddings: np.ndarray, flat_limit: int = FLAT_LIMIT) -> faiss.Index:
    dim = embeddings.shape[1]
    if embeddings.shape[0] <= flat_limit:
        index: faiss.Index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    if embeddings.shape[0]:
        index.add(embeddings)
    return index


def build_bm25(chunks: list[Chunk]) -> bm25s.BM25:
    retriever = bm25s.BM25(k1=1.2, b=0.75)
    corpus = [tokenize(c.embed_text()) or ["\u2205"] for c in chunks]
    retriever.index(corpus or [["\u2205"]], show_progress=False)
    return retriever


@dataclass
class LoadedIndex:
    version: str
    path: Path
    meta: dict[str, Any]
    chunks: list[Chunk]
    embeddings: np.ndarray
    faiss_index: faiss.Index
    bm25: bm25s.BM25
    products: np.ndarray  # product code per chunk (object array)
    docs: dict[str, dict[str, Any]]
    filters: dict[tuple[str, ...], Any] = field(default_factory=dict)  # product filter cache

    @property
    def model_name(self) -> str:
        return str(self.meta.get("embedding_model", ""))


class IndexStore:
    """root/CURRENT names the live version under root/versions/."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions = self.root / "versions"

    # ---------------------------------------------------------------- reading
    def current_version(self) -> str | None:
        try:
            name = (self.root / "CURRENT").read_text(encoding="utf-8").strip()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return name if name and (self.versions / name / "meta.json").exists() else None

    def load_raw(self, version: str) -> tuple[dict[str, Any], list[Chunk], np.ndarray, dict[str, dict[str, Any]]]:
        vdir = self.versions / version
        meta = json.loads((vdir / "meta.json").read_text(encoding="utf-8"))
        with open(vdir / "chunks.jsonl", encoding="utf-8") as fh:
            chunks = [Chunk.from_dict(json.loads(line)) for line in fh if line.strip()]
        embeddings = np.load(vdir / "embeddings.npy")
        docs = json.loads((vdir / "docs.json").read_text(encoding="utf-8"))
        return meta, chunks, embeddings, docs

    def load(self, version: str | None = None) -> LoadedIndex:
        version = version or self.current_version()
        if not version:
            raise IndexNotFound(f"no knowledge index in {self.root}")
        vdir = self.versions / version
        meta, chunks, embeddings, docs = self.load_raw(version)
        index = faiss.read_index(str(vdir / "faiss.index"))
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = HNSW_EF_SEARCH
        bm25 = bm25s.BM25.load(str(vdir / "bm25"), show_progress=False)
        products = np.array([c.product or "" for c in chunks], dtype=object)
        loaded = LoadedIndex(version, vdir, meta, chunks, embeddings, index, bm25, products, docs)
        _freeze()
        return loaded

    # ---------------------------------------------------------------- writing
    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One ingestion at a time per index directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".ingest.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise RuntimeError(f"another ingestion is running on {self.root}") from exc
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def write(self, chunks: list[Chunk], embeddings: np.ndarray, docs: dict[str, dict[str, Any]],
              meta: dict[str, Any], flat_limit: int = FLAT_LIMIT) -> str:
        """Write a complete new version next to the live one, then swap CURRENT atomically."""
        assert embeddings.shape[0] == len(chunks)
        self.versions.mkdir(parents=True, exist_ok=True)
        name = time.strftime("v%Y%m%dT%H%M%S", time.gmtime()) + f"-{secrets.token_hex(3)}"
        tmp = self.versions / f".tmp-{name}"
        tmp.mkdir()
        try:
            faiss_index = build_faiss(embeddings, flat_limit)
            faiss.write_index(faiss_index, str(tmp / "faiss.index"))
            build_bm25(chunks).save(str(tmp / "bm25"), show_progress=False)
            np.save(tmp / "embeddings.npy", embeddings)
            with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
                for c in chunks:
                    fh.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
            (tmp / "docs.json").write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
            full_meta = dict(meta, format=FORMAT_VERSION, n_chunks=len(chunks), dim=int(embeddings.shape[1]),
                             index_type=type(faiss_index).__name__, created=time.time(), version=name)
            (tmp / "meta.json").write_text(json.dumps(full_meta, ensure_ascii=False, indent=1), encoding="utf-8")
            for f in tmp.iterdir():
                if f.is_file():
                    with open(f, "rb") as fh:
                        os.fsync(fh.fileno())
            os.rename(tmp, self.versions / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        pointer = self.root / f".CURRENT.{secrets.token_hex(4)}"
        pointer.write_text(name + "\n", encoding="utf-8")
        with open(pointer, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(pointer, self.root / "CURRENT")
        self.cleanup(keep=3)
        return name

    def cleanup(self, keep: int = 3) -> None:
        """Remove old versions (readers hold their index in memory once loaded)."""
        current = self.current_version()
        # Oldest first by when each version was written: names carry the time only to the second
        # (plus a random suffix), so two versions of the same second would sort at random by name.
        olds = sorted((p for p in self.versions.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: (p.stat().st_mtime_ns, p.name))
        for p in olds[:-keep] if keep else olds:
            if p.name != current:
                shutil.rmtree(p, ignore_errors=True)
        for p in self.versions.glob(".tmp-*"):
            if time.time() - p.stat().st_mtime > 3600:
                shutil.rmtree(p, ignore_errors=True)


def _freeze() -> None:
    """Move the (many, long-lived) index objects out of the GC's reach: with 100k chunks a full
    collection during a query costs tens of milliseconds."""
    gc.collect()
    gc.freeze()


def in_memory_index(chunks: list[Chunk], embeddings: np.ndarray, meta: dict[str, Any] | None = None,
                    flat_limit: int = FLAT_LIMIT) -> LoadedIndex:
    """An index that lives only in memory (evaluation, benchmarks)."""
    loaded = LoadedIndex(
        version="memory", path=Path("."), meta=dict(meta or {}), chunks=chunks, embeddings=embeddings,
        faiss_index=build_faiss(embeddings, flat_limit), bm25=build_bm25(chunks),
        products=np.array([c.product or "" for c in chunks], dtype=object), docs={},
    )
    _freeze()
    return loaded
