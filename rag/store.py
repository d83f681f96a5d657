"""Open a built index read-only and check it against the config before anything is served."""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import vectorstore
from .config import Settings
from .embed import import_torch_first
from .errors import RagError
from .index import CURRENT, FORMAT_VERSION, UPDATED_BY_BUILD, built_store, check_compatible, fingerprint, probe_rows
from .lexical import Lexical
from .types import Chunk, Document, content_hash

REBUILD = "run `rag index --rebuild`"


@dataclass
class Index:
    path: Path
    manifest: dict
    documents: dict[str, Document]
    chunks: list[Chunk]
    chunk_keys: list[str]
    searcher: object  # FAISS index or rag.vectorstore.MilvusSearcher: .search, .reconstruct
    lexical: Lexical
    sentences: list[tuple[str, int, int]]
    sentence_vectors: np.ndarray
    vectors: np.ndarray | None = None
    sentence_keys: list[str | None] | None = None  # cache key of each sentence vector

    def __post_init__(self):
        self._by_doc: dict[str, tuple[list[int], list[int]]] = {}
        for row, (doc_id, s, _e) in enumerate(self.sentences):
            starts, rows = self._by_doc.setdefault(doc_id, ([], []))
            starts.append(s)
            rows.append(row)

    def chunk_sentence_best(self, qv: np.ndarray, chunk_ids) -> np.ndarray:
        """For each given chunk, the best cosine between qv and the stored vectors of the
        (non-heading) sentences it overlaps; -1 where it has none. Only those sentences are
        read, so the cost follows the candidates, not the corpus."""
        offsets, rows = self._chunk_rows
        ids = np.asarray(chunk_ids, dtype="int64")
        starts, counts = offsets[ids], offsets[ids + 1] - offsets[ids]
        out = np.full(len(ids), -1.0, dtype="float32")
        total = int(counts.sum())
        if not total or not len(self.sentence_vectors):
            return out
        seg = np.cumsum(counts) - counts  # where each chunk's run starts in the gathered rows
        picked = rows[np.arange(total) - np.repeat(seg, counts) + np.repeat(starts, counts)]
        scores = self.sentence_vectors[picked] @ np.asarray(qv, dtype="float32")
        scores[self.heading_mask[picked]] = -1.0
        some = counts > 0
        out[some] = np.maximum.reduceat(scores, seg[some])
        return out

    @property
    def _chunk_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR layout: chunk c overlaps sentence rows rows[offsets[c]:offsets[c + 1]]."""
        if not hasattr(self, "_csr"):
            per_chunk = [self.sentences_in(c.doc_id, c.start, c.end) for c in self.chunks]
            offsets = np.zeros(len(per_chunk) + 1, dtype="int64")
            offsets[1:] = np.cumsum([len(r) for r in per_chunk])
            rows = np.fromiter((r for rs in per_chunk for r in rs), dtype="int64", count=int(offsets[-1]))
            self._csr = (offsets, rows)
        return self._csr

    @property
    def heading_mask(self) -> np.ndarray:
        """True for heading-like sentence rows (a title line matches everything and answers nothing)."""
        if not hasattr(self, "_heading_mask"):
            self._heading_mask = np.array([is_heading(self.documents[d].text[s:e]) for d, s, e in self.sentences],
                                          dtype=bool)
        return self._heading_mask

    def sentences_in(self, doc_id: str, start: int, end: int) -> list[int]:
        """Rows of the sentences that overlap doc_id[start:end], in document order."""
        starts, rows = self._by_doc.get(doc_id, ([], []))
        i = max(0, bisect.bisect_right(starts, start) - 1)
        out = []
        while i < len(starts) and starts[i] < end:
            if self.sentences[rows[i]][2] > start:
                out.append(rows[i])
            i += 1
        return out

    def sentence_matrix(self, rows, embedder) -> np.ndarray:
        """Vectors of the given sentence rows: stored at index time, else embedded now."""
        if len(self.sentence_vectors):
            return self.sentence_vectors[rows]
        texts = [self.documents[self.sentences[r][0]].text[self.sentences[r][1]:self.sentences[r][2]] for r in rows]
        return embedder.embed_documents(texts)

    def vector_cache(self) -> dict:
        """(model, text hash) -> vector for every chunk and sentence, to avoid re-embedding."""
        cache = {}
        if self.vectors is not None:
            cache.update(zip(self.chunk_keys, self.vectors))
        model = self.manifest["model"]
        keys = self.sentence_keys or [None] * len(self.sentences)
        for (doc_id, s, e), key, vec in zip(self.sentences, keys, self.sentence_vectors):  # empty if not indexed
            cache[key or content_hash(model, self.documents[doc_id].text[s:e])] = vec
        return cache


def is_heading(text: str) -> bool:
    """A short line without final punctuation ("The Authors"); a byline ("By ...") is content."""
    text = text.strip()
    if text.lower().startswith("by "):
        return False
    return len(text.split()) <= 6 and not text.endswith((".", "?", "!", "\u201d", '"'))


def open_index(settings: Settings, load_vectors: bool = False, for_build: bool = False) -> Index:
    """Load index_dir/current; any damage becomes one RagError line naming the fix.
    for_build: the previous version as a build reuses it (chunks, cached vectors), without its
    vector store, which may be another kind when RAG_VECTOR_STORE was just switched."""
    root = Path(settings.index_dir)
    for _attempt in range(3):
        path = _current(root)
        try:
            return _open(root, path, settings, load_vectors, for_build)
        except RagError:
            if _current(root) == path:
                raise
        # else: a build swapped in a new version (and swept this one) while we read it; read the new one
    raise RagError(f"{root}/ kept changing while it was read; wait for `rag index` to finish and try again")


def _current(root: Path) -> Path:
    """The version directory `current` points to, resolved once so every file comes from it."""
    link = root / CURRENT
    if not link.exists():
        if link.is_symlink():
            raise RagError(f"{link} points to {os.readlink(link)}, which is missing; {REBUILD}")
        raise RagError(f"no index in {root}/; run `rag index` first")
    return link.resolve()


def _open(root: Path, path: Path, settings: Settings, load_vectors: bool, for_build: bool = False) -> Index:
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or "format_version" not in manifest:
            raise ValueError("manifest has no format_version")
    except (OSError, ValueError) as e:
        raise RagError(f"{root}/ manifest is missing or unreadable ({_why(e)}); {REBUILD}") from None
    if manifest["format_version"] != FORMAT_VERSION:
        raise RagError(f"{root}/ has index format {manifest['format_version']}, this version reads "
                       f"{FORMAT_VERSION}; {REBUILD}")
    check_compatible(manifest, settings, root, ignore=UPDATED_BY_BUILD if for_build else ())
    try:
        return _load(path, manifest, load_vectors, settings, for_build)
    except RagError:
        raise
    except Exception as e:  # truncated or edited files: never serve from a damaged index
        raise RagError(f"{root}/ is damaged ({_why(e)}); {REBUILD}") from None


def _why(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:120]}" if str(e) else type(e).__name__


def _out_of_step(path: Path, problems: list[str]) -> RagError:
    return RagError(f"{path.parent}/ is out of step: {'; '.join(problems)}; {REBUILD}")


def _check_files(path: Path, manifest: dict) -> dict[str, bytes]:
    """Compare every file with the sizes (and checksums) the build recorded; returns the
    checksummed files' bytes so they are read once. Indexes built before this check have
    no file list and are checked by the counts in `_load` only."""
    files = manifest.get("files") or {}
    problems, data = [], {}
    for name, want in files.items():
        p = path / name
        if not p.is_file():
            problems.append(f"{name} is missing")
        elif p.stat().st_size != want.get("bytes"):
            problems.append(f"{name} is {p.stat().st_size} bytes, the build wrote {want.get('bytes')}")
        elif "sha256" in want:
            data[name] = p.read_bytes()
            if hashlib.sha256(data[name]).hexdigest() != want["sha256"]:
                problems.append(f"{name} was changed after the build")
    if problems:
        raise _out_of_step(path, problems)
    return data


def _lines(path: Path, name: str, data: dict[str, bytes]) -> list:
    raw = data[name] if name in data else (path / name).read_bytes()
    # split on "\n" only: str.splitlines() would also cut at U+2028 or U+0085 inside a document
    return [json.loads(line) for line in raw.decode("utf-8").split("\n") if line.strip()]


def _load(path: Path, manifest: dict, load_vectors: bool, settings: Settings, for_build: bool = False) -> Index:
    data = _check_files(path, manifest)
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
        raise _out_of_step(path, problems)
    sent_vectors = np.load(path / "sentences.npy")
    n, dim = manifest["count"], manifest["dim"]
    index = None
    if not for_build:
        rows = [(c.doc_id, c.start, c.end, key) for c, key in zip(chunks, keys)]
        index = vectorstore.open_store(settings).open(path, manifest, vectorstore.row_ids(rows))
        if index.ntotal != n:
            problems.append(f"{index.ntotal} vectors, {len(chunks)} chunks, manifest says {n}")
        if index.d != dim:
            problems.append(f"vector dim {index.d}, manifest says {dim}")
    if len(chunks) != n:
        problems.append(f"{len(chunks)} chunks, manifest says {n}")
    if len(sent_vectors) and sent_vectors.shape != (len(sentences), dim):
        problems.append(f"{sent_vectors.shape[0]} sentence vectors for {len(sentences)} sentences")
    if manifest.get("index_sentences") and len(sentences) != manifest.get("sentences", len(sentences)):
        problems.append(f"{len(sentences)} sentences, manifest says {manifest['sentences']}")
    if set(documents) != {d["id"] for d in manifest["documents"]}:
        problems.append("document store and manifest list different documents")
    problems += [] if problems or index is None else _probe(manifest, index, sent_vectors)
    if problems:
        raise _out_of_step(path, problems)
    vectors = np.load(path / "vectors.npy") if load_vectors else None
    if vectors is not None and "vectors" in (manifest.get("probe") or {}) and \
            fingerprint(vectors[probe_rows(len(vectors))]) != manifest["probe"]["vectors"]:
        raise _out_of_step(path, ["vectors.npy holds other vectors than the chunk store was built with"])
    return Index(path.resolve(), manifest, documents, chunks, keys, index,
                 Lexical(path / "bm25", n), sentences, sent_vectors, vectors, sentence_keys)


def _probe(manifest: dict, index, sent_vectors: np.ndarray) -> list[str]:
    """Same counts are not enough: the vectors must be the ones this build wrote."""
    want = manifest.get("probe") or {}
    problems = []
    if "vectors" in want:
        rows = probe_rows(index.ntotal)
        try:
            got = np.stack([index.reconstruct(i) for i in rows]) if rows else np.zeros((0, index.d), "float32")
        except RuntimeError:  # an index type that cannot give vectors back
            got = None
        if got is not None and fingerprint(got) != want["vectors"]:
            problems.append(f"{_vector_file(manifest)} holds other vectors than the chunk store was built with")
    if "sentences" in want and fingerprint(sent_vectors[probe_rows(len(sent_vectors))]) != want["sentences"]:
        problems.append("sentences.npy holds other vectors than the sentence store was built with")
    return problems


def _vector_file(manifest: dict) -> str:
    return "the Milvus collection" if built_store(manifest) == "milvus" else "vectors.faiss"


def read_faiss(path: Path):
    import_torch_first()
    import faiss

    # Memory-mapped in place where this FAISS has IO_FLAG_MMAP_IFC: a 1M-vector flat index opens
    # in ~0 s with no anonymous memory (IO_FLAG_MMAP still copies flat and HNSW data; bench/scale.py).
    flag = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP) | faiss.IO_FLAG_READ_ONLY
    try:
        return faiss.read_index(str(path), flag)
    except RuntimeError:
        return faiss.read_index(str(path))
