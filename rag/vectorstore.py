"""Where chunk vectors are kept and searched, behind one small interface.

A `VectorStore` adds a version's vectors, opens them for search and prunes rows no version
needs; the `VectorIndex` it opens answers `search` and gives stored vectors back by row, many
in one call. Nothing outside this module and `rag.milvus` knows which store is in use:

    faiss                            vectors.faiss in index/current/ (default, this module)
    milvus://index/milvus.db         Milvus Lite: in-process, a local path ending in .db (rag.milvus)
    milvus://milvus.example:19530    a Milvus standalone or cluster (rag.milvus)

Rows are the positions of a version's chunks; stores that keep rows across versions (Milvus)
key them by `row_ids`, a stable id per chunk (document, span, embedded-text hash).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .types import content_hash

ID_SPACE = 1 << 60  # ids are the first 60 bits of a chunk row's hash: positive int64
ANN_RECALL = 0.95  # recall@10 against exact search an approximate index must keep
EF_SEARCH = (16, 32, 64, 128, 256, 512)  # tried in order; the first to reach ANN_RECALL is stored


class VectorIndex(Protocol):
    """One version's vectors, open for search."""

    count: int  # searchable rows
    dim: int

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores), each [len(queries), k], best first; rows index the version's chunks, -1 pads.
        An index with `searches_subsets = True` also takes `allowed=` (rows it may return: filters)."""

    def vectors(self, rows: Sequence[int]) -> np.ndarray | None:
        """The stored vectors of these rows, in one call; None if this index cannot give them back."""


class VectorStore(Protocol):
    """Where a build puts a version's vectors and where serving opens them."""

    kind: str  # recorded in the manifest: an index is served only by the kind it was built for
    label: str  # how messages name the place ("vectors.faiss", "the Milvus collection")
    # True: the version directory's own file gives every vector back (`stored_vectors`), so the
    # build does not also write vectors.npy (which only the next build reads, to reuse vectors)
    keeps_vectors: bool

    def add(self, version: Path, vectors: np.ndarray, ids: np.ndarray, doc_ids: list[str], log=print) -> dict:
        """Store this version's vectors (rows keyed by `ids`); returns what the manifest records."""

    def open(self, version: Path, manifest: dict, ids: np.ndarray) -> VectorIndex: ...

    def prune(self, keep: np.ndarray) -> None:
        """Delete rows no version needs any more; called once a new version is live."""


def row_ids(chunk_rows) -> np.ndarray:
    """A stable id per (doc_id, start, end, embedded-text key) chunk row."""
    return np.fromiter((int(content_hash(d, str(s), str(e), k)[:15], 16) for d, s, e, k in chunk_rows),
                       dtype="int64", count=len(chunk_rows))


class FaissStore:
    """vectors.faiss inside each version directory; old versions go with their directories."""

    kind = "faiss"
    label = "vectors.faiss"
    keeps_vectors = True

    def __init__(self, flat_threshold: int = 200_000):
        self.flat_threshold = flat_threshold

    def add(self, version: Path, vectors: np.ndarray, ids: np.ndarray, doc_ids: list[str], log=print) -> dict:
        _, info = write_faiss(vectors, version / "vectors.faiss", self.flat_threshold, log)
        return info

    def open(self, version: Path, manifest: dict, ids: np.ndarray) -> FaissIndex:
        return FaissIndex(read_faiss(version / "vectors.faiss"))

    def prune(self, keep: np.ndarray) -> None:
        """Old versions are whole directories, swept by the build."""


class FaissIndex:
    searches_subsets = True  # search(..., allowed=rows): an ID selector, so a filter never cuts k short

    def __init__(self, index):
        self.index = index
        self.count, self.dim = int(index.ntotal), int(index.d)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A single query runs on one OpenMP thread: a thread team saves nothing on one vector and
        stalls whenever another process holds a core (21 ms vs 6 ms on the SciFact index, loaded
        machine). The setting is per calling thread, so concurrent requests do not race on it."""
        import faiss

        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype="float32")
        previous = faiss.omp_get_max_threads()
        if len(queries) == 1:
            faiss.omp_set_num_threads(1)
        try:
            if allowed is None:
                scores, rows = self.index.search(queries, k)
            else:
                scores, rows = self.index.search(queries, k, params=_selector(self.index, allowed))
        finally:
            faiss.omp_set_num_threads(previous)
        return rows, scores

    def vectors(self, rows: Sequence[int]) -> np.ndarray | None:
        rows = np.asarray(rows, dtype="int64")
        try:
            return self.index.reconstruct_batch(rows) if len(rows) else np.zeros((0, self.dim), "float32")
        except RuntimeError:  # an index type that cannot give vectors back
            return None


def _selector(index, allowed: np.ndarray):
    import faiss

    sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype="int64"))
    if hasattr(index, "hnsw"):
        return faiss.SearchParametersHNSW(sel=sel, efSearch=index.hnsw.efSearch)
    return faiss.SearchParameters(sel=sel)


def write_faiss(vectors: np.ndarray, path: Path, flat_threshold: int, log=print):
    """Exact IndexFlatIP up to flat_threshold vectors; above, HNSW with the smallest efSearch
    that keeps recall@10 >= ANN_RECALL on these vectors, or exact search if none does.
    Returns the index and what was chosen (kept in the manifest)."""
    # No import_torch_first here either: a build that embeds with torch has imported it by now, and
    # one on OpenVINO (rag/onnx_embed.py) needs no torch at all (~400 MB less at its peak).
    import faiss

    dim = vectors.shape[1]
    info: dict = {"type": "flat"}
    index = None
    if len(vectors) > flat_threshold:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.add(vectors)
        ef, recall = tune_ef_search(index, vectors)
        if ef is None:
            log(f"HNSW reached recall@10 {recall:.3f} < {ANN_RECALL} at efSearch {EF_SEARCH[-1]} on these "
                f"vectors; keeping exact search")
            info = {"type": "flat", "hnsw_recall_at_10": round(recall, 4)}
            index = None
        else:
            index.hnsw.efSearch = ef
            info = {"type": "hnsw", "M": 32, "ef_construction": 80, "ef_search": ef, "recall_at_10": round(recall, 4)}
    if index is None:
        index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(vectors)
    faiss.write_index(index, str(path))
    return index, info


def read_faiss(path: Path):
    # No import_torch_first here: the question path runs without torch (rag/onnx_embed.py), and a
    # process that builds later (the app's uploads) imports torch first in Rag.warm_up.
    import faiss

    # Memory-mapped in place where this FAISS has IO_FLAG_MMAP_IFC: a 1M-vector flat index opens
    # in ~0 s with no anonymous memory (IO_FLAG_MMAP still copies flat and HNSW data; bench/scale.py).
    flag = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP) | faiss.IO_FLAG_READ_ONLY
    try:
        return faiss.read_index(str(path), flag)
    except RuntimeError:
        return faiss.read_index(str(path))


def stored_vectors(version: Path) -> np.ndarray:
    """Every chunk vector of a version, in row order: vectors.npy where the build wrote one
    (a Milvus-backed version), else read back from vectors.faiss (flat and HNSW keep them whole)."""
    if (version / "vectors.npy").exists():
        return np.load(version / "vectors.npy")
    index = read_faiss(version / "vectors.faiss")
    return index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), "float32")


def tune_ef_search(index, vectors: np.ndarray, n_queries: int = 200, seed: int = 0) -> tuple[int | None, float]:
    """The smallest efSearch in EF_SEARCH whose recall@10 against exact search reaches
    ANN_RECALL, and that recall (None and the best recall if none does). The probe queries
    are stored vectors moved to cosine ~0.7 by random noise: near the data, as questions are
    near their passages, but not in the index."""
    import faiss

    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), min(n_queries, len(vectors)), replace=False)
    noise = rng.standard_normal((len(rows), vectors.shape[1])).astype("float32")
    q = vectors[rows] + noise / np.linalg.norm(noise, axis=1, keepdims=True)
    q = np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), dtype="float32")
    _, truth = faiss.knn(q, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    recall = 0.0
    for ef in EF_SEARCH:
        index.hnsw.efSearch = ef
        _, found = index.search(q, 10)
        recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
        if recall >= ANN_RECALL:
            return ef, recall
    return None, recall
