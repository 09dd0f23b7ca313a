"""A hot-path fix for Rasa 3.6, applied when the `connectors` package is imported.

Rasa 3.6 checks every action server response with `jsonschema.validate(result, schema)`. That
function first validates the (static) schema itself against its metaschema, on every call: with
jsonschema 4.17 it was 44% of the Rasa server's CPU on a path with one custom action (py-spy,
bench/assistant_bench.py). Here the validator is built once and reused. The schema, the check
and the error raised (the best match, with Rasa's message appended) stay exactly as in Rasa.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Text

from jsonschema import ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

_RASA_HINT = (
    ". Failed to validate Action server response from API, make sure your response from the "
    "Action endpoint is valid. For more information about the format visit "
    "https://rasa.com/docs/rasa/custom-actions"
)


@lru_cache(maxsize=1)
def _response_validator() -> Any:
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(_self: Any, result: Dict[Text, Any]) -> bool:
    error = best_match(_response_validator().iter_errors(result))
    if error is not None:
        error.message += _RASA_HINT
        raise error
    return True


def install() -> None:
    """Replace RemoteAction._validate_action_result by the cached-validator version (idempotent)."""
    from rasa.core.actions.action import RemoteAction

    if getattr(RemoteAction._validate_action_result, "__atende__", False):
        return
    validate_action_result.__atende__ = True  # type: ignore[attr-defined]
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[assignment]


__all__ = ["install", "validate_action_result", "ValidationError"]
