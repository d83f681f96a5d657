"""Open a built index read-only and check it against the config before anything is served."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Settings
from .embed import import_torch_first
from .errors import RagError
from .index import CURRENT, FORMAT_VERSION, check_compatible
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
    faiss: object
    lexical: Lexical
    sentences: list[tuple[str, int, int]]
    sentence_vectors: np.ndarray
    vectors: np.ndarray | None = None

    def __post_init__(self):
        self._by_doc: dict[str, tuple[list[int], list[int]]] = {}
        for row, (doc_id, s, _e) in enumerate(self.sentences):
            starts, rows = self._by_doc.setdefault(doc_id, ([], []))
            starts.append(s)
            rows.append(row)

    def chunk_sentence_max(self, sentence_scores: np.ndarray) -> np.ndarray:
        """Per chunk, the best score among the sentences it overlaps."""
        if not hasattr(self, "_chunk_rows"):
            pairs = [(ci, r) for ci, c in enumerate(self.chunks) for r in self.sentences_in(c.doc_id, c.start, c.end)]
            self._chunk_rows = (np.array([p[0] for p in pairs], dtype="int64"), np.array([p[1] for p in pairs], dtype="int64"))
        chunk_ids, rows = self._chunk_rows
        out = np.full(len(self.chunks), -1.0, dtype="float32")
        np.maximum.at(out, chunk_ids, np.where(self.heading_mask[rows], -1.0, sentence_scores[rows]))
        return out

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
        for (doc_id, s, e), vec in zip(self.sentences, self.sentence_vectors):  # empty if not indexed
            cache[content_hash(model, self.documents[doc_id].text[s:e])] = vec
        return cache


def is_heading(text: str) -> bool:
    """A short line without final punctuation ("The Authors"); a byline ("By ...") is content."""
    text = text.strip()
    if text.lower().startswith("by "):
        return False
    return len(text.split()) <= 6 and not text.endswith((".", "?", "!", "\u201d", '"'))


def open_index(settings: Settings, load_vectors: bool = False) -> Index:
    """Load index_dir/current; any damage becomes one RagError line naming the fix."""
    root = Path(settings.index_dir)
    path = root / CURRENT
    if not path.exists():
        raise RagError(f"no index in {root}/; run `rag index` first")
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or "format_version" not in manifest:
            raise ValueError("manifest has no format_version")
    except (OSError, ValueError) as e:
        raise RagError(f"{root}/ manifest is missing or unreadable ({_why(e)}); {REBUILD}") from None
    if manifest["format_version"] != FORMAT_VERSION:
        raise RagError(f"{root}/ has index format {manifest['format_version']}, this version reads "
                       f"{FORMAT_VERSION}; {REBUILD}")
    check_compatible(manifest, settings, root)
    try:
        return _load(path, manifest, load_vectors)
    except RagError:
        raise
    except Exception as e:  # truncated or edited files: never serve from a damaged index
        raise RagError(f"{root}/ is damaged ({_why(e)}); {REBUILD}") from None


def _why(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:120]}" if str(e) else type(e).__name__


def _load(path: Path, manifest: dict, load_vectors: bool) -> Index:
    documents = {}
    with open(path / "documents.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            documents[d["id"]] = Document(d["id"], d["title"], d["text"], d.get("metadata") or {})
    chunks, keys = [], []
    with open(path / "chunks.jsonl", encoding="utf-8") as f:
        for line in f:
            doc_id, start, end, section, page, key = json.loads(line)
            doc = documents[doc_id]
            chunks.append(Chunk(doc_id, start, end, doc.text[start:end], doc.title, section, page))
            keys.append(key)
    with open(path / "sentences.jsonl", encoding="utf-8") as f:
        sentences = [tuple(json.loads(line)) for line in f]
    sent_vectors = np.load(path / "sentences.npy")
    index = read_faiss(path / "vectors.faiss")
    n, dim = manifest["count"], manifest["dim"]
    problems = []
    if index.ntotal != n or len(chunks) != n:
        problems.append(f"{index.ntotal} vectors, {len(chunks)} chunks, manifest says {n}")
    if index.d != dim:
        problems.append(f"vector dim {index.d}, manifest says {dim}")
    if len(sent_vectors) and sent_vectors.shape != (len(sentences), dim):
        problems.append(f"{sent_vectors.shape[0]} sentence vectors for {len(sentences)} sentences")
    if set(documents) != {d["id"] for d in manifest["documents"]}:
        problems.append("document store and manifest list different documents")
    if problems:
        raise RagError(f"{path.parent}/ is out of step: {'; '.join(problems)}; {REBUILD}")
    vectors = np.load(path / "vectors.npy") if load_vectors else None
    return Index(path.resolve(), manifest, documents, chunks, keys, index,
                 Lexical(path / "bm25", n), sentences, sent_vectors, vectors)


def read_faiss(path: Path):
    import_torch_first()
    import faiss

    try:  # memory-mapped where the index type allows it, so large indexes open fast
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:
        return faiss.read_index(str(path))
