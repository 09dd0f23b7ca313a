"""Rasa test stories (bot/tests) against the trained model, with the real action server endpoint."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from ops.paths import RASA_BIN, ROOT
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def test_every_test_story_passes(stack: Stack, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [str(RASA_BIN), "test", "core", "--stories", str(ROOT / "bot" / "tests"), "--model", str(model),
         "--endpoints", str(stack.workdir / "endpoints.yml"), "--out", str(out), "--no-plot"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    print(proc.stdout[-2000:], proc.stderr[-3000:])
    assert proc.returncode == 0
    failed = out / "failed_test_stories.yml"
    content = yaml.safe_load(failed.read_text(encoding="utf-8")) if failed.exists() else None
    stories = (content or {}).get("stories") or [] if isinstance(content, dict) else []
    assert stories == [], failed.read_text(encoding="utf-8")
    report = (out / "story_report.json")
    assert report.exists()
