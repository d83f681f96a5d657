"""Uploads from the app: saved into corpus/ under a cleaned name, never over a different document."""

import os
import shutil
import threading
import uuid
from pathlib import Path

from .errors import RagError
from .ui_render import counted, safe_upload_name

_UPLOAD_LOCK = threading.Lock()  # one re-index at a time from this app


def add_document(rag, path, name: str | None = None) -> str:
    """Copy an uploaded file into corpus_dir under a safe name and re-index; returns a status line."""
    return store_document(rag, path, name)[2]


def store_document(rag, path, name: str | None = None) -> tuple[str, bool, str]:
    """`add_document`, returning (the name it is stored under, whether it was added, the status line)."""
    from .load import LoadError, parse_bytes

    src = Path(path)
    name = safe_upload_name(name or src.name)
    limit = rag.settings.upload_max_mb
    size = src.stat().st_size
    if size > limit * 2**20:
        raise RagError(f"{name} is {size / 2**20:.1f} MB, over the {limit} MB upload limit; "
                       "split it or raise RAG_UPLOAD_MAX_MB")
    data = src.read_bytes()
    try:
        parse_bytes(data, Path(name).suffix.lower(), name, rag.settings.max_doc_chars)
    except LoadError as e:
        raise RagError(f"cannot add {name}: {e}; fix the file and upload it again") from None
    corpus = Path(rag.settings.corpus_dir)
    corpus.mkdir(parents=True, exist_ok=True)
    wanted = name
    with _UPLOAD_LOCK:
        name, same = _free_name(corpus, name, data)
        if same:
            return name, False, f"{name} is already in the corpus with the same content; nothing was added."
        tmp = corpus / f".upload-{uuid.uuid4().hex}"  # hidden, so a concurrent index run skips it
        shutil.copyfile(src, tmp)
        os.replace(tmp, corpus / name)
        try:
            report = rag.build(log=lambda *_: None)
        except BaseException:  # not indexed (e.g. another `rag index` holds the lock): take it out, so a retry adds it
            os.unlink(corpus / name)
            raise
    entry = next((d for d in rag.index.manifest["documents"] if d["id"] == name), None)
    if entry is None:
        reason = next((s.reason for s in report.skipped if s.path == name), "it was skipped")
        raise RagError(f"{name} was saved but not indexed ({reason})")
    chunks = counted(entry["chunks"], "chunk")
    renamed = "" if name == wanted else f" ({wanted} already holds a different document)"
    return name, True, f"Added {name}{renamed}: {chunks} indexed in {report.seconds:.1f}s. You can ask about it now."


def _free_name(corpus: Path, name: str, data: bytes) -> tuple[str, bool]:
    """(name, False), or ("name (2).md", False) ... when different files hold the names before it;
    (a name, True) when that file already has exactly this content."""
    stem, suffix = name[: -len(Path(name).suffix)], Path(name).suffix
    for n in range(1, 10_000):
        candidate = name if n == 1 else f"{stem} ({n}){suffix}"
        target = corpus / candidate
        if not os.path.lexists(target):
            return candidate, False
        try:
            if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
                return candidate, True
        except OSError:
            pass
    raise RagError(f"too many files named like {name} in the corpus; rename the upload")


def remove_document(rag, doc_id: str) -> str:
    """Delete an indexed document's file from corpus_dir and re-index; returns a status line.
    Only ids in the index are accepted, and only files inside corpus_dir are ever removed."""
    from .errors import NotFound

    if doc_id not in {d["id"] for d in rag.index.manifest["documents"]}:
        raise NotFound(f"unknown document: {doc_id[:200]}")
    corpus = Path(rag.settings.corpus_dir).resolve()
    target = (corpus / doc_id).resolve()
    if corpus not in target.parents:
        raise NotFound(f"unknown document: {doc_id[:200]}")
    if not target.is_file():
        raise NotFound(f"{doc_id[:200]} is in the index but no longer in {corpus}/; run `rag index` to drop it")
    with _UPLOAD_LOCK:
        aside = target.with_name(f".delete-{uuid.uuid4().hex}")  # hidden: the build below no longer sees it
        os.replace(target, aside)
        try:
            report = rag.build(log=lambda *_: None)
        except BaseException:  # the index still lists it: put the file back, nothing is lost
            os.replace(aside, target)
            raise
        aside.unlink()
    left = counted(len(rag.index.manifest["documents"]), "document")
    return f"Deleted {doc_id}: {left} left, re-indexed in {report.seconds:.1f}s."
