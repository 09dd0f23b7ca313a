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


# ------------------------------------------------------------------ issue 14: follow-ups in the dialogue
def _sources(messages: list[dict]) -> list[str]:
    return [s["url"] for m in messages for s in ((m.get("custom") or {}).get("sources") or [])]


def _texts(messages: list[dict]) -> list[str]:
    return [m.get("text") or "" for m in messages]


@pytest.mark.parametrize("first,follow_up,page,resolved", [
    # the case: NLU is unsure of the follow-up (nlu_fallback), typed where Sim/Não was expected
    ("como faço backup do banco do gestor?", "e pra restaurar depois?", "gestor/backup-e-restauracao",
     "como faço backup do banco do gestor? e pra restaurar depois?"),
    # a bare module after an answer (inform_module) continues the question
    ("como instalo o PDV?", "e no TEF?", "tef/instalacao-e-configuracao", "como instalo o TEF?"),
])
def test_a_follow_up_instead_of_yes_no_is_the_next_question(chat: Chat, first: str, follow_up: str, page: str,
                                                            resolved: str) -> None:
    messages = chat.say(first)
    assert _texts(messages)[-1] == "Isso resolveu?", messages
    messages = chat.say(follow_up)
    texts = _texts(messages)
    assert not any(t.startswith("Desculpe, não entendi") for t in texts), texts
    assert texts[-1] == "Isso resolveu?", texts
    assert any(page in url for url in _sources(messages)[:3]), _sources(messages)
    slots = chat.slots()
    assert slots["last_question"] == resolved and slots["awaiting"] == "resolved_check"


def test_an_unclear_message_after_an_answer_still_asks_to_rephrase(chat: Chat) -> None:
    assert _texts(chat.say("como faço backup do banco do gestor?"))[-1] == "Isso resolveu?"
    texts = _texts(chat.say("kkkk"))
    assert texts and all("Fontes:" not in t for t in texts), texts
