"""Rank chunks for a question: dense (the vector store), BM25, or both fused by reciprocal rank,
plus a sentence-level dense ranking of the candidates; near-duplicates collapsed, touching
chunks merged."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .embed import Embedder
from .store import Index
from .types import Chunk, Hit

DEPTH = 100  # candidates taken from each retriever before fusion
EXACT_LIMIT = 100_000  # a filter allowing at most this many chunks may score them exactly
OVERFETCH_LIMIT = 16_384  # the most rows a store without subset search is asked for (Milvus' top-k limit)


def search(index: Index, embedder: Embedder, question: str, k: int = 5, mode: str = "hybrid",
           rrf_k: int = 20, dedup_threshold: float = 0.95, query_vector: np.ndarray | None = None,
           bm25_weight: float = 2.0, merge_adjacent: bool = True, trace: dict | None = None) -> list[Hit]:
    """Top-k hits, best first, with near-duplicate passages collapsed. A `trace` dict is filled with
    each ranking, the fused order and what was collapsed or merged (for `rag ask --explain`)."""
    n = len(index.chunks)
    allowed = getattr(index, "allowed", None)  # a metadata filter's chunk mask (rag.filters.restrict)
    n_ok = n if allowed is None else int(allowed.sum())
    if n_ok == 0 or not question.strip():
        return []
    depth = min(n_ok, max(DEPTH, 4 * k))
    dense: dict[int, float] = {}
    sentence: dict[int, float] = {}
    lexical: dict[int, float] = {}
    if mode in ("dense", "hybrid"):
        qv = embedder.embed_query(question) if query_vector is None else query_vector
        rows, scores = dense_search(index.searcher, np.asarray(qv, dtype="float32"), depth, allowed)
        dense = {int(i): float(s) for i, s in zip(rows, scores) if i >= 0}
    if mode in ("bm25", "hybrid"):
        all_scores = index.lexical.scores(question)
        if allowed is not None:
            all_scores = np.where(allowed, all_scores, 0.0)
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
    order = sorted(sorted(fused), key=fused.__getitem__, reverse=True)  # best first, ties by row (stable sort)
    if trace is not None:
        trace.update(dense=dense, bm25=lexical, sentence=sentence, fused=order, collapsed=[], merged=[])
    return _collapse(index, order, fused, dense, lexical, k, dedup_threshold, merge_adjacent, trace)


def dense_search(searcher, qv: np.ndarray, depth: int, allowed: np.ndarray | None = None):
    """(rows, scores) of the `depth` nearest chunks among the allowed ones. A store that can search
    a subset (FAISS: an ID selector) does; any other is asked for more until enough allowed rows came.
    Either way, when that comes back short, up to EXACT_LIMIT allowed rows are scored exactly."""
    if allowed is None:
        rows, scores = searcher.search(qv[None, :], depth)
        return rows[0], scores[0]
    ids = np.flatnonzero(allowed)
    want = min(depth, len(ids))
    if getattr(searcher, "searches_subsets", False):
        rows, scores = searcher.search(qv[None, :], depth, allowed=ids)
        rows, scores = rows[0][rows[0] >= 0], scores[0][rows[0] >= 0]
    else:
        fetch = depth
        while True:
            rows, scores = searcher.search(qv[None, :], min(fetch, searcher.count))
            ok = (rows[0] >= 0) & allowed[np.maximum(rows[0], 0)]
            rows, scores = rows[0][ok][:depth], scores[0][ok][:depth]
            if len(rows) >= want or fetch >= min(searcher.count, OVERFETCH_LIMIT):
                break
            fetch *= 4
    # an approximate index (HNSW) misses allowed rows when few are allowed; over-fetching can stop short
    if len(rows) >= want or len(ids) > EXACT_LIMIT:
        return rows, scores
    vecs = searcher.vectors(ids)
    if vecs is None:
        return rows, scores
    exact = np.asarray(vecs, dtype="float32") @ qv
    top = np.argsort(-exact, kind="stable")[:depth]
    return ids[top], exact[top]


def _collapse(index: Index, order: list[int], fused: dict, dense: dict, lexical: dict, k: int,
              dedup_threshold: float, merge_adjacent: bool, trace: dict | None = None) -> list[Hit]:
    """Walk the fused order into k hits: drop near-duplicates of better passages, merge touching
    chunks. Candidate vectors are fetched from the store a window at a time, never one by one."""
    hits: list[Hit] = []
    kept_vecs, by_doc, vecs = [], {}, {}
    window = max(16, 2 * k)
    dedup = dedup_threshold < 1  # no dedup: no vectors fetched at all
    for pos, i in enumerate(order):
        if len(hits) == k:
            break
        if dedup and i not in vecs:
            rows = order[pos:pos + window]
            got = index.searcher.vectors(rows)
            if got is None:  # a store that cannot give vectors back: no de-duplication
                dedup = False
            else:
                vecs.update(zip(rows, got))
        vec = vecs.get(i) if dedup else None
        if vec is not None and any(float(vec @ v) >= dedup_threshold for v in kept_vecs):
            if trace is not None:
                trace["collapsed"].append(i)
            continue  # a near-duplicate of a better passage adds nothing
        chunk = index.chunks[i]
        if merge_adjacent:
            j = next((j for j in by_doc.get(chunk.doc_id, ()) if _touches(hits[j].chunk, chunk)), None)
            if j is not None:  # one continuous passage reads better than two overlapping ones
                hits[j] = replace(hits[j], chunk=_merge(index, hits[j].chunk, chunk))
                if trace is not None:
                    trace["merged"].append((i, j + 1))
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


def rrf(rankings: list[dict[int, float]], k: int = 60, weights: list[float] | None = None) -> dict[int, float]:
    """Weighted reciprocal-rank fusion: sum of w/(k + rank) over the rankings that hold an item."""
    fused: dict[int, float] = {}
    for scores, w in zip(rankings, weights or [1.0] * len(rankings)):
        for rank, i in enumerate(sorted(scores, key=scores.__getitem__, reverse=True), start=1):  # stable, as -score
            fused[i] = fused.get(i, 0.0) + w / (k + rank)
    return fused


# ---- sentence-level ranking of the candidates

def sentence_ranking(index: Index, qv: np.ndarray, candidates: list[int]) -> dict[int, float]:
    """The candidates re-scored by their best-matching sentence: a focused dense signal that a
    long chunk's single vector blurs. Only when sentence vectors were stored at index time."""
    if not len(index.sentence_vectors) or not candidates:
        return {}
    best = chunk_sentence_best(index, qv, candidates)
    return {i: float(b) for i, b in zip(candidates, best) if b > -1}


def chunk_sentence_best(index: Index, qv: np.ndarray, chunk_ids) -> np.ndarray:
    """For each given chunk, the best cosine between qv and the stored vectors of the
    (non-heading) sentences it overlaps; -1 where it has none. Only those sentences are
    read, so the cost follows the candidates, not the corpus."""
    offsets, rows = _chunk_rows(index)
    ids = np.asarray(chunk_ids, dtype="int64")
    starts, counts = offsets[ids], offsets[ids + 1] - offsets[ids]
    out = np.full(len(ids), -1.0, dtype="float32")
    total = int(counts.sum())
    if not total or not len(index.sentence_vectors):
        return out
    seg = np.cumsum(counts) - counts  # where each chunk's run starts in the gathered rows
    picked = rows[np.arange(total) - np.repeat(seg, counts) + np.repeat(starts, counts)]
    scores = _rows_dot(index.sentence_vectors, picked, np.asarray(qv, dtype="float32"))
    scores[heading_mask(index, picked)] = -1.0
    some = counts > 0
    out[some] = np.maximum.reduceat(scores, seg[some])
    return out


def _rows_dot(vectors, rows: np.ndarray, qv: np.ndarray) -> np.ndarray:
    """vectors[rows] @ qv; int8 sentence rows (store.QuantizedRows) are scaled after the product."""
    dot = getattr(vectors, "dot_rows", None)  # store.QuantizedRows; a float32 array (older indexes) has none
    return dot(rows, qv) if dot is not None else vectors[rows] @ qv


def _chunk_rows(index: Index) -> tuple[np.ndarray, np.ndarray]:
    """CSR layout, worked out once per index: chunk c overlaps sentence rows rows[offsets[c]:offsets[c + 1]]."""
    if "chunk_rows" not in index.derived:
        spans = _overlapping_runs(index)
        if spans is None:  # sentences not stored in document order: ask the index chunk by chunk
            per_chunk = [index.sentences_in(c.doc_id, c.start, c.end) for c in index.chunks]
            offsets = np.zeros(len(per_chunk) + 1, dtype="int64")
            offsets[1:] = np.cumsum([len(r) for r in per_chunk])
            rows = np.fromiter((r for rs in per_chunk for r in rs), dtype="int64", count=int(offsets[-1]))
        else:
            lo, hi = spans
            offsets = np.zeros(len(lo) + 1, dtype="int64")
            offsets[1:] = np.cumsum(hi - lo)
            rows = np.arange(int(offsets[-1]), dtype="int64") + np.repeat(lo - offsets[:-1], hi - lo)
        index.derived["chunk_rows"] = (offsets, rows)
    return index.derived["chunk_rows"]


def _overlapping_runs(index: Index) -> tuple[np.ndarray, np.ndarray] | None:
    """For each chunk, the run lo..hi of sentence rows it overlaps, found with two binary searches
    over all sentences at once (one `sentences_in` call per chunk took 0.1 s of a cold start on
    SciFact). Needs the rows as every build writes them: grouped by document, in text order."""
    ordinal: dict[str, int] = {}
    doc = np.fromiter((ordinal.setdefault(d, len(ordinal)) for d, _, _ in index.sentences), "int64",
                      count=len(index.sentences))
    starts = np.fromiter((s for _, s, _ in index.sentences), "int64", count=len(index.sentences))
    ends = np.fromiter((e for _, _, e in index.sentences), "int64", count=len(index.sentences))
    width = int(max(ends.max(initial=0), max((c.end for c in index.chunks), default=0))) + 1
    key_start, key_end = doc * width + starts, doc * width + ends
    if np.any(np.diff(key_start) <= 0) or np.any(np.diff(key_end) <= 0) or np.any(ends <= starts):
        return None
    c_doc = np.fromiter((ordinal.get(c.doc_id, -1) for c in index.chunks), "int64", count=len(index.chunks))
    c_start = np.fromiter((c.start for c in index.chunks), "int64", count=len(index.chunks))
    c_end = np.fromiter((c.end for c in index.chunks), "int64", count=len(index.chunks))
    lo = np.searchsorted(key_end, c_doc * width + c_start, side="right")  # first sentence ending after the start
    hi = np.searchsorted(key_start, c_doc * width + c_end, side="left")  # first sentence starting at/after the end
    hi = np.where(c_doc < 0, lo, np.maximum(hi, lo))
    return lo, hi


def heading_mask(index: Index, rows) -> np.ndarray:
    """True for the heading-like rows among these sentence rows (a title line matches everything and
    answers nothing); each row is looked at once, when first asked for (all 45k SciFact sentences
    at once cost 0.15 s of a cold start)."""
    known = index.derived.get("headings")
    if known is None:
        known = index.derived["headings"] = np.full(len(index.sentences), -1, dtype="int8")
    rows = np.asarray(rows, dtype="int64")
    for r in np.unique(rows[known[rows] < 0]):
        known[r] = is_heading(index.sentence_text(int(r)))
    return known[rows] > 0


def is_heading(text: str) -> bool:
    """A short line without final punctuation ("The Authors"); a byline ("By ...") is content."""
    text = text.strip()
    if text.lower().startswith("by "):
        return False
    return len(text.split()) <= 6 and not text.endswith((".", "?", "!", "\u201d", '"'))
