"""A tiny PDF writer (Helvetica, WinAnsi encoding) for the demo documentation and the tests."""
from __future__ import annotations

import textwrap
from pathlib import Path

LINES_PER_PAGE = 46
WRAP = 88


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def render_pdf(title: str, paragraphs: list[str]) -> bytes:
    """Pages of wrapped text; paragraphs starting with '# ' are printed in bold as headings."""
    lines: list[tuple[str, bool]] = []
    for para in paragraphs:
        heading = para.startswith("# ")
        body = para[2:] if heading else para
        for ln in textwrap.wrap(body, WRAP) or [""]:
            lines.append((ln, heading))
        lines.append(("", False))
    pages = [lines[i:i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)] or [[]]
    objects: list[bytes] = []  # object n is objects[n-1]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(b"")  # pages, filled below
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    kids = []
    for page in pages:
        ops = [b"BT", b"/F1 11 Tf", b"14 TL", b"50 790 Td"]
        for text, bold in page:
            ops.append(b"/F2 11 Tf" if bold else b"/F1 11 Tf")
            ops.append(b"(" + _escape(text) + b") Tj T*")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_id = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>" % content_id)
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + b"] /Count %d >>" % len(kids)
    objects.append(b"<< /Title (" + _escape(title) + b") /Producer (Atende pdfwriter) >>")
    info_id = len(objects)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, info_id, xref)
    return bytes(out)


def write_pdf(path: Path, title: str, paragraphs: list[str]) -> None:
    Path(path).write_bytes(render_pdf(title, paragraphs))
