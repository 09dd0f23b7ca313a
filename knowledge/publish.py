"""Published copies of folder-source pages: a safe Markdown subset rendered to escaped HTML.

Ingestion (knowledge/ingest.py) writes one page per document of a folder source that declares no
``public_base_url`` under ``<index dir>/published/<source>/<path>.html``; the website connector
serves them at ``/docs/<source>/<path>.html`` (connectors/website/docs.py, through
:func:`resolve_published`), and the citations point at the chunk's section
(``#<anchor_id(last heading)>``). See docs/knowledge.md, "Published sources".

Standard library only: the Rasa process (bot env, without the knowledge package's dependencies)
loads this file by path to serve the pages.
"""
from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import unicodedata
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

# [label](url); the url may hold one level of balanced parentheses, so "javascript:alert(1)" is
# read whole (and refused whole) instead of leaving a stray ")" behind
_LINK = re.compile(r"\[([^\]]+)\]\(((?:[^()\s]|\([^()\s]*\))+)\)")
# the heading as knowledge/extract.py reads it: trailing #s dropped, links reduced to their label,
# emphasis markers removed; its anchor_id is what a chunk's heading trail is matched against
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_EMPH = re.compile(r"(\*\*|__|\*|`)")
_IMG_OR_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")

# The page's only style, allowed by its hash: the pages carry no script and load nothing.
PAGE_STYLE = ("body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
              "line-height:1.5;color:#1f2328}pre{background:#f6f8fa;padding:.75rem;overflow:auto}"
              ":target{background:#fff8c5}")
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(PAGE_STYLE.encode()).digest()).decode()
CSP = (f"default-src 'none'; style-src '{STYLE_HASH}'; img-src 'none'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
PUBLISHED_DIR = "published"  # under the index folder


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


def heading_text(raw: str) -> str:
    """A Markdown heading's text as knowledge/extract.py reads it (the chunks' heading trail)."""
    return _EMPH.sub("", _IMG_OR_LINK.sub(r"\1", raw)).strip()


class _Ids:
    """Heading ids of one page: anchor_id, then -2, -3, ... for repeats (the page's order)."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.headings: list[tuple[str, str]] = []  # (anchor_id of the text, the id given)

    def next(self, text: str) -> str:
        base = anchor_id(text)
        ident, n = base, 2
        while ident in self.used:
            ident, n = f"{base}-{n}", n + 1
        self.used.add(ident)
        self.headings.append((base, ident))
        return ident


def _page(title: str, body: list[str]) -> str:
    return ('<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def render_markdown_page(source: str, title: str) -> tuple[str, list[tuple[str, str]]]:
    """The page and its headings ``[(anchor_id(text), id)]`` in order. Headings, paragraphs,
    lists and fenced code; everything else is escaped text."""
    body: list[str] = []
    para: list[str] = []
    items: list[str] = []
    ordered = False
    code: list[str] | None = None
    ids = _Ids()

    def flush() -> None:
        if para:
            body.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            tag = "ol" if ordered else "ul"
            body.append(f"<{tag}>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + f"</{tag}>")
            items.clear()

    for line in source.splitlines():
        if code is not None:
            if line.strip().startswith("```"):
                body.append(f"<pre><code>{html.escape(chr(10).join(code))}</code></pre>")
                code = None
            else:
                code.append(line)
            continue
        if line.strip().startswith("```"):
            flush()
            code = []
        elif m := _HEADING.match(line):
            flush()
            level, text = len(m.group(1)), heading_text(m.group(2))
            body.append(f'<h{level} id="{ids.next(text)}">{html.escape(text)}</h{level}>')
        elif m := re.match(r"^\s*(?:([-*+])|\d{1,9}[.)])\s+(.*)$", line):
            if para:
                flush()
            is_ordered = m.group(1) is None
            if items and is_ordered != ordered:
                flush()
            ordered = is_ordered
            items.append(m.group(2))
        elif not line.strip():
            flush()
        else:
            para.append(line.strip())
    if code is not None:
        body.append(f"<pre><code>{html.escape(chr(10).join(code))}</code></pre>")
    flush()
    return _page(title, body), ids.headings


def render_markdown(source: str, title: str) -> str:
    """Headings, paragraphs, lists and fenced code; everything else is escaped text."""
    return render_markdown_page(source, title)[0]


def render_sections(title: str, sections: list[tuple[list[str], str]]) -> tuple[str, list[tuple[str, str]]]:
    """A page from extracted sections ``[(heading trail, text)]`` (HTML, PDF and text sources):
    each new heading of a trail becomes a heading (the title heads text before any), lines ``- x``
    a list, other lines paragraphs."""
    body: list[str] = []
    ids = _Ids()
    shown: list[str] = []
    if sections and not sections[0][0]:  # text before any heading: under the title's heading
        body.append(f'<h1 id="{ids.next(title)}">{html.escape(title)}</h1>')
    for trail, text in sections:
        common = 0
        while common < min(len(trail), len(shown)) and trail[common] == shown[common]:
            common += 1
        for depth in range(common, len(trail)):
            level = min(depth + 1, 6)
            body.append(f'<h{level} id="{ids.next(trail[depth])}">{html.escape(trail[depth])}</h{level}>')
        shown = list(trail)
        items: list[str] = []
        for line in text.splitlines() + [""]:
            if line.startswith("- "):
                items.append(f"<li>{html.escape(line[2:])}</li>")
                continue
            if items:
                body.append("<ul>" + "".join(items) + "</ul>")
                items = []
            if line.strip():
                body.append(f"<p>{html.escape(line)}</p>")
    return _page(title, body), ids.headings


def strip_front_matter(text: str) -> str:
    """Markdown without its YAML front matter (as knowledge/extract.py reads it)."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4:]
    return text


def section_anchors(headings: list[tuple[str, str]], trails: list[tuple[object, str]],
                    title: str) -> list[str | None]:
    """The anchor of each chunk, from ``(section, heading trail)`` in document order (the section
    it was cut from, and its " > "-joined trail, knowledge/chunk.py).

    Each new section takes the page's next heading with the text of its trail's last heading, by
    anchor_id, so the second "Passos" of a page is ``passos-2``; the chunks of one section share
    its anchor; an empty trail is the part under the page's title heading. No such heading: None
    (the page without a fragment)."""
    out: list[str | None] = []
    pos, last_section, last_anchor = -1, object(), None
    for section, trail in trails:
        if section == last_section:
            out.append(last_anchor)
            continue
        base = anchor_id(trail.split(" > ")[-1] if trail else title)
        found = next((i for i in range(pos + 1, len(headings)) if headings[i][0] == base), None)
        if found is None:
            found = next((i for i in range(len(headings)) if headings[i][0] == base), None)
        else:
            pos = found
        last_section, last_anchor = section, headings[found][1] if found is not None else None
        out.append(last_anchor)
    return out


# ---------------------------------------------------------------- paths and URLs
class PublishError(ValueError):
    """A base URL or a path that cannot be published."""


_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")  # in a base URL
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # in a page path (spaces are fine, percent-encoded in URLs)


def check_base_url(value: object, what: str) -> str:
    """An http(s) base URL without credentials, query or fragment, ending in "/"."""
    if not isinstance(value, str) or not value.strip():
        raise PublishError(f"{what} must be an http(s) URL, got {value!r}")
    if _BAD_CHARS.search(value):
        raise PublishError(f"{what} must not contain spaces, control characters or backslashes: {value!r}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise PublishError(f"{what} is not a valid URL: {value!r} ({exc})") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise PublishError(f"{what} must be an http(s) URL with a host, got {value!r}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise PublishError(f"{what} must not carry credentials (user:password@): {value!r}")
    if "?" in value or "#" in value:
        raise PublishError(f"{what} must not have a query or a fragment: {value!r}")
    return value if value.endswith("/") else value + "/"


def publish_name(source_name: str) -> str:
    """The source's folder under the published root: its name when it is a plain code, else a slug
    with a hash (an ad hoc ``--path`` source is named by its absolute folder)."""
    if _SEGMENT.match(source_name):
        return source_name
    slug = anchor_id(PurePosixPath(source_name.replace("\\", "/")).name or source_name)[:40]
    return f"{slug}-{hashlib.sha1(source_name.encode()).hexdigest()[:8]}"


def page_path(source_name: str, rel: PurePosixPath | Path) -> str | None:
    """``<source>/<path>.html`` for a file at ``rel`` in the source's folder: ``.md``, ``.markdown``
    and ``.htm`` become ``.html`` (``.html`` stays); other files keep their name and get ``.html``
    appended (``guia.pdf.html``).
    None for a path the server would refuse (a dotfile or dot folder)."""
    parts = list(PurePosixPath(*Path(rel).parts).parts)
    if not parts or any(p.startswith(".") or _CONTROL.search(p) or "\\" in p for p in parts):
        return None
    last = PurePosixPath(parts[-1])
    parts[-1] = (last.stem if last.suffix.lower() in (".md", ".markdown", ".html", ".htm") else last.name) + ".html"
    return "/".join([publish_name(source_name), *parts])


def docs_url(public_url: str, page: str) -> str:
    """The public URL of a published page: ``<public url>docs/<page>`` (segments percent-encoded)."""
    return check_base_url(public_url, "KNOWLEDGE_PUBLIC_URL") + "docs/" + quote(page, safe="/")


def vendor_url(base_url: str, rel: PurePosixPath | Path) -> str:
    """The vendor's page for a file at ``rel`` in a folder with ``public_base_url``: the base URL
    plus the relative path, with ``.md``/``.markdown`` mapped to ``.html`` (other names kept)."""
    parts = list(PurePosixPath(*Path(rel).parts).parts)
    last = PurePosixPath(parts[-1])
    if last.suffix.lower() in (".md", ".markdown"):
        parts[-1] = last.stem + ".html"
    return check_base_url(base_url, "public_base_url") + quote("/".join(parts), safe="/")


def published_root(index_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<index dir>/published``: the index folder is KNOWLEDGE_INDEX_DIR, else var/knowledge
    (relative paths from the repository root), as in knowledge/config.py."""
    raw = str(index_dir) if index_dir else os.environ.get("KNOWLEDGE_INDEX_DIR") or "var/knowledge"
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(__file__).resolve().parent.parent / path
    return path / PUBLISHED_DIR


def write_page(root: Path, page: str, content: str) -> Path:
    """Write a page atomically (a reader sees the old or the new file, never half of one)."""
    target = root.joinpath(*page.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, target)
    return target


def sweep(root: Path, keep: set[str]) -> int:
    """Remove every file under root that is not a kept page, and the folders left empty."""
    if not root.is_dir():
        return 0
    removed = 0
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink() or path.is_file():
            if rel not in keep:
                path.unlink(missing_ok=True)
                removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return removed


def resolve_published(root: Path, requested: str) -> Path | None:
    """The file under root for a request path, or None (traversal, symlink, dotfile, non-.html)."""
    parts = requested.split("/")
    if not requested or requested.startswith("/") or "\\" in requested or _CONTROL.search(requested):
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
