"""Where do customers' questions go? The trained Rasa model's NLU and dialogue policies, asked what
they do with the demo questions (knowledge/eval/demo_questions.jsonl) and the follow-up turns of
knowledge/eval/followups.jsonl (issue 14, item 3):

- "first": each demo question as the first message of a conversation;
- "after answer": each demo question typed right after an answer and its "Isso resolveu?" (where
  the bot expected Sim/Não);
- "follow-up": the second turn of each follow-up dialogue, after the first was answered.

Each message lands in one of: `knowledge` (action_answer_question, or action_question_or_fallback
on a message that `actions.followups.looks_like_question` accepts), `fallback` ("Desculpe, não
entendi" or a human offered: action_fallback, action_question_or_fallback on anything else, the
core fallback) or `other` (another action: the module prompt, "Isso resolveu?" taken as Sim/Não,
...). Nothing is executed: the policies predict the next action on a tracker built for the context.

    .venv/bin/python bench/nlu_routing.py [--model models/atende-....tar.gz] [--json] [--show N]

Without --model, the model of the current training data (python -m ops.train). For the figures
before a change of bot/data, train the older data into a folder of its own and pass that model.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEMO = ROOT / "knowledge" / "eval" / "demo_questions.jsonl"
FOLLOWUPS = ROOT / "knowledge" / "eval" / "followups.jsonl"

# Runs in the bot env (Rasa): reads {"text", "previous"} lines, writes intent and next action.
PREDICT = r'''
import asyncio, json, logging, sys, warnings
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
from rasa.core.agent import Agent
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

agent = Agent.load(sys.argv[1])
domain = agent.domain

def user(parse):
    return UserUttered(parse["text"], parse["intent"], parse.get("entities") or [], parse_data=parse)

async def main():
    for n, line in enumerate(sys.stdin):
        case = json.loads(line)
        parse = await agent.parse_message(case["text"])
        events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
        if case.get("previous"):
            previous = await agent.parse_message(case["previous"])
            previous["intent"] = {"name": "ask_question", "confidence": 1.0}
            events += [user(previous), ActionExecuted("action_answer_question"),
                       SlotSet("last_question", case["previous"]), SlotSet("awaiting", "resolved_check"),
                       BotUttered("Isso resolveu?"), ActionExecuted("action_listen")]
        events.append(user(parse))
        tracker = DialogueStateTracker.from_events(f"bench-{n}", events, domain.slots)
        prediction = agent.predict_next_with_tracker(tracker)
        best = max(prediction["scores"], key=lambda s: s["score"])
        print(json.dumps({"intent": parse["intent"]["name"], "confidence": parse["intent"]["confidence"],
                          "action": best["action"], "policy": prediction["policy"]}), flush=True)

asyncio.run(main())
'''

KNOWLEDGE_ACTIONS = {"action_answer_question"}
FALLBACK_ACTIONS = {"action_fallback", "action_default_fallback", "action_two_stage_fallback"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cases() -> dict[str, list[dict]]:
    demo = [r["question"] for r in read_jsonl(DEMO)]
    dialogues = read_jsonl(FOLLOWUPS)
    return {
        "first": [{"text": q} for q in demo],
        # the previous question: another demo question of the file (the one before it)
        "after answer": [{"text": q, "previous": demo[i - 1]} for i, q in enumerate(demo)],
        "follow-up": [{"text": d["turns"][1], "previous": d["turns"][0]} for d in dialogues],
    }


def predict(model: Path, rows: list[dict]) -> list[dict]:
    from ops.paths import BOT_PYTHON

    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", RASA_TELEMETRY_ENABLED="false")
    proc = subprocess.run([str(BOT_PYTHON), "-c", PREDICT, str(model)], cwd=ROOT, env=env, text=True,
                          input="".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                          capture_output=True, timeout=1800)
    out = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or len(out) != len(rows):
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"prediction failed (exit {proc.returncode}, {len(out)}/{len(rows)} answers)")
    return out


def route(text: str, action: str) -> str:
    from actions.followups import looks_like_question
    from actions.guard import bad_input_response

    if action in KNOWLEDGE_ACTIONS:
        return "knowledge"
    if action == "action_question_or_fallback":
        return "knowledge" if not bad_input_response(text) and looks_like_question(text) else "fallback"
    if action in FALLBACK_ACTIONS:
        return "fallback"
    return "other"


def measure(model: Path) -> dict:
    by_context = cases()
    flat = [row for rows in by_context.values() for row in rows]
    predicted = iter(predict(model, flat))
    result: dict[str, dict] = {}
    for context, rows in by_context.items():
        routes: Counter[str] = Counter()
        intents: Counter[str] = Counter()
        actions: Counter[str] = Counter()
        misses = []
        for row in rows:
            p = next(predicted)
            where = route(row["text"], p["action"])
            routes[where] += 1
            intents[p["intent"]] += 1
            actions[p["action"]] += 1
            if where != "knowledge":
                misses.append(f"{row['text']!r} -> {p['intent']} ({p['confidence']:.2f}) -> {p['action']}")
        result[context] = {"n": len(rows), "routes": dict(routes), "intents": dict(intents.most_common()),
                           "actions": dict(actions.most_common()), "misses": misses}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained model (default: the current training data's, trained if needed)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--show", type=int, default=10, help="misrouted messages to print per context")
    args = parser.parse_args()
    if args.model:
        model = Path(args.model)
    else:
        from ops.train import train_if_changed

        model = train_if_changed(quiet=True)
    result = measure(model)
    if args.json:
        print(json.dumps({"model": model.name, **result}, ensure_ascii=False))
        return 0
    print(f"model: {model.name}")
    for context, f in result.items():
        r = f["routes"]
        print(f"[{context:12}] n={f['n']:3}  knowledge={r.get('knowledge', 0):3}  fallback={r.get('fallback', 0):3}  "
              f"other={r.get('other', 0):3}   intents: "
              + ", ".join(f"{k}={v}" for k, v in f["intents"].items()))
        for miss in f["misses"][:args.show]:
            print(f"    {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
