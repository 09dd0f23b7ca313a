"""The shapes of a bot message on the wire: Atende's widget's, and stock Rasa clients'.

:func:`website_shaped` turns one Rasa bot message (``text``, ``buttons``, ``custom``, ``image``,
``attachment``, ``elements``) into one ``bot_uttered`` payload; :func:`rasa_shaped` turns such a
payload, once stamped with its ``mid``, into the messages Rasa's own socket.io channel would
send, for rasa-webchat and plain socket.io clients. Pure: no Rasa, no socket.io import.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List


def website_shaped(message: Dict[str, Any]) -> Dict[str, Any]:
    """One ``bot_uttered`` payload: text, quick replies, sources and attachments together
    (empty when the message has nothing to show)."""
    out: Dict[str, Any] = {}
    text = message.get("text")
    if text:
        out["text"] = str(text)
    buttons = message.get("quick_replies") or message.get("buttons") or []
    replies = [
        {
            "content_type": "text",
            "title": str(button.get("title", "")),
            "payload": str(button.get("payload", "")),
        }
        for button in buttons
        if isinstance(button, dict) and button.get("payload")
    ]
    if replies:
        out["quick_replies"] = replies
    custom = message.get("custom")
    if custom:
        out["custom"] = custom
    if message.get("image"):
        out["attachment"] = {"type": "image", "payload": {"src": message["image"]}}
    if message.get("attachment"):
        out["attachment"] = message["attachment"]
    if message.get("elements"):
        out["attachment"] = {
            "type": "template",
            "payload": {"template_type": "generic", "elements": message["elements"]},
        }
    return out


def rasa_shaped(message: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One stamped bot message as Rasa's own socket.io channel sends it, for stock clients.

    rasa-webchat tells messages apart by their exact keys (``{text}``, ``{text, quick_replies}``,
    ``{attachment}``; anything else is a custom component), so Atende's extension fields
    (``mid``, ``notice``) stay out, sources become a markdown list under the text unless the
    text already has its ``Fontes:`` block, and other custom JSON goes alone, as Rasa sends it.
    """
    out: List[Dict[str, Any]] = []
    text = message.get("text") if isinstance(message.get("text"), str) else ""
    custom = message.get("custom") if isinstance(message.get("custom"), dict) else {}
    sources = custom.get("sources") if isinstance(custom.get("sources"), list) else []
    lines = []
    for source in sources:
        if not isinstance(source, dict):
            continue
        url = str(source.get("url") or "")
        title = re.sub(r"[\[\]\n]", " ", str(source.get("title") or url)).strip()[:200]
        if re.match(r"^https?://[^\s()<>]+$", url):
            lines.append(f"- [{title}]({url})")
        elif title:
            lines.append(f"- {title}")
    if lines and "Fontes:" not in text:
        text = (text.rstrip() + "\n\n" if text else "") + "Fontes:\n" + "\n".join(lines)
    replies = message.get("quick_replies")
    if text or replies:
        shaped: Dict[str, Any] = {"text": text}
        if replies:
            shaped["quick_replies"] = replies
        out.append(shaped)
    if message.get("attachment"):
        out.append({"attachment": message["attachment"]})
    rest = {key: value for key, value in custom.items() if key != "sources"}
    if rest:
        out.append(rest)
    return out
