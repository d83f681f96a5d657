"""Load corpus files (.txt, .md, .html, .pdf) into Documents; bad files are reported, not fatal.

This module walks the corpus folder and reads files; rag.parse turns their bytes into a Document."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from .parse import MAX_DOC_CHARS, LoadError, parse_bytes
from .types import Document

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
MAX_FILE_BYTES = 20 * 1024 * 1024
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
