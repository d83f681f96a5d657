"""Uploads and deletions from the app: saved into corpus/ under a cleaned name, never over a
different document unless the user chose to replace it; a deleted document leaves the index at once."""

import os
import shutil
import threading
import uuid
from pathlib import Path

from .errors import NotFound, RagError
from .ui_render import counted, safe_upload_name

_UPLOAD_LOCK = threading.Lock()  # one re-index at a time from this app


def add_document(rag, path, name: str | None = None, replace: bool = False) -> str:
    """Copy an uploaded file into corpus_dir under a safe name and re-index; returns a status line.
    A different document under that name is kept (the upload gets "name (2).md") unless `replace`."""
    return store_document(rag, path, name, replace)[2]


def store_document(rag, path, name: str | None = None, replace: bool = False) -> tuple[str, bool, str]:
    """`add_document`, returning (the name it is stored under, whether it was added, the status line)."""
    from .parse import LoadError, parse_bytes

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
        name, same = (name, _same(corpus / name, data)) if replace else _free_name(corpus, name, data)
        if same:
            return name, False, f"{name} is already in the corpus with the same content; nothing was added."
        replace = replace and os.path.lexists(corpus / name)
        tmp = corpus / f".upload-{uuid.uuid4().hex}"  # hidden, so a concurrent index run skips it
        shutil.copyfile(src, tmp)
        old = corpus / f".replaced-{uuid.uuid4().hex}"
        if replace:
            os.replace(corpus / name, old)
        os.replace(tmp, corpus / name)
        try:
            report = rag.build(log=lambda *_: None)
        except BaseException:  # not indexed (e.g. another `rag index` holds the lock): as before, so a retry works
            os.replace(old, corpus / name) if replace else os.unlink(corpus / name)
            raise
        if replace:
            old.unlink()
    entry = next((d for d in rag.index.manifest["documents"] if d["id"] == name), None)
    if entry is None:
        reason = next((s.reason for s in report.skipped if s.path == name), "it was skipped")
        raise RagError(f"{name} was saved but not indexed ({reason})")
    chunks = counted(entry["chunks"], "chunk")
    renamed = "" if name == wanted else f" ({wanted} already holds a different document)"
    return name, True, (f"{'Replaced' if replace else 'Added'} {name}{renamed}: {chunks} indexed in "
                        f"{report.seconds:.1f}s. You can ask about it now.")


def taken(rag, path, name: str | None = None) -> str:
    """The cleaned name of an upload when corpus_dir already holds a different file under it, else ""."""
    name = safe_upload_name(name or Path(path).name)
    target = Path(rag.settings.corpus_dir) / name
    try:
        return name if os.path.lexists(target) and not _same(target, Path(path).read_bytes()) else ""
    except OSError:
        return ""


def delete_document(rag, doc_id: str) -> str:
    """Remove an indexed document's file from corpus_dir and re-index (only what changed); returns a
    status line. Only ids in the index are accepted, and only files inside corpus_dir are touched."""
    entries = {d["id"]: d for d in rag.index.manifest["documents"]}
    entry = entries.get(doc_id) if isinstance(doc_id, str) else None
    if entry is None:
        raise NotFound(f"{str(doc_id)[:200]!r} is not in the index; reload the Corpus tab")
    corpus = Path(rag.settings.corpus_dir).resolve()
    target = Path(rag.settings.corpus_dir) / doc_id
    if corpus not in target.parent.resolve().parents and target.parent.resolve() != corpus:
        raise RagError(f"{doc_id!r} is outside {corpus}; delete it by hand and run `rag index`")
    with _UPLOAD_LOCK:
        aside = target.with_name(f".delete-{uuid.uuid4().hex}")  # hidden: the re-index below no longer sees it
        try:
            os.replace(target, aside)
        except FileNotFoundError:
            aside = None  # already gone from disk: the re-index below drops it from the index
        except OSError as e:
            raise RagError(f"cannot delete {doc_id} ({e.strerror or e}); check the permissions of {corpus}") from None
        try:
            report = rag.build(log=lambda *_: None)
        except BaseException:  # the index still lists it (another build holds the lock, or nothing is left): put it back
            if aside is not None:
                os.replace(aside, target)
            raise
        if aside is not None:
            aside.unlink()
    if any(d["id"] == doc_id for d in rag.index.manifest["documents"]):
        raise RagError(f"{doc_id} is still in the index; run `rag index` and check its warnings")
    return (f"Deleted {doc_id}: {counted(entry['chunks'], 'chunk')} left the index in {report.seconds:.1f}s; "
            "answers no longer use it.")


def _same(target: Path, data: bytes) -> bool:
    try:
        return target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data
    except OSError:
        return False


def _free_name(corpus: Path, name: str, data: bytes) -> tuple[str, bool]:
    """(name, False), or ("name (2).md", False) ... when different files hold the names before it;
    (a name, True) when that file already has exactly this content."""
    stem, suffix = name[: -len(Path(name).suffix)], Path(name).suffix
    for n in range(1, 10_000):
        candidate = name if n == 1 else f"{stem} ({n}){suffix}"
        target = corpus / candidate
        if not os.path.lexists(target):
            return candidate, False
        if _same(target, data):
            return candidate, True
    raise RagError(f"too many files named like {name} in the corpus; rename the upload")
