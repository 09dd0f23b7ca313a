"""WhatsApp templates per purpose (``WHATSAPP_TEMPLATES``), parsed the same way in both
environments: the connector sends them outside the 24-hour window (connectors/whatsapp/templates.py),
the console names the one that will be sent (pure).

``WHATSAPP_TEMPLATES`` is a JSON object ``{purpose: {"name", "language", "parameters"}}``;
``parameters`` are the ordered sources of the body's ``{{1}}``, ``{{2}}``...
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

PURPOSES = ("ticket_update", "satisfaction", "handoff_return")
PARAM_SOURCES = ("ticket_number", "technician", "text")
PARAMS_MAX = 10
_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")


class TemplateConfigError(ValueError):
    """WHATSAPP_TEMPLATES is not valid: the process refuses to start with a clear message."""


@dataclass(frozen=True)
class Template:
    purpose: str
    name: str
    language: str
    parameters: Tuple[str, ...]


def parse_config(raw: Optional[str]) -> Dict[str, Template]:
    """The templates of ``WHATSAPP_TEMPLATES`` (empty or unset: none configured)."""
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise TemplateConfigError(f"WHATSAPP_TEMPLATES is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TemplateConfigError("WHATSAPP_TEMPLATES must be a JSON object {purpose: template}")
    out: Dict[str, Template] = {}
    for purpose, spec in data.items():
        if purpose not in PURPOSES:
            raise TemplateConfigError(f"WHATSAPP_TEMPLATES: unknown purpose {purpose!r} (use {', '.join(PURPOSES)})")
        if not isinstance(spec, dict):
            raise TemplateConfigError(f"WHATSAPP_TEMPLATES[{purpose!r}] must be an object")
        name, language = spec.get("name"), spec.get("language", "pt_BR")
        params = spec.get("parameters", [])
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise TemplateConfigError(f"WHATSAPP_TEMPLATES[{purpose!r}]: name must be lower-case letters, "
                                      "digits and underscores")
        if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
            raise TemplateConfigError(f"WHATSAPP_TEMPLATES[{purpose!r}]: bad language {language!r} (e.g. pt_BR)")
        if (not isinstance(params, list) or len(params) > PARAMS_MAX
                or any(p not in PARAM_SOURCES for p in params)):
            raise TemplateConfigError(f"WHATSAPP_TEMPLATES[{purpose!r}]: parameters must be a list of at most "
                                      f"{PARAMS_MAX} of {', '.join(PARAM_SOURCES)}")
        out[purpose] = Template(purpose, name, language, tuple(params))
    return out
