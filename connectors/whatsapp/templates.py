"""Outside the 24-hour window: approved template messages instead of free text (pure).

Meta refuses a free-form message when the customer has not written for 24 hours (131047). A
proactive message (a technician's reply, a ticket update, the "back to the bot" notice, the rating
request) then goes out as the template configured for its *purpose*, and its free text is kept in
the outbox (``held``) to follow once the customer answers and the window reopens.

- The purpose comes from the response Rasa uttered (``utter_action``, with the response's own
  arguments ``agent_name`` / ``ticket_number``, which Rasa hands to the output channel with the
  message): ``utter_agent_reply`` is a ``ticket_update``, ``utter_ticket_closed`` a
  ``satisfaction``. An action may also say it in ``custom`` (``json_message``):
  ``{"purpose": "ticket_update", "params": {"ticket_number": "#12", "technician": "Ana"}}``.
  Both are untrusted: an unknown purpose is no purpose, unknown parameters are dropped, values
  are bounded.
- A message without a template of its own that comes after a template still awaiting the
  customer's answer (the rating question after the "closed" template) is held behind it quietly.
- Templates are configured once per process from ``WHATSAPP_TEMPLATES`` (settings.py; JSON, docs/whatsapp.md
  "24-hour window"): per purpose a ``name``, a ``language`` (``pt_BR``) and ``parameters``, the
  ordered sources of the body's ``{{1}}``, ``{{2}}``...: ``ticket_number``, ``technician``,
  ``text`` (the message's own text, shortened).
- Parameters are cut to fit with an ellipsis; line breaks, tabs and runs of spaces (which Meta
  refuses in a parameter) become single spaces.
- No template for the purpose: the text is held with ``needs_template`` and its reason, never
  reported as sent.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

from atende_contract.wa_templates import (PARAM_SOURCES, PURPOSES, Template, TemplateConfigError,
                                          parse_config)

from .outbound import Outgoing, render

__all__ = ["PARAM_SOURCES", "PURPOSES", "Template", "TemplateConfigError", "parse_config", "plan"]

PARAM_MAX = {"ticket_number": 20, "technician": 60, "text": 600}  # the body stays under Meta's 1,024
_TICKET = re.compile(r"#?\d{1,12}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# responses of domain.yml that are proactive messages, and their purpose
# (no response of domain.yml announces the return to the bot yet: handoff_return comes by json_message)
RESPONSE_PURPOSES = {"utter_agent_reply": "ticket_update", "utter_ticket_closed": "satisfaction"}


def fit(value: str, limit: int) -> str:
    """One line, at most ``limit`` characters, an ellipsis where it was cut."""
    value = " ".join(_CONTROL.sub(" ", value).split())
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def purpose_of(message: Mapping[str, Any]) -> Tuple[Optional[str], Dict[str, str]]:
    """The purpose and parameters of a bot message (``custom``, else the response uttered);
    (None, {}) when absent or invalid."""
    custom = message.get("custom")
    if isinstance(custom, dict) and custom.get("purpose") in PURPOSES:
        purpose = str(custom["purpose"])
        raw = custom.get("params") if isinstance(custom.get("params"), dict) else {}
    else:
        action = message.get("utter_action")
        purpose = RESPONSE_PURPOSES.get(action) if isinstance(action, str) else None
        if purpose is None:
            return None, {}
        raw = {"ticket_number": message.get("ticket_number"), "technician": message.get("agent_name")}
    params: Dict[str, str] = {}
    for key in ("ticket_number", "technician"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        value = fit(value, PARAM_MAX[key])
        if key == "ticket_number":
            if not _TICKET.fullmatch(value):
                continue
            value = "#" + value.lstrip("#")
        params[key] = value
    return purpose, params


def template_message(tpl: Template, params: Mapping[str, str], text: str) -> Outgoing:
    values = {**params, "text": text}
    body_params = [{"type": "text", "text": fit(values.get(src) or "-", PARAM_MAX[src]) or "-"}
                   for src in tpl.parameters]
    template: Dict[str, Any] = {"name": tpl.name, "language": {"code": tpl.language}}
    if body_params:
        template["components"] = [{"type": "body", "parameters": body_params}]
    return Outgoing({"type": "template", "template": template})


def plan(message: Mapping[str, Any], window_open: bool, templates: Mapping[str, Template],
         template_awaiting: bool = False) -> List[Outgoing]:
    """What one proactive bot message becomes: as rendered inside the window; outside it, the
    purpose's template plus the held free text, the text held behind a template already sent
    (``template_awaiting``), or the held text marked ``needs_template``."""
    rendered = render(dict(message))
    if window_open or not rendered:
        return rendered
    purpose, params = purpose_of(message)
    free = [m for m in rendered if m.kind != "template"]  # a ready template needs no window
    ready = [m for m in rendered if m.kind == "template"]
    if not free:
        return ready
    tpl = templates.get(purpose) if purpose else None
    if tpl is None and template_awaiting:
        why = "fora da janela de 24 h: segue o modelo já enviado quando o cliente responder"
        return ready + [replace(m, hold=True, reason=why) for m in free]
    if tpl is None:
        why = (f"fora da janela de 24 h e sem modelo configurado para '{purpose}'" if purpose
               else "fora da janela de 24 h e sem finalidade para escolher um modelo")
        return ready + [replace(m, hold=True, needs_template=True, reason=why) for m in free]
    text = " ".join(str(m.body.get("text", {}).get("body", "")) for m in free if m.kind == "text")
    held = f"fora da janela de 24 h: enviado o modelo {tpl.name}; segue quando o cliente responder"
    return ready + [template_message(tpl, params, text or str(message.get("text") or ""))] + [
        replace(m, hold=True, reason=held) for m in free]
