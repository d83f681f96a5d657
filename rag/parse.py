"""Parse one file's bytes (.txt, .md, .html, .pdf) into a Document: decoding, front matter and
headings, visible HTML text, PDF pages; a file that cannot be used raises LoadError with a short reason."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from .types import Document

MAX_DOC_CHARS = 10_000_000  # extracted characters per file (Settings.max_doc_chars): a 16 KB PDF can inflate


class LoadError(Exception):
    """Why one file cannot be indexed."""


def parse_bytes(data: bytes, suffix: str, doc_id: str, max_chars: int = MAX_DOC_CHARS) -> Document:
    if not data.strip():
        raise LoadError("file is empty")
    stem = Path(doc_id).stem.replace("-", " ").replace("_", " ").strip() or doc_id
    if suffix == ".pdf":
        text, meta = _pdf_text(data, max_chars)
        title = meta.pop("title", "") or stem
    else:
        raw = clean_text(_decode(data))
        if suffix in (".html", ".htm"):
            text, title, meta = _html_text(raw)
            title = title or stem
        else:
            meta, text = _front_matter(raw)
            title = meta.pop("title", "") or _md_title(text, suffix) or stem
            meta["headings"] = _md_headings(text) if suffix in (".md", ".markdown") else []
    if len(text) > max_chars:
        raise LoadError(_too_long(len(text), max_chars))
    if not _LETTER.search(text):  # blank, or only zero-width marks and punctuation
        raise LoadError("file has no text (no letters or digits)")
    meta.setdefault("headings", [])
    title = " ".join(clean_text(title).split())[:200] or stem  # one line, wherever it came from
    return Document(id=doc_id, title=title, text=text, metadata=meta)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LETTER = re.compile(r"[^\W_]")
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
              (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def clean_text(text: str) -> str:
    """Normalise newlines and drop control characters so offsets stay meaningful everywhere."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _decode(data: bytes) -> str:
    for bom, name in _WIDE_BOMS:  # would otherwise be reported as binary (every other byte is NUL)
        if data.startswith(bom):
            raise LoadError(f"{name} text; re-save the file as UTF-8")
    sample = data[:65536]
    control = sum(sample.count(bytes([b])) for b in (*range(0, 9), *range(14, 32)))
    if sample.count(b"\x00") > max(8, len(sample) // 100) or control > len(sample) // 10:
        raise LoadError("looks binary (NUL or control bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LoadError(f"not valid UTF-8 (byte {e.start}); re-save the file as UTF-8") from None


def _front_matter(raw: str) -> tuple[dict, str]:
    """`---\\nkey: value\\n---\\n` at the top records title, author, source and so on."""
    if raw.startswith("---\n"):
        end = raw.find("\n---\n", 4)
        if end != -1:
            meta = {}
            for line in raw[4:end].splitlines():
                key, sep, value = line.partition(":")
                if sep and key.strip():
                    meta[key.strip().lower()] = value.strip()
            return meta, raw[end + 5:]
    return {}, raw


def _md_title(text: str, suffix: str) -> str:
    if suffix in (".md", ".markdown"):
        m = re.search(r"^#\s+(.+)$", text, re.M)
        if m:
            return m.group(1).strip()
    first = text.strip().split("\n", 1)[0].strip()
    return first if 0 < len(first) <= 120 else ""


def _md_headings(text: str) -> list[list]:
    return [[m.start(), m.group(2).strip()] for m in re.finditer(r"^(#{1,6})\s+(.+)$", text, re.M)]


_BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
          "footer", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "main", "nav"}
_HIDDEN = {"script", "style", "head", "noscript", "template", "svg", "iframe", "object"}


class _Visible(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0  # running len("".join(parts)): summing it per heading is quadratic
        self.hidden = 0
        self.title = ""
        self.in_title = False
        self.headings: list[list] = []
        self.in_heading = False

    def _emit(self, piece: str) -> None:
        self.parts.append(piece)
        self.length += len(piece)

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCK:
            self._emit("\n\n")
            if tag in ("h1", "h2", "h3"):
                self.in_heading = True
                self.headings.append([self.length, ""])

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCK:
            self.in_heading = False if tag in ("h1", "h2", "h3") else self.in_heading
            self._emit("\n\n")

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        if self.hidden:
            return
        data = re.sub(r"\s+", " ", data)
        if self.in_heading and self.headings:
            self.headings[-1][1] += data
        self._emit(data)


def _html_text(raw: str) -> tuple[str, str, dict]:
    parser = _Visible()
    parser.feed(raw)
    parser.close()
    joined = "".join(parser.parts)
    # Collapse runs of blank lines while keeping heading offsets valid: rebuild with a map.
    text, headings = _squeeze(joined, parser.headings)
    title = parser.title.strip() or (headings[0][1].strip() if headings else "")
    return text, title, {"headings": [[o, h.strip()] for o, h in headings if h.strip()]}


def _squeeze(text: str, marks: list[list]) -> tuple[str, list[list]]:
    out, mapping, pos, out_len = [], {}, 0, 0
    offsets = sorted({m[0] for m in marks})
    i = 0  # offsets before `pos` are mapped already; one pass over both keeps this linear
    for piece in re.split(r"(\n[ \n]*)", text):
        while i < len(offsets) and offsets[i] < pos + len(piece):
            if offsets[i] >= pos:
                mapping[offsets[i]] = out_len
            i += 1
        pos += len(piece)
        if piece.startswith("\n"):
            piece = "\n\n" if piece.count("\n") > 1 else "\n"
        else:
            piece = piece.strip(" ") if not out or out[-1].endswith("\n") else piece
        out.append(piece)
        out_len += len(piece)
    squeezed = "".join(out)
    lead = len(squeezed) - len(squeezed.lstrip())
    return squeezed.strip(), [[max(0, mapping.get(o, 0) - lead), h] for o, h in marks]


def _too_long(n: int, limit: int, where: str = "") -> str:
    return (f"text is {n:,} characters{where}, over the {limit:,} limit (RAG_MAX_DOC_CHARS); "
            "split the file or raise the limit")


def _pdf_text(data: bytes, max_chars: int = MAX_DOC_CHARS) -> tuple[str, dict]:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise LoadError("PDF is encrypted; save an unencrypted copy")
        pages, starts, pos = [], [], 0
        for page in reader.pages:
            page_text = clean_text(page.extract_text() or "").strip()
            starts.append(pos)
            pages.append(page_text)
            pos += len(page_text) + 2
            if pos - 2 > max_chars:  # stop extracting: the rest could take minutes (compressed streams)
                raise LoadError(_too_long(pos - 2, max_chars, f" by page {len(pages)}"))
        info = reader.metadata or {}
        title, author = (str(info.get(k) or "").strip() for k in ("/Title", "/Author"))
    except LoadError:
        raise
    except (PdfReadError, Exception) as e:  # pypdf raises many types on corrupt input
        raise LoadError(f"corrupt or unreadable PDF ({type(e).__name__})") from None
    if not any(pages):
        raise LoadError("PDF has no extractable text (scanned images need OCR first)")
    return "\n\n".join(pages), {"title": title, "page_starts": starts, **({"author": author} if author else {})}
