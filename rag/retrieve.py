"""Rank chunks for a question: dense (FAISS), BM25, or both fused by reciprocal rank."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .embed import Embedder
from .store import Index
from .types import Chunk, Hit

DEPTH = 100  # candidates taken from each retriever before fusion


def search(index: Index, embedder: Embedder, question: str, k: int = 5, mode: str = "hybrid",
           rrf_k: int = 20, dedup_threshold: float = 0.95, query_vector: np.ndarray | None = None,
           bm25_weight: float = 2.0, merge_adjacent: bool = True) -> list[Hit]:
    """Top-k hits, best first, with near-duplicate passages collapsed."""
    n = len(index.chunks)
    if n == 0 or not question.strip():
        return []
    depth = min(n, max(DEPTH, 4 * k))
    dense: dict[int, float] = {}
    sentence: dict[int, float] = {}
    lexical: dict[int, float] = {}
    if mode in ("dense", "hybrid"):
        qv = embedder.embed_query(question) if query_vector is None else query_vector
        scores, ids = _search_one(index.searcher, qv, depth)
        dense = {int(i): float(s) for i, s in zip(ids[0], scores[0]) if i >= 0}
    if mode in ("bm25", "hybrid"):
        all_scores = index.lexical.scores(question)
        top = np.argpartition(-all_scores, depth - 1)[:depth] if depth < n else np.arange(n)
        lexical = {int(i): float(all_scores[i]) for i in top if all_scores[i] > 0}
    if mode == "hybrid":
        sentence = sentence_ranking(index, qv, sorted(dense.keys() | lexical.keys()))
    if mode == "dense":
        fused = dense
    elif mode == "bm25":
        fused = lexical
    else:
        fused = rrf([dense, lexical, sentence], rrf_k, [1.0, bm25_weight, 1.0])
    order = sorted(fused, key=lambda i: (-fused[i], i))
    hits: list[Hit] = []
    kept_vecs, by_doc = [], {}
    for i in order:
        if len(hits) == k:
            break
        vec = _vector(index, i) if dedup_threshold < 1 else None  # no dedup: skip the reconstruct
        if vec is not None and any(float(vec @ v) >= dedup_threshold for v in kept_vecs):
            continue  # a near-duplicate of a better passage adds nothing
        chunk = index.chunks[i]
        if merge_adjacent:
            j = next((j for j in by_doc.get(chunk.doc_id, ()) if _touches(hits[j].chunk, chunk)), None)
            if j is not None:  # one continuous passage reads better than two overlapping ones
                hits[j] = replace(hits[j], chunk=_merge(index, hits[j].chunk, chunk))
                continue
        if vec is not None:
            kept_vecs.append(vec)
        by_doc.setdefault(chunk.doc_id, []).append(len(hits))
        hits.append(Hit(chunk, fused[i], len(hits) + 1, dense.get(i), lexical.get(i)))
    return hits


def _touches(a: Chunk, b: Chunk) -> bool:
    return a.doc_id == b.doc_id and a.start <= b.end + 2 and b.start <= a.end + 2


def _merge(index: Index, a: Chunk, b: Chunk) -> Chunk:
    start, end = min(a.start, b.start), max(a.end, b.end)
    text = index.documents[a.doc_id].text[start:end]
    first = a if a.start <= b.start else b
    return replace(first, start=start, end=end, text=text)


def sentence_ranking(index: Index, qv: np.ndarray, candidates: list[int]) -> dict[int, float]:
    """The candidates re-scored by their best-matching sentence: a focused dense signal that a
    long chunk's single vector blurs. Only when sentence vectors were stored at index time."""
    if not len(index.sentence_vectors) or not candidates:
        return {}
    best = index.chunk_sentence_best(qv, candidates)
    return {i: float(b) for i, b in zip(candidates, best) if b > -1}


def rrf(rankings: list[dict[int, float]], k: int = 60, weights: list[float] | None = None) -> dict[int, float]:
    """Weighted reciprocal-rank fusion: sum of w/(k + rank) over the rankings that hold an item."""
    fused: dict[int, float] = {}
    for scores, w in zip(rankings, weights or [1.0] * len(rankings)):
        for rank, i in enumerate(sorted(scores, key=lambda j: -scores[j]), start=1):
            fused[i] = fused.get(i, 0.0) + w / (k + rank)
    return fused


def _search_one(faiss_index, qv: np.ndarray, depth: int):
    """One query on one OpenMP thread: a thread team saves nothing on a single vector and
    stalls whenever another process holds a core (21 ms vs 6 ms on the SciFact index, loaded
    machine). The setting is per calling thread, so concurrent requests do not race on it."""
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return faiss_index.search(np.asarray(qv, dtype="float32")[None, :], depth)
    finally:
        faiss.omp_set_num_threads(previous)


def _vector(index: Index, i: int):
    try:
        return index.searcher.reconstruct(i)
    except RuntimeError:
        return None
