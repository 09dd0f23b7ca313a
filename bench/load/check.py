"""After the load: every conversation read back from Rasa's `events` table (the tracker store).

For each conversation the user turns in the database must be exactly the turns the server
accepted, in the order they were sent: nothing lost, nothing duplicated, nothing out of order.
Website turns are compared by text (the channel gives Rasa no message id), WhatsApp turns by the
message id that Meta would send (`wamid`).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import psycopg

from .clients import Conversation


@dataclass
class CheckReport:
    conversations: int = 0
    turns_expected: int = 0
    turns_found: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order)


def user_turns(database_url: str, senders: list[str]) -> dict[str, list[tuple[str, str]]]:
    """sender -> [(text, message_id)] of its user events, in the order they were stored."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    found: dict[str, list[tuple[str, str]]] = {s: [] for s in senders}
    with psycopg.connect(url) as conn:
        rows = conn.execute("select sender_id, data from events where type_name = 'user' "
                            "and sender_id = any(%s) order by id", (senders,)).fetchall()
    for sender, data in rows:
        event = json.loads(data)
        found[sender].append((event.get("text") or "", event.get("message_id") or ""))
    return found


def check(database_url: str, conversations: list[Conversation]) -> CheckReport:
    report = CheckReport(conversations=len(conversations))
    stored = user_turns(database_url, [c.sender_id for c in conversations])
    for conv in conversations:
        got = [mid if conv.channel == "whatsapp" else text for text, mid in stored.get(conv.sender_id, [])]
        want = list(conv.accepted)
        report.turns_expected += len(want)
        report.turns_found += len(got)
        missing = Counter(want) - Counter(got)
        extra = Counter(got) - Counter(want)
        label = f"{conv.channel}:{conv.sender_id}"
        if missing:
            report.lost.append(f"{label} {sorted(missing.elements())}")
        if extra:
            report.duplicated.append(f"{label} {sorted(extra.elements())}")
        if not missing and not extra and got != want:
            report.out_of_order.append(f"{label} sent {want} stored {got}")
    return report
