"""The index directory around the versions: one writer at a time, the marks that say which
directories a build made, the temp dir, the atomic swap of `current`, and the sweep.

Layout: index/current -> v-<stamp>/ holding manifest.json, documents.jsonl, chunks.jsonl,
vectors.faiss (or vectors.npy where the vectors live in Milvus), sentences.jsonl, sentences.npy +
sentence_scales.npy and bm25/. A build writes a fresh
.tmp-* directory (marked with the index's id), fsyncs it, renames it to v-<stamp>, swaps the
`current` symlink atomically and sweeps what is no longer current: write -> fsync -> rename ->
swap -> sweep, so a crash at any moment leaves the previous index usable. Only directories marked
with this index's id are ever removed.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from .errors import IndexBusy, RagError, why
from .manifest import MARKER

CURRENT = "current"
ID_FILE = ".rag-index"  # the index directory's id, made by its first build


@contextmanager
def locked(index_dir: Path):
    """One writer at a time; a second `rag index` exits with one line instead of mixing indexes."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fh = open(index_dir / ".lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise IndexBusy(f"another `rag index` is already updating {index_dir}/; wait for it to finish") from None
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def check_dirs(corpus_dir: Path, index_dir: Path) -> None:
    """The index must live apart from the documents: a build writes and sweeps inside it."""
    corpus, index = Path(corpus_dir).resolve(), Path(index_dir).resolve()
    if corpus == index or corpus in index.parents or index in corpus.parents:
        how = "is" if corpus == index else "is inside" if corpus in index.parents else "contains"
        raise RagError(f"index dir {index} {how} the corpus dir {corpus}; set RAG_INDEX_DIR to a "
                       f"directory of its own (e.g. index/ beside corpus/)")


def index_id(index_dir: Path) -> str:
    """This index directory's id (made on first use): only directories marked with it are ever removed."""
    path = index_dir / ID_FILE
    try:
        ident = path.read_text(encoding="utf-8").strip()
        if ident:
            return ident
    except FileNotFoundError:
        pass
    ident = uuid.uuid4().hex
    tmp = index_dir / f"{ID_FILE}.{os.getpid()}"
    tmp.write_text(ident + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return ident


def new_version_dir(index_dir: Path, ident: str) -> Path:
    """A fresh temp directory for a build, marked as this index's own."""
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{ident[:12]}-", dir=index_dir))
    (tmp / MARKER).write_text(ident, encoding="utf-8")
    return tmp


def fsync_tree(version: Path) -> None:
    """Flush every file to disk before a rename makes the version visible."""
    for p in version.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())


def publish(tmp: Path, index_dir: Path, stamp: str) -> Path:
    """Rename a finished temp dir to its version name and point `current` at it."""
    final = index_dir / f"v-{stamp}-{hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:6]}"
    os.rename(tmp, final)
    swap_current(index_dir, final.name)
    return final


def swap_current(index_dir: Path, target: str) -> None:
    link = index_dir / f".current-{os.getpid()}"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(target, link)
    os.replace(link, index_dir / CURRENT)
    fd = os.open(index_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ours(path: Path, ident: str) -> bool:
    """A directory this index made: marked with its id, or named with it (a temp dir, or a version
    being deleted, which may have lost its marker when a crash stopped the deletion half way)."""
    if path.is_symlink() or not path.is_dir():
        return False
    if path.name.startswith(f".tmp-{ident[:12]}-"):
        return True
    try:
        return (path / MARKER).read_text(encoding="utf-8").strip() == ident
    except OSError:
        return False


def adopt_current(index_dir: Path, ident: str) -> None:
    """A version built before versions were marked is ours when `current` names it: mark it, so
    the build after next may sweep it like any other."""
    link = index_dir / CURRENT
    if not link.is_symlink():
        return
    target = index_dir / os.readlink(link)
    if target.parent == index_dir and target.name.startswith("v-") and target.is_dir() \
            and not (target / MARKER).exists() and (target / "manifest.json").is_file():
        (target / MARKER).write_text(ident, encoding="utf-8")


def sweep(index_dir: Path, ident: str) -> None:
    """Remove temp dirs left by crashed builds and versions no longer current: only directories
    this index marked as its own, never anything else a user keeps in the folder."""
    current = os.readlink(index_dir / CURRENT) if (index_dir / CURRENT).is_symlink() else None
    for p in index_dir.iterdir():
        if p.name.startswith(".tmp-") or (p.name.startswith("v-") and p.name != current):
            if _ours(p, ident):
                if p.name.startswith("v-"):  # renamed first, so a crash mid-delete leaves a name we know
                    doomed = p.with_name(f".tmp-{ident[:12]}-old-{p.name}")
                    os.rename(p, doomed)
                    p = doomed
                shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(".current-") and p.is_symlink():
            p.unlink()


def write_error(e: OSError, index_dir: Path) -> str:
    """One line for a failed write: which disk is full, or which directory cannot be written."""
    if e.errno == errno.ENOSPC:
        return (f"no space left on {_mount_point(index_dir)} while writing the index in {index_dir.absolute()}/; "
                f"the previous index is still in use; free some space and run `rag index` again")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write the index in {index_dir.absolute()}/ ({e.strerror}: {e.filename}); make it writable "
                f"or set RAG_INDEX_DIR to another directory; the previous index is still in use")
    return f"writing the index in {index_dir.absolute()}/ failed ({why(e)}); the previous index is still in use"


def _mount_point(path: Path) -> Path:
    p = Path(path).absolute()
    while not p.exists() and p.parent != p:
        p = p.parent
    try:
        dev = os.stat(p).st_dev
        while p.parent != p and os.stat(p.parent).st_dev == dev:
            p = p.parent
    except OSError:
        pass
    return p
