"""Console settings (read once, typed, clear errors) and the layering around the reports service."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.settings import ConsoleSettings, get_console_settings, reset_console_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_settings() -> None:
    reset_console_settings()
    yield
    reset_console_settings()


def test_queue_refresh_defaults_reads_and_floors() -> None:
    assert ConsoleSettings.from_env({}).queue_refresh_seconds == 30
    assert ConsoleSettings.from_env({"CONSOLE_QUEUE_REFRESH_SECONDS": " 45 "}).queue_refresh_seconds == 45
    assert ConsoleSettings.from_env({"CONSOLE_QUEUE_REFRESH_SECONDS": ""}).queue_refresh_seconds == 30
    for too_fast in ("0", "1", "-30"):  # the queue never polls the database faster than every 5 s
        assert ConsoleSettings.from_env({"CONSOLE_QUEUE_REFRESH_SECONDS": too_fast}).queue_refresh_seconds == 5


@pytest.mark.parametrize("bad", ["trinta", "30s", "1e3", "2.5"])
def test_a_malformed_refresh_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match=f"CONSOLE_QUEUE_REFRESH_SECONDS must be a whole number of seconds, got '{bad}'"):
        ConsoleSettings.from_env({"CONSOLE_QUEUE_REFRESH_SECONDS": bad})


def test_settings_are_read_once_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSOLE_QUEUE_REFRESH_SECONDS", "12")
    first = get_console_settings()
    monkeypatch.setenv("CONSOLE_QUEUE_REFRESH_SECONDS", "99")
    assert get_console_settings() is first and first.queue_refresh_seconds == 12
    reset_console_settings()
    assert get_console_settings().queue_refresh_seconds == 99


def _modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sorted(sys.modules)))"],
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **(env or {})},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_console_modules_read_no_environment_at_import() -> None:
    # A value that fails when read: importing every page module must not read it.
    code = "import console.auth, console.charts, console.ui, console.settings\n" \
           "import console.screens.queue, console.screens.ticket, console.screens.customers\n" \
           "import console.screens.reports, console.screens.users"
    _modules_after(code, {"CONSOLE_QUEUE_REFRESH_SECONDS": "não-é-número"})


def test_reports_service_and_bench_import_no_streamlit_console_or_tests() -> None:
    code = ("import importlib.util\n"
            "import helpdesk.services.reports\n"
            "spec = importlib.util.spec_from_file_location('reports_bench', 'bench/reports_bench.py')\n"
            "spec.loader.exec_module(importlib.util.module_from_spec(spec))")
    loaded = _modules_after(code)
    assert "helpdesk.services.reports" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("streamlit", "console", "tests")}
