"""Several collections searched as one: each collection's vectors and BM25 are searched in its own
index, and the rankings meet in one `Index` whose documents are named `collection:doc_id`, so
retrieval (the same weighted RRF), the reader and the citation checks run on it unchanged. At the
edge (`tag`) every hit and citation gets its plain doc_id back and the name of its collection.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .store import Index
from .types import Answer, Hit

SEP = ":"  # collection names have no ":", so the first one splits a qualified id


def qualify(name: str, doc_id: str) -> str:
    return f"{name}{SEP}{doc_id}"


def split(qualified: str) -> tuple[str, str]:
    name, _, doc_id = qualified.partition(SEP)
    return name, doc_id


class MergedSearcher:
    """The parts' vector indexes as one: each searched on its own, results merged by cosine (one model)."""

    searches_subsets = True

    def __init__(self, parts: list[tuple[int, object]]):
        self.parts = parts  # (first row, VectorIndex)
        self.count = sum(s.count for _, s in parts)
        self.dim = parts[0][1].dim

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None):
        from .retrieve import dense_search

        out = []
        for qv in np.atleast_2d(queries):
            found = []
            for off, s in self.parts:
                mask = None if allowed is None else _part_mask(allowed, off, s.count, self.count)
                if s.count == 0 or (mask is not None and not mask.any()):
                    continue
                depth = min(k, s.count if mask is None else int(mask.sum()))
                rows, scores = dense_search(s, qv, depth, mask)
                found += [(float(sc), int(r) + off) for r, sc in zip(rows, scores) if r >= 0]
            found.sort(key=lambda x: -x[0])
            found = found[:k] + [(-np.inf, -1)] * (k - len(found[:k]))
            out.append(found)
        rows = np.array([[r for _, r in f] for f in out], dtype="int64")
        return rows, np.array([[sc for sc, _ in f] for f in out], dtype="float32")

    def vectors(self, rows):
        rows = np.asarray(rows, dtype="int64")
        out = np.zeros((len(rows), self.dim), dtype="float32")
        for off, s in self.parts:
            pick = (rows >= off) & (rows < off + s.count)
            if pick.any():
                got = s.vectors(rows[pick] - off)
                if got is None:
                    return None
                out[pick] = got
        return out


def _part_mask(allowed: np.ndarray, off: int, count: int, total: int) -> np.ndarray:
    if len(allowed) == total and allowed.dtype == bool:
        return allowed[off:off + count]
    mask = np.zeros(count, dtype=bool)  # given as rows (searcher.search(..., allowed=rows))
    rows = np.asarray(allowed, dtype="int64")
    mask[rows[(rows >= off) & (rows < off + count)] - off] = True
    return mask


class MergedLexical:
    """BM25 per collection (its own statistics), scores side by side; word statistics summed."""

    def __init__(self, parts: list):
        self.parts = parts
        self.n = sum(p.n for p in parts)

    def scores(self, query: str) -> np.ndarray:
        return np.concatenate([p.scores(query) for p in self.parts]) if self.parts else np.zeros(0, "float32")

    def df(self, term: str) -> int:
        return sum(p.df(term) for p in self.parts)

    def idf(self, term: str) -> float:
        return float(np.log1p(max(1, self.n) / max(self.df(term), 0.5)))

    def knows(self, term: str) -> bool:
        return any(p.knows(term) for p in self.parts)


def merge(named: list[tuple[str, Index]]) -> Index:
    """One Index over several collections' indexes (built with the same settings: check that first)."""
    documents, chunks, keys, sentences, sent_keys, searchers, parts = {}, [], [], [], [], [], []
    for name, ix in named:
        parts.append((name, ix, len(chunks)))
        searchers.append((len(chunks), ix.searcher))
        for doc in ix.documents.values():
            documents[qualify(name, doc.id)] = replace(doc, id=qualify(name, doc.id))
        chunks += [replace(c, doc_id=qualify(name, c.doc_id)) for c in ix.chunks]
        keys += ix.chunk_keys
        sentences += [(qualify(name, d), s, e) for d, s, e in ix.sentences]
        sent_keys += ix.sentence_keys or [None] * len(ix.sentences)
    vecs = [ix.sentence_vectors for _, ix in named]
    sent_vectors = np.concatenate(vecs) if all(len(v) for v in vecs) else np.zeros((0, named[0][1].manifest["dim"]),
                                                                                 "float32")
    first = named[0][1]
    index = Index(first.path, dict(first.manifest, collections=[n for n, _ in named]), documents, chunks, keys,
                  MergedSearcher(searchers), MergedLexical([ix.lexical for _, ix in named]), sentences,
                  sent_vectors, None, sent_keys)
    index.derived["parts"] = parts
    return index


def open_merged(parts: list, store=None) -> Index:
    """The indexes of several collections (their Settings, from `collections.settings_for`) as one."""
    from pathlib import Path

    from .collections import check_compatible
    from .errors import RagError
    from .manifest import read_manifest
    from .store import open_index

    manifests = {}
    for s in parts:  # compared with each other first: that message names both collections
        try:
            manifests[s.collection] = read_manifest(Path(s.index_dir), (Path(s.index_dir) / "current").resolve())
        except RagError:
            pass  # open_index says what is wrong with it
    check_compatible(manifests)
    return merge([(s.collection, open_index(s, store=store)) for s in parts])


def tag(answer: Answer | list[Hit], name: str | None):
    """Hits and citations named by their collection: `name` for one collection, else taken from the
    qualified ids of a merged index (which get their plain doc_id back)."""
    if isinstance(answer, list):
        return [_tag_hit(h, name) for h in answer]
    citations = []
    for c in answer.citations:
        coll, doc_id = (name, c.doc_id) if name else split(c.doc_id)
        citations.append(replace(c, doc_id=doc_id, collection=coll))
    span = answer.short_answer_span
    if span and not name:
        span = (split(span[0])[1], *span[1:])
    return replace(answer, citations=tuple(citations), hits=tuple(_tag_hit(h, name) for h in answer.hits),
                   short_answer_span=span)


def _tag_hit(hit: Hit, name: str | None) -> Hit:
    if name:
        return replace(hit, collection=name)
    coll, doc_id = split(hit.chunk.doc_id)
    return replace(hit, chunk=replace(hit.chunk, doc_id=doc_id), collection=coll)
