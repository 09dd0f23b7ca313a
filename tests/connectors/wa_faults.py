"""Test harness only: `rasa` with a crash installed in the WhatsApp worker's crash windows.

    .venv-bot/bin/python tests/connectors/wa_faults.py exit_after_rasa|exit_after_send run ...

The worker calls `connectors.whatsapp.hooks.current()` after Rasa handled a message and after the
provider accepted a send; production installs nothing there. This launcher installs hooks that
kill the process (`os._exit(137)`, like a SIGKILL: no cleanup, no lease release) the first time
each inbox row / outbox row reaches that window, then runs Rasa's own command line in the same
process (`RasaServer(fault=...)` in whatsapp_rasa.py starts it).
"""

from __future__ import annotations

import os
import sys

FAULTS = ("exit_after_rasa", "exit_after_send")


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in FAULTS:
        raise SystemExit(f"usage: wa_faults.py {{{'|'.join(FAULTS)}}} RASA-ARGS...")
    fault, rasa_args = sys.argv[1], sys.argv[2:]
    sys.argv = ["rasa", *rasa_args]
    # Rasa first: importing `connectors` inside a Rasa process is what applies its speed-ups.
    from rasa.__main__ import main as rasa_main

    from connectors.whatsapp import hooks

    class CrashHooks(hooks.WorkerHooks):
        def after_rasa(self, item_id: str, attempts: int) -> None:
            if fault == "exit_after_rasa" and attempts == 0:
                os._exit(137)  # Rasa saved the turn; the inbox row is still pending

        def after_accepted(self, outbox_id: int, attempt: int) -> None:
            if fault == "exit_after_send" and attempt == 1:
                os._exit(137)  # Meta accepted it; the outbox row still says "sending"

    hooks.install(CrashHooks())
    rasa_main()


if __name__ == "__main__":
    main()
