"""NLU evaluation on the held-out file (tests/nlu/holdout.yml, never used for training)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ops.paths import RASA_BIN, ROOT

HOLDOUT = ROOT / "tests" / "nlu" / "holdout.yml"
FLOOR = 0.90


def evaluate(model: Path, out: Path) -> tuple[float, float]:
    proc = subprocess.run([str(RASA_BIN), "test", "nlu", "--nlu", str(HOLDOUT), "--model", str(model),
                           "--out", str(out), "--no-plot"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    intents = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    entities = json.loads((out / "DIETClassifier_report.json").read_text(encoding="utf-8"))
    return float(intents["macro avg"]["f1-score"]), float(entities["module"]["f1-score"])


def test_holdout_intent_and_module_f1(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    intent_f1, module_f1 = evaluate(model, tmp_path / "nlu")
    with capsys.disabled():  # the figures belong in the test run's output, passed or not
        print(f"\nNLU hold-out: intent macro-F1 = {intent_f1:.3f}, module entity F1 = {module_f1:.3f}")
        errors = tmp_path / "nlu" / "intent_errors.json"
        if errors.exists():
            for err in json.loads(errors.read_text(encoding="utf-8"))[:20]:
                print("  intent error:", err["text"], "->", err["intent_prediction"]["name"],
                      "expected", err["intent"])
    assert intent_f1 >= FLOOR
    assert module_f1 >= FLOOR
