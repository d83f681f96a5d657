"""Load corpus files (.txt, .md, .html, .pdf) into Documents; bad files are reported, not fatal."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from .types import Document

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_DOC_CHARS = 10_000_000  # extracted characters per file (Settings.max_doc_chars): a 16 KB PDF can inflate
MAX_DEPTH = 64  # folder levels below the corpus root that are indexed


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def load_corpus(corpus_dir: Path, max_doc_chars: int = MAX_DOC_CHARS) -> tuple[list[Document], list[Skipped]]:
    """Every supported file under corpus_dir, sorted by id, plus the files that were skipped.
    Nothing outside the corpus folder is read: a link that leads out of it is skipped."""
    corpus_dir = Path(corpus_dir)
    docs, skipped = [], []
    if not corpus_dir.is_dir():
        return docs, skipped
    files = _walk(corpus_dir, skipped)
    for path, rel in sorted(files, key=lambda f: Path(f[1]).parts):
        if not _utf8(rel):  # the id would be unwritable in the index (and unprintable)
            skipped.append(Skipped(_shown(rel), "file name is not valid UTF-8; rename the file"))
            continue
        if path.suffix.lower() not in SUFFIXES:
            skipped.append(Skipped(rel, f"unsupported file type {path.suffix or '(none)'}; "
                                        f"supported: {' '.join(SUFFIXES)}"))
            continue
        try:
            docs.append(load_file(path, rel, max_doc_chars))
        except LoadError as e:
            skipped.append(Skipped(rel, str(e)))
        except Exception as e:  # a parser bug on one hostile file must not stop the others
            skipped.append(Skipped(rel, f"could not be parsed ({type(e).__name__}); please report this file"))
    return docs, skipped


def _walk(root: Path, skipped: list) -> list[tuple[Path, str]]:
    """(path, id) of the files under root, walked with an explicit stack (no recursion limit).
    Links are followed only when they resolve inside root; a linked folder is not entered twice
    along one path (loops); folders deeper than MAX_DEPTH are skipped; hidden entries are ignored."""
    real_root = root.resolve()
    files = []
    stack = [(root, "", (real_root,))]  # folder, its id prefix, the real folders entered to reach it
    while stack:
        folder, prefix, chain = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            skipped.append(Skipped(_shown(prefix.rstrip("/") or "."), f"cannot read folder: {e.strerror or e}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel, path = prefix + entry.name, Path(entry.path)
            try:
                if entry.is_symlink():
                    try:
                        target = path.resolve(strict=True)
                    except (OSError, RuntimeError):  # missing target, or a chain of links in a loop
                        skipped.append(Skipped(_shown(rel), "broken link (its target is missing or a link loop); "
                                                            "remove it or point it at a file in the corpus"))
                        continue
                    if not target.is_relative_to(real_root):
                        skipped.append(Skipped(_shown(rel), f"links outside the corpus ({_shown(str(target))}); "
                                                            "copy the file into the corpus folder instead"))
                        continue
                    if target.is_dir() and target in chain:
                        skipped.append(Skipped(_shown(rel), "links to a folder that contains it (a loop); remove the link"))
                        continue
                else:
                    target = None
                if entry.is_dir():
                    if len(chain) > MAX_DEPTH:
                        skipped.append(Skipped(_shown(rel), f"folder is too deep (over {MAX_DEPTH} levels); "
                                                            "its files are not indexed: move them up"))
                        continue
                    real = target or (chain[-1] / entry.name)
                    stack.append((path, rel + "/", (*chain, real)))
                elif entry.is_file():
                    files.append((path, rel))
                else:
                    skipped.append(Skipped(_shown(rel), "not a regular file (a pipe, socket or device); remove it"))
            except OSError as e:
                skipped.append(Skipped(_shown(rel), f"cannot read: {e.strerror or e}"))
    return files


def _shown(name: str) -> str:
    """A name with undecodable bytes shown as escapes (it is printed and stored in reports)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


class LoadError(Exception):
    """Why one file cannot be indexed."""


def load_file(path: Path, doc_id: str | None = None, max_chars: int = MAX_DOC_CHARS) -> Document:
    """Load one file; raises LoadError with a short reason when it is unusable."""
    doc_id = doc_id or path.name
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise LoadError(f"file is {size / 2**20:.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit; "
                            f"split it into smaller files")
        data, mtime = path.read_bytes(), path.stat().st_mtime
    except OSError as e:
        raise LoadError(f"cannot read file: {e.strerror or e}") from None
    doc = parse_bytes(data, path.suffix.lower(), doc_id, max_chars)
    doc.metadata["modified"] = time.strftime("%Y-%m-%d", time.gmtime(mtime))  # a filter's date (not hashed)
    return doc


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
