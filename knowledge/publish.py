"""Published copies of folder-source pages: a safe Markdown subset rendered to escaped HTML.

Not wired into ingestion yet (see docs/knowledge.md, issue 14 item 7).
"""
from __future__ import annotations

import html
import re
import unicodedata
from pathlib import Path

# [label](url); the url may hold one level of balanced parentheses, so "javascript:alert(1)" is
# read whole (and refused whole) instead of leaving a stray ")" behind
_LINK = re.compile(r"\[([^\]]+)\]\(((?:[^()\s]|\([^()\s]*\))+)\)")


def anchor_id(heading: str) -> str:
    """Stable id from heading text: ASCII lowercase letters, digits and dashes only."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "secao"


def _inline(text: str) -> str:
    out, pos = [], 0
    for m in _LINK.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        label, url = m.group(1), m.group(2)
        if re.match(r"^https?://", url, re.I):
            out.append(f'<a href="{html.escape(url, quote=True)}" rel="noopener noreferrer">{html.escape(label)}</a>')
        else:
            out.append(html.escape(label))
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def render_markdown(source: str, title: str) -> str:
    """Headings, paragraphs, lists and fenced code; everything else is escaped text."""
    body, para, items, code, used = [], [], [], None, set()

    def flush() -> None:
        if para:
            body.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in source.splitlines():
        if code is not None:
            if line.startswith("```"):
                body.append(f"<pre><code>{html.escape(chr(10).join(code))}</code></pre>")
                code = None
            else:
                code.append(line)
            continue
        if line.startswith("```"):
            flush()
            code = []
        elif m := re.match(r"^(#{1,6})\s+(.*)$", line):
            flush()
            level, text = len(m.group(1)), m.group(2).strip()
            ident, n = anchor_id(text), 2
            while ident in used:
                ident, n = f"{anchor_id(text)}-{n}", n + 1
            used.add(ident)
            body.append(f'<h{level} id="{ident}">{html.escape(text)}</h{level}>')
        elif m := re.match(r"^\s*[-*]\s+(.*)$", line):
            if para:
                flush()
            items.append(m.group(1))
        elif not line.strip():
            flush()
        else:
            para.append(line.strip())
    if code is not None:
        body.append(f"<pre><code>{html.escape(chr(10).join(code))}</code></pre>")
    flush()
    return ('<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body>" + "\n".join(body) + "</body></html>\n")


def resolve_published(root: Path, requested: str) -> Path | None:
    """The file under root for a request path, or None (traversal, symlink, dotfile, non-.html)."""
    parts = requested.split("/")
    if not requested or requested.startswith("/") or "\\" in requested:
        return None
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts) or not requested.endswith(".html"):
        return None
    path = root.joinpath(*parts)
    try:
        real_root = root.resolve(strict=True)
        if any((root.joinpath(*parts[:i + 1])).is_symlink() for i in range(len(parts))):
            return None
        real = path.resolve(strict=True)
    except OSError:
        return None
    if real_root not in real.parents or not real.is_file():
        return None
    return real
