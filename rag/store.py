"""Open a built index version read-only and check it against the config before anything is served."""

from __future__ import annotations

import bisect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import Settings
from .errors import IndexBusy, RagError, why
from .lexical import Lexical
from .manifest import (REBUILD, shown, UPDATED_BY_BUILD, check_compatible, check_files, fingerprint, out_of_step,
                       probe_rows, read_manifest)
from .types import Chunk, Document, content_hash
from .vectorstore import FaissStore, VectorIndex, VectorStore, row_ids, stored_vectors
from .versions import CURRENT


def vector_store(settings: Settings) -> VectorStore:
    """The store RAG_VECTOR_STORE names."""
    from .config import parse_vector_store

    kind, uri = parse_vector_store(settings.vector_store)
    if kind == "faiss":
        return FaissStore(settings.flat_threshold)
    from .milvus import MilvusStore

    return MilvusStore(uri, settings.milvus_collection)


@dataclass
class Index:
    path: Path
    manifest: dict
    documents: dict[str, Document]
    chunks: list[Chunk]
    chunk_keys: list[str]
    searcher: VectorIndex | None  # None when opened for a build (the store may be switching)
    lexical: Lexical
    sentences: list[tuple[str, int, int]]
    sentence_vectors: np.ndarray  # or QuantizedRows (int8 on disk and in memory), read the same way
    vectors: np.ndarray | None = None
    sentence_keys: list[str | None] | None = None  # cache key of each sentence vector
    derived: dict = field(default_factory=dict)  # what later stages work out once per index (rag.retrieve)

    def _sentence_starts(self) -> dict[str, tuple[list[int], list[int]]]:
        """doc_id -> (sentence starts, rows), worked out on first use (80 ms of a cold start on SciFact)."""
        if "by_doc" not in self.derived:
            by_doc: dict[str, tuple[list[int], list[int]]] = {}
            for row, (doc_id, s, _e) in enumerate(self.sentences):
                starts, rows = by_doc.setdefault(doc_id, ([], []))
                starts.append(s)
                rows.append(row)
            self.derived["by_doc"] = by_doc
        return self.derived["by_doc"]

    def sentences_in(self, doc_id: str, start: int, end: int) -> list[int]:
        """Rows of the sentences that overlap doc_id[start:end], in document order."""
        starts, rows = self._sentence_starts().get(doc_id, ([], []))
        i = max(0, bisect.bisect_right(starts, start) - 1)
        out = []
        while i < len(starts) and starts[i] < end:
            if self.sentences[rows[i]][2] > start:
                out.append(rows[i])
            i += 1
        return out

    def sentence_text(self, row: int) -> str:
        doc_id, s, e = self.sentences[row]
        return self.documents[doc_id].text[s:e]

    def sentence_matrix(self, rows, embedder) -> np.ndarray:
        """Vectors of the given sentence rows: stored at index time, else embedded now."""
        if len(self.sentence_vectors):
            return self.sentence_vectors[rows]
        return embedder.embed_documents([self.sentence_text(r) for r in rows])

    def vector_cache(self) -> dict:
        """(model, text hash) -> vector for every chunk and sentence, to avoid re-embedding."""
        cache = {}
        if self.vectors is not None:
            cache.update(zip(self.chunk_keys, self.vectors))
        model = self.manifest["model"]
        keys = self.sentence_keys or [None] * len(self.sentences)
        for row, (key, vec) in enumerate(zip(keys, self.sentence_vectors)):  # empty if not indexed
            cache[key or content_hash(model, self.sentence_text(row))] = vec
        return cache


def open_index(settings: Settings, load_vectors: bool = False, for_build: bool = False,
               store: VectorStore | None = None) -> Index:
    """Load index_dir/current; any damage becomes one RagError line naming the fix.
    for_build: the previous version as a build reuses it (chunks, cached vectors), without its
    vector store, which may be another kind when RAG_VECTOR_STORE was just switched."""
    root = Path(settings.index_dir)
    store = store or vector_store(settings)
    for _attempt in range(3):
        path = _current(root)
        try:
            return _open(root, path, settings, store, load_vectors, for_build)
        except RagError:
            if _current(root) == path:
                raise
        # else: a build swapped in a new version (and swept this one) while we read it; read the new one
    raise IndexBusy(f"{root}/ kept changing while it was read; wait for `rag index` to finish and try again")


def _current(root: Path) -> Path:
    """The version directory `current` points to, resolved once so every file comes from it."""
    link = root / CURRENT
    if not link.exists():
        if link.is_symlink():
            raise RagError(f"{link} points to {os.readlink(link)}, which is missing; {REBUILD}")
        raise IndexBusy(f"no index in {root.absolute()}/; run `rag index` first")
    return link.resolve()


def _open(root: Path, path: Path, settings: Settings, store: VectorStore, load_vectors: bool,
          for_build: bool) -> Index:
    manifest = read_manifest(root, path)
    check_compatible(manifest, settings, root, store.kind, ignore=UPDATED_BY_BUILD if for_build else ())
    try:  # a build reuses this version's files: check them whole; serving checks large ones by samples
        return _load(path, manifest, store, load_vectors, for_build)
    except RagError:
        raise
    except Exception as e:  # truncated or edited files: never serve from a damaged index
        raise RagError(f"{root}/ is damaged ({why(e)}); {REBUILD}") from None


def _lines(path: Path, name: str, data: dict[str, bytes]) -> list:
    raw = data[name] if name in data else (path / name).read_bytes()
    # split on "\n" only: str.splitlines() would also cut at U+2028 or U+0085 inside a document.
    # One json.loads of all lines as an array: per-line calls took 0.25 s of a cold start on SciFact.
    # (A raw newline never occurs inside a JSON value, so the lines are whole values.)
    lines = [line for line in raw.decode("utf-8").split("\n") if line.strip()]
    try:
        rows = json.loads("[" + ",".join(lines) + "]")
        if len(rows) == len(lines):
            return rows
    except ValueError:
        pass
    return [json.loads(line) for line in lines]  # a damaged file: this names the bad line


def _load(path: Path, manifest: dict, store: VectorStore, load_vectors: bool, for_build: bool) -> Index:
    data = check_files(path, manifest, full=for_build)
    documents = {}
    for d in _lines(path, "documents.jsonl", data):
        documents[d["id"]] = Document(d["id"], d["title"], d["text"], d.get("metadata") or {})
    chunks, keys, problems = [], [], []
    for doc_id, start, end, section, page, key in _lines(path, "chunks.jsonl", data):
        doc = documents.get(doc_id)
        if doc is None or not 0 <= start < end <= len(doc.text):
            problems.append(f"chunks.jsonl has a chunk {doc_id!r} {start}-{end} that is not in documents.jsonl")
            break
        chunks.append(Chunk(doc_id, start, end, doc.text[start:end], doc.title, section, page))
        keys.append(key)
    rows = _lines(path, "sentences.jsonl", data)
    sentences = [tuple(row[:3]) for row in rows]
    sentence_keys = [row[3] if len(row) > 3 else None for row in rows]  # no key: embedded on its own
    for doc_id, start, end in sentences:
        if doc_id not in documents or not 0 <= start < end <= len(documents[doc_id].text):
            problems.append(f"sentences.jsonl has a sentence {doc_id!r} {start}-{end} that is not in documents.jsonl")
            break
    if problems:
        raise out_of_step(path, problems)
    sent_vectors = load_sentence_vectors(path)
    n, dim = manifest["count"], manifest["dim"]
    searcher = None
    if not for_build:
        searcher = store.open(path, manifest, row_ids([(c.doc_id, c.start, c.end, k) for c, k in zip(chunks, keys)]))
        if searcher.count != n:
            problems.append(f"{searcher.count} vectors, {len(chunks)} chunks, manifest says {n}")
        if searcher.dim != dim:
            problems.append(f"vector dim {searcher.dim}, manifest says {shown(dim, searcher.dim)}")
    if len(chunks) != n:
        problems.append(f"{len(chunks)} chunks, manifest says {n}")
    if len(sent_vectors) and sent_vectors.shape != (len(sentences), dim):
        problems.append(f"{sent_vectors.shape[0]} sentence vectors for {len(sentences)} sentences")
    if manifest.get("index_sentences") and len(sentences) != manifest.get("sentences", len(sentences)):
        problems.append(f"{len(sentences)} sentences, manifest says {manifest['sentences']}")
    if set(documents) != {d["id"] for d in manifest["documents"]}:
        problems.append("document store and manifest list different documents")
    problems += [] if problems or searcher is None else _probe(manifest, searcher, store, sent_vectors)
    if problems:
        raise out_of_step(path, problems)
    vectors = stored_vectors(path) if load_vectors else None
    if vectors is not None and "vectors" in (manifest.get("probe") or {}) and \
            fingerprint(vectors[probe_rows(len(vectors))]) != manifest["probe"]["vectors"]:
        name = "vectors.npy" if (path / "vectors.npy").exists() else "vectors.faiss"
        raise out_of_step(path, [f"{name} holds other vectors than the chunk store was built with"])
    return Index(path.resolve(), manifest, documents, chunks, keys, searcher,
                 Lexical(path / "bm25", n), sentences, sent_vectors, vectors, sentence_keys)


# Sentence vectors on disk: int8 codes (symmetric, max |x| -> 127), a quarter of float32's size,
# and one float32 scale per row that makes the row unit length again, as it was built (rounding
# alone moves norms by ~0.1%). SciFact: cosine to float32 >= 0.9999 for every sentence, nDCG@10
# 0.7235 vs 0.7236 (bench/README.md). In memory they stay int8; rows turn float32 when read.
# Indexes from before (float32 sentences.npy) still load.

class QuantizedRows:
    """int8 rows times a per-row scale, read as float32 rows (`rows[i]`, `rows[list]`, iteration);
    `np.asarray(rows)` gives the whole float32 matrix."""

    def __init__(self, codes: np.ndarray, scales: np.ndarray):
        self.codes, self.scales = codes, scales
        self.shape, self.dtype = codes.shape, np.dtype("float32")

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, rows) -> np.ndarray:
        out = self.codes[rows].astype("float32")
        out *= self.scales[rows][..., None]
        return out

    def dot_rows(self, rows, vector: np.ndarray) -> np.ndarray:
        """self[rows] @ vector, with the scales applied to the products instead of to every element."""
        return (self.codes[rows].astype("float32") @ vector) * self.scales[rows]

    def __iter__(self):
        for start in range(0, len(self.codes), 4096):
            yield from self[start:start + 4096]

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def save_sentence_vectors(version: Path, vectors: np.ndarray) -> QuantizedRows:
    """Write sentences.npy (+ sentence_scales.npy); returns the vectors as they will load."""
    vectors = np.asarray(vectors, dtype="float32")
    codes, scales = np.empty(vectors.shape, dtype="int8"), np.empty(len(vectors), dtype="float32")
    for a in range(0, len(vectors), 4096):  # in blocks: a build's peak memory is not the place for copies
        block = vectors[a:a + 4096]
        step = np.abs(block).max(axis=1) / 127
        codes[a:a + 4096] = np.rint(block / np.where(step > 0, step, 1)[:, None])
        norms = np.linalg.norm(codes[a:a + 4096].astype("float32"), axis=1)
        scales[a:a + 4096] = 1 / np.where(norms > 0, norms, 1)
    save_array(version / "sentences.npy", codes)
    save_array(version / "sentence_scales.npy", scales)
    return QuantizedRows(codes, scales)


def save_array(path: Path, array: np.ndarray) -> None:
    """np.save through an ordinary file write: np.save straight to a file reports a full disk as
    "N requested and M written", without the errno that names it (rag.versions.write_error)."""
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    with open(path, "wb") as f:
        f.write(buf.getbuffer())


def load_sentence_vectors(version: Path) -> np.ndarray | QuantizedRows:
    vectors = np.load(version / "sentences.npy")
    if vectors.dtype != np.int8:  # written before int8 storage
        return vectors
    scales = np.load(version / "sentence_scales.npy")
    if scales.shape != (len(vectors),):
        raise ValueError(f"sentence_scales.npy has {scales.shape[0]} rows for {len(vectors)} sentence vectors")
    return QuantizedRows(vectors, scales)


def _probe(manifest: dict, searcher: VectorIndex, store: VectorStore, sent_vectors: np.ndarray) -> list[str]:
    """Same counts are not enough: the vectors must be the ones this build wrote."""
    want = manifest.get("probe") or {}
    problems = []
    if "vectors" in want:
        rows = probe_rows(searcher.count)
        got = searcher.vectors(rows)  # None: an index type that cannot give vectors back
        if got is not None and fingerprint(got) != want["vectors"]:
            problems.append(f"{store.label} holds other vectors than the chunk store was built with")
    if "sentences" in want and fingerprint(sent_vectors[probe_rows(len(sent_vectors))]) != want["sentences"]:
        problems.append("sentences.npy holds other vectors than the sentence store was built with")
    return problems


def verify(settings: Settings, store: VectorStore | None = None) -> tuple[list[str], dict]:
    """Every file of the current version hashed whole against the manifest, then opened as a build
    would open it (counts, offsets, vectors): (problems, what was checked)."""
    from .manifest import file_problems

    root = Path(settings.index_dir)
    path = _current(root)
    manifest = read_manifest(root, path)
    problems, _ = file_problems(path, manifest, full=True)
    files = manifest.get("files") or {}
    checked = {"version": path.name, "files": len(files), "bytes": sum(int(f.get("bytes", 0)) for f in files.values()),
               "unhashed": sorted(n for n, f in files.items() if "xxh3" not in f and "sha256" not in f)}
    if not problems:
        try:
            index = open_index(settings, load_vectors=True, store=store)
            checked["chunks"] = len(index.chunks)
        except RagError as e:
            problems.append(str(e))
    return problems, checked
