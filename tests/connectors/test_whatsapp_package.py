"""The shape of connectors/whatsapp/: Rasa's credentials key resolves through Rasa's own loader,
the package reads no environment outside its settings, crash hooks are test-installed only, and
modules stay small unless they say why."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
PACKAGE = REPO / "connectors" / "whatsapp"
# where the environment may be read: the settings object and the gateway's command line
ENV_READERS = {"settings.py", "gateway.py"}


def test_credentials_key_resolves_with_rasas_loader_and_gateway_stays_without_rasa() -> None:
    code = ("import sys; import connectors.whatsapp.gateway; "
            "assert not any(m == 'rasa' or m.startswith('rasa.') for m in sys.modules), 'gateway loaded Rasa'; "
            "from rasa.shared.utils.common import class_from_module_path; "
            "cls = class_from_module_path('connectors.whatsapp.WhatsAppInput'); "
            "from rasa.core.channels.channel import InputChannel; "
            "assert issubclass(cls, InputChannel) and cls.name() == 'whatsapp', cls; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def _environ_reads(path: Path) -> list:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                isinstance(node.value, ast.Name) and node.value.id == "os":
            hits.append(node.lineno)
    return hits


def test_no_environment_reads_outside_the_settings() -> None:
    offenders = {str(p.relative_to(PACKAGE)): _environ_reads(p) for p in PACKAGE.rglob("*.py")
                 if p.name not in ENV_READERS or p.parent != PACKAGE}
    assert {k: v for k, v in offenders.items() if v} == {}
    assert "WHATSAPP_FAULT" not in "".join(p.read_text() for p in PACKAGE.rglob("*.py"))


def test_hooks_are_no_ops_until_a_harness_installs_some() -> None:
    from connectors.whatsapp import hooks

    default = hooks.current()
    assert type(default) is hooks.WorkerHooks
    default.after_rasa("wamid.x", 0)  # nothing happens
    default.after_accepted(1, 1)
    seen = []

    class Recording(hooks.WorkerHooks):
        def after_rasa(self, item_id: str, attempts: int) -> None:
            seen.append((item_id, attempts))

    assert hooks.install(Recording()) is default
    try:
        hooks.current().after_rasa("wamid.y", 2)
    finally:
        hooks.install(default)
    assert seen == [("wamid.y", 2)] and hooks.current() is default


def test_modules_over_300_lines_say_why() -> None:
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        doc = ast.get_docstring(ast.parse("\n".join(lines))) or ""
        assert len(lines) <= 300 or "Over 300 lines" in doc, f"{path.relative_to(REPO)}: {len(lines)} lines"
