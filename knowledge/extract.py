"""Extraction: bytes of HTML, Markdown, PDF or text -> Document with heading sections."""
from __future__ import annotations

import io
import logging
import re
from pathlib import PurePosixPath

import yaml
from bs4 import BeautifulSoup, Tag

from .models import Document, Section
from .text import normalise_space

log = logging.getLogger(__name__)


class ExtractError(Exception):
    """The content cannot be turned into text (corrupt, empty, unsupported, undecodable)."""


HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
BLOCKS = HEADINGS + ("p", "li", "pre", "td", "th", "dd", "dt", "blockquote", "figcaption", "caption")
BOILERPLATE_TAGS = ("script", "style", "nav", "header", "footer", "aside", "form", "noscript", "iframe", "svg", "button")
BOILERPLATE_HINT = re.compile(r"(^|[-_ ])(nav|navbar|menu|sidebar|breadcrumb|cookie|footer|header|toc|skip)([-_ ]|$)", re.I)
_CHARSET_META = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.I)


def detect_format(name: str, content_type: str | None, data: bytes) -> str:
    ctype = (content_type or "").split(";")[0].strip().lower()
    suffix = PurePosixPath(name.split("?")[0].split("#")[0]).suffix.lower()
    if ctype == "application/pdf" or suffix == ".pdf" or data[:5] == b"%PDF-":
        return "pdf"
    if suffix in (".md", ".markdown") or ctype in ("text/markdown", "text/x-markdown"):
        return "markdown"
    if ctype in ("text/html", "application/xhtml+xml") or suffix in (".html", ".htm"):
        return "html"
    if ctype == "text/plain" or suffix in (".txt", ".text", ".rst"):
        return "text"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return "html"
    if ctype.startswith("text/") or not ctype:
        return "text"
    raise ExtractError(f"unsupported content type {ctype!r} for {name}")


def decode(data: bytes, content_type: str | None, fmt: str) -> str:
    """Decode with the declared charset; undeclared bytes must be valid UTF-8."""
    charset = None
    if content_type and "charset=" in content_type.lower():
        charset = content_type.lower().split("charset=")[1].split(";")[0].strip().strip("\"'")
    if not charset and fmt == "html":
        m = _CHARSET_META.search(data[:4096])
        if m:
            charset = m.group(1).decode("ascii", "ignore").lower()
    if data.startswith(b"\xef\xbb\xbf"):
        charset = "utf-8-sig"
    try:
        return data.decode(charset or "utf-8")
    except LookupError as exc:
        raise ExtractError(f"unknown charset {charset!r}") from exc
    except UnicodeDecodeError as exc:
        raise ExtractError(f"content is not valid {charset or 'UTF-8'} and declares no other charset") from exc


def extract(name: str, data: bytes, content_type: str | None = None) -> Document:
    """Turn raw bytes into a Document; raises ExtractError when there is no usable text."""
    if not data.strip():
        raise ExtractError("empty content")
    fmt = detect_format(name, content_type, data)
    if fmt == "pdf":
        doc = extract_pdf(name, data)
    else:
        text = decode(data, content_type, fmt)
        doc = {"html": extract_html, "markdown": extract_markdown, "text": extract_text}[fmt](name, text)
    doc.sections = [s for s in doc.sections if s.text.strip()]
    if not doc.sections or sum(len(s.text) for s in doc.sections) < 20:
        raise ExtractError("no text content")
    return doc


def _fallback_title(name: str) -> str:
    stem = PurePosixPath(name.rstrip("/").split("?")[0]).stem or name
    return re.sub(r"[-_]+", " ", stem).strip().capitalize() or name


# ---------------------------------------------------------------- HTML
def _is_boilerplate(el: Tag) -> bool:
    if el.name in BOILERPLATE_TAGS:
        return True
    role = (el.get("role") or "").lower() if isinstance(el.get("role"), str) else ""
    if role in ("navigation", "banner", "contentinfo", "complementary", "search"):
        return True
    attrs = " ".join(el.get("class") or []) + " " + (el.get("id") or "")
    return bool(attrs.strip()) and bool(BOILERPLATE_HINT.search(attrs))


def extract_html(name: str, html: str) -> Document:
    soup = BeautifulSoup(html, "lxml")
    meta = {
        (m.get("name") or m.get("property") or "").lower(): (m.get("content") or "").strip()
        for m in soup.find_all("meta")
    }
    title = ""
    if soup.title and soup.title.string:
        title = soup.title.string.strip()
    root: Tag | None = soup.find("main") or soup.find("article") or soup.find(attrs={"role": "main"}) or soup.body
    if root is None:
        root = soup
    for el in list(root.find_all(True)):
        if el.parent is not None and not el.decomposed and _is_boilerplate(el):
            el.decompose()
    h1 = root.find("h1")
    if h1 is not None and h1.get_text(strip=True):
        title = title or h1.get_text(" ", strip=True)
    title = title or meta.get("og:title") or _fallback_title(name)
    sections: list[Section] = []
    trail: list[tuple[int, str]] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            sections.append(Section([t for _, t in trail], normalise_space("\n".join(buf))))
            buf.clear()

    for el in root.find_all(BLOCKS):
        if any(p.name in BLOCKS for p in el.parents if p is not root and isinstance(p, Tag)):
            continue
        text = el.get_text(" ", strip=True)
        if not text:
            continue
        if el.name in HEADINGS:
            flush()
            level = int(el.name[1])
            trail = [(lvl, t) for lvl, t in trail if lvl < level] + [(level, text)]
        else:
            buf.append(("- " if el.name == "li" else "") + text)
    flush()
    if not sections:  # pages without block markup: take the visible text
        text = normalise_space(root.get_text("\n", strip=True))
        if text:
            sections.append(Section([], text))
    return Document(url=name, title=title, sections=sections, product=meta.get("product") or None,
                    module=meta.get("module") or None)


# ---------------------------------------------------------------- Markdown
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPH = re.compile(r"(\*\*|__|\*|`)")


def _md_inline(line: str) -> str:
    return _MD_EMPH.sub("", _MD_LINK.sub(r"\1", line))


def extract_markdown(name: str, text: str) -> Document:
    front: dict[str, object] = {}
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            try:
                loaded = yaml.safe_load(text[3:end])
                front = loaded if isinstance(loaded, dict) else {}
            except yaml.YAMLError:
                front = {}
            text = text[end + 4:]
    title = str(front.get("title") or "")
    sections: list[Section] = []
    trail: list[tuple[int, str]] = []
    buf: list[str] = []
    in_code = False

    def flush() -> None:
        body = normalise_space("\n".join(buf))
        if body:
            sections.append(Section([t for _, t in trail], body))
        buf.clear()

    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        m = None if in_code else _MD_HEADING.match(line)
        if m:
            flush()
            level, heading = len(m.group(1)), _md_inline(m.group(2))
            if level == 1 and not title:
                title = heading
            trail = [(lvl, t) for lvl, t in trail if lvl < level] + [(level, heading)]
        else:
            buf.append(line if in_code else _md_inline(line))
    flush()
    return Document(url=name, title=title or _fallback_title(name), sections=sections,
                    product=str(front["product"]) if front.get("product") else None,
                    module=str(front["module"]) if front.get("module") else None)


# ---------------------------------------------------------------- text and PDF
def extract_text(name: str, text: str) -> Document:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    title = lines[0].strip()[:120] if lines else _fallback_title(name)
    return Document(url=name, title=title, sections=[Section([], normalise_space(text))])


def extract_pdf(name: str, data: bytes) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        meta_title = str(info.title) if info is not None and info.title else ""
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise ExtractError(f"corrupt PDF: {exc}") from exc
    except Exception as exc:  # pypdf raises a variety of errors on damaged files
        raise ExtractError(f"corrupt PDF: {type(exc).__name__}: {exc}") from exc
    first = next((ln.strip() for p in pages for ln in p.splitlines() if ln.strip()), "")
    title = meta_title or first[:120] or _fallback_title(name)
    sections = [Section([f"Página {i}"], normalise_space(p)) for i, p in enumerate(pages, 1) if p.strip()]
    return Document(url=name, title=title, sections=sections)
