"""Chunking: heading sections -> chunks of bounded size with overlap."""
from __future__ import annotations

import hashlib
import re

from .models import Chunk, Document

MAX_CHARS = 900
OVERLAP_CHARS = 180
MIN_CHARS = 40

_SENTENCE = re.compile(r"(?<=[.!?;:])\s+")


def _pieces(text: str, max_chars: int) -> list[str]:
    """Paragraphs, and sentences (or hard cuts) for paragraphs that are too long."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n|\n(?=- )", text):
        para = para.strip()
        if not para:
            continue
        if len(para) <= max_chars:
            out.append(para)
            continue
        for sent in _SENTENCE.split(para):
            while len(sent) > max_chars:
                cut = sent.rfind(" ", 0, max_chars)
                cut = cut if cut > max_chars // 2 else max_chars
                out.append(sent[:cut].strip())
                sent = sent[cut:].strip()
            if sent:
                out.append(sent)
    return out


def _tail(text: str, n: int) -> str:
    if len(text) <= n:
        return text
    cut = text.find(" ", len(text) - n)
    return text[cut + 1 if cut != -1 else len(text) - n:]


def split_text(text: str, max_chars: int = MAX_CHARS, overlap: int = OVERLAP_CHARS) -> list[str]:
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, max_chars):
        if current and len(current) + 1 + len(piece) > max_chars:
            chunks.append(current)
            carry = _tail(current, overlap)
            current = f"{carry}\n{piece}" if carry and len(carry) + 1 + len(piece) <= max_chars else piece
        else:
            current = f"{current}\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


def chunk_document(doc: Document, doc_key: str, max_chars: int = MAX_CHARS, overlap: int = OVERLAP_CHARS) -> list[Chunk]:
    """One or more chunks per heading section; tiny sections are merged into the next one."""
    chunks: list[Chunk] = []
    pending_heading: str | None = None
    pending_text = ""
    sections = list(doc.sections)
    for i, section in enumerate(sections):
        trail = [h for h in section.headings if h]
        if trail and trail[0] == doc.title:
            trail = trail[1:]
        heading = " > ".join(trail)
        text = section.text
        if pending_text:
            text = f"{pending_text}\n{text}"
            heading = pending_heading if pending_heading is not None and not heading else heading
            pending_text, pending_heading = "", None
        if len(text) < MIN_CHARS and i + 1 < len(sections):
            pending_text = f"{heading}: {text}" if heading else text
            pending_heading = heading
            continue
        for part in split_text(text, max_chars, overlap):
            digest = hashlib.sha1(f"{doc_key}\x00{len(chunks)}\x00{part}".encode()).hexdigest()[:16]
            # extra["section"]: the section it comes from (ingestion anchors published pages by it)
            chunks.append(Chunk(id=digest, doc_key=doc_key, url=doc.url, title=doc.title, product=doc.product,
                                module=doc.module, heading=heading, text=part, extra={"section": i}))
    return chunks
