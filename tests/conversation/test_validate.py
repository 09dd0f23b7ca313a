"""`rasa data validate` is clean: the only warnings allowed are the ones that are by design."""
from __future__ import annotations

import re
import subprocess

from ops.paths import BOT_DATA, CONFIG, DOMAIN, RASA_BIN, ROOT

# Intents that never come from NLU: the connectors and the console send them.
# Responses Rasa itself utters: the core fallback, and the questions of the forms' slots.
RASA_OWN = {"utter_default"}
FORM_SLOTS = {"ticket_description", "ticket_module", "ticket_type", "rating", "lead_name", "lead_contact"}
NOT_FROM_NLU = {"EXTERNAL_agent_reply", "EXTERNAL_ticket_closed", "inbound_call", "media_received",
                "shared_contact"}


def test_rasa_data_validate_is_clean() -> None:
    proc = subprocess.run([str(RASA_BIN), "data", "validate", "--domain", str(DOMAIN), "--data", str(BOT_DATA),
                           "--config", str(CONFIG)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    print(out[-3000:])
    assert proc.returncode == 0
    actions_code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "actions").glob("*.py"))
    unexpected = []
    for warning in re.findall(r"UserWarning: (.*)", out):
        unused = re.match(r"The utterance '(\w+)' is not used in any story or rule", warning)
        if unused:
            # Responses uttered by custom actions: fine, as long as an action really utters them.
            name = unused.group(1)
            if name in RASA_OWN or (name.startswith("utter_ask_") and name[len("utter_ask_"):] in FORM_SLOTS):
                continue
            if f'"{name}"' not in actions_code:
                unexpected.append(warning)
            continue
        no_data = re.match(r"The intent '(\w+)' is listed in the domain file, but is not found in the NLU", warning)
        if no_data and no_data.group(1) in NOT_FROM_NLU:
            continue
        unexpected.append(warning)
    assert unexpected == []
    assert "ERROR" not in out
