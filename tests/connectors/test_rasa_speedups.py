"""The cached action-response validator accepts and refuses exactly what Rasa's own does."""
from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction

import connectors  # noqa: F401  (installs the fix)
from connectors.rasa_speedups import validate_action_result

GOOD = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "x", "value": 1}], "responses": [{"text": "oi"}]},
    {},
]
BAD = [
    {"events": "not a list"},
    {"events": [{"no_event_key": 1}]},
    {"responses": [{"text": 5}], "events": [{"event": 3}]},
]


def test_installed_on_remote_action() -> None:
    assert RemoteAction._validate_action_result is validate_action_result


@pytest.mark.parametrize("result", GOOD)
def test_accepts_what_rasa_accepts(result: dict) -> None:
    validate(result, RemoteAction.action_response_format_spec())
    assert RemoteAction._validate_action_result(None, result) is True  # type: ignore[arg-type]


@pytest.mark.parametrize("result", BAD)
def test_refuses_what_rasa_refuses_with_the_same_error(result: dict) -> None:
    with pytest.raises(ValidationError) as theirs:
        validate(result, RemoteAction.action_response_format_spec())
    with pytest.raises(ValidationError) as ours:
        RemoteAction._validate_action_result(None, result)  # type: ignore[arg-type]
    assert ours.value.message.startswith(theirs.value.message)
    assert "Failed to validate Action server response" in ours.value.message
    assert list(ours.value.path) == list(theirs.value.path)


def test_package_import_without_rasa_loads_no_rasa() -> None:
    """The WhatsApp gateway imports `connectors` without Rasa (and TensorFlow) in its process."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, connectors.whatsapp.gateway, connectors.whatsapp.webhook; "
            "print(sorted(m for m in sys.modules if m == 'rasa' or m.startswith(('rasa.', 'tensorflow'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout[-2000:]
