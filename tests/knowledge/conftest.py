"""Fixtures for the knowledge tests: isolated environment, fast fetch settings, the demo index."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterator

import pytest

from knowledge.config import REPO_ROOT, Settings

DEMO_SOURCES = REPO_ROOT / "knowledge" / "sources.yml"
ENV_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "KNOWLEDGE_INDEX_DIR", "EMBEDDING_MODEL",
            "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "KNOWLEDGE_ALLOWED_PRIVATE_HOSTS",
            "KNOWLEDGE_LLM_CALLS_PER_HOUR")
# the loopback doc sites of these tests (tests/support/doc_site.py) are an operator-allowed private host
LOOPBACK_ALLOWANCE = ("127.0.0.1",)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def fast_settings(index_dir: Path, **overrides: object) -> Settings:
    """Settings for tests: no crawl delay, short timeouts, one retry, the loopback doc site allowed."""
    base = Settings.from_env(index_dir)
    values: dict[str, object] = dict(crawl_delay_s=0.0, fetch_timeout_s=2.0, max_retries=1,
                                     allowed_private_hosts=LOOPBACK_ALLOWANCE)
    values.update(overrides)
    return dataclasses.replace(base, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo documentation ingested once per test session (the same call as `make run`)."""
    from knowledge.ingest import ingest
    from knowledge.sources import load_sources

    index_dir = tmp_path_factory.mktemp("demo-index")
    old = os.environ.pop("KNOWLEDGE_INDEX_DIR", None)
    summary = ingest(load_sources(DEMO_SOURCES), fast_settings(index_dir), progress=False)
    assert summary.swapped and summary.failed == 0 and summary.skipped == 0, summary.render()
    if old is not None:
        os.environ["KNOWLEDGE_INDEX_DIR"] = old
    yield index_dir
