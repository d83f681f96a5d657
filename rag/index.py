"""Build or incrementally update the index: load -> chunk -> embed (only what is new) -> write a
version (vectors to the vector store, BM25, chunk and sentence stores, manifest) -> swap it in.
What a version on disk is, and the swap itself, live in `rag.manifest`.
"""

from __future__ import annotations

import bisect
import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import lexical, manifest, versions
from .chunk import chunk_document, check_budget, embed_text, load_tokenizer, split_sentences
from .config import Settings
from .embed import Embedder, model_dir
from .model import release_memory
from .errors import RagError
from .load import Skipped, load_corpus
from .store import Index, open_index, save_array, save_sentence_vectors, vector_store
from .types import Chunk, Document, content_hash
from .vectorstore import VectorStore, row_ids


@dataclass
class Report:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    embedded: int = 0  # texts actually sent through the model
    chunks: int = 0
    seconds: float = 0.0

    @property
    def changed_anything(self) -> bool:
        return bool(self.added or self.changed or self.deleted)


def build(settings: Settings, embedder: Embedder, rebuild: bool = False, log=print,
          store: VectorStore | None = None) -> Report:
    """Index corpus_dir into index_dir, embedding only new or changed documents."""
    started = time.perf_counter()
    index_dir = Path(settings.index_dir)
    store = store or vector_store(settings)
    versions.check_dirs(Path(settings.corpus_dir), index_dir)
    try:
        with versions.locked(index_dir):
            return _build(settings, embedder, rebuild, log, store, index_dir, started)
    except OSError as e:  # a full disk, a read-only or immutable index dir: one line, nothing lost
        raise RagError(versions.write_error(e, index_dir)) from None


def _build(settings: Settings, embedder: Embedder, rebuild: bool, log, store: VectorStore, index_dir: Path,
           started: float) -> Report:
    ident = versions.index_id(index_dir)
    versions.adopt_current(index_dir, ident)
    versions.sweep(index_dir, ident)
    docs, skipped = load_corpus(Path(settings.corpus_dir), max_doc_chars=settings.max_doc_chars)
    report = Report(skipped=skipped)
    tokenizer = load_tokenizer(str(model_dir(settings.model)))
    check_budget(tokenizer, settings.chunk_size, settings.embed_titles)
    old = None if rebuild else _open_previous(settings, store)
    old_docs = {d["id"]: d for d in old.manifest["documents"]} if old else {}
    new_ids = {d.id for d in docs}
    report.deleted = sorted(set(old_docs) - new_ids)
    for doc in docs:
        prev = old_docs.get(doc.id)
        bucket = report.added if prev is None else report.unchanged if prev["hash"] == doc.hash else report.changed
        bucket.append(doc.id)
    moved = old is not None and bool(manifest.differing_params(old.manifest, settings, store.kind).keys()
                                     & set(manifest.UPDATED_BY_BUILD))
    if old is not None and not report.changed_anything and not moved:
        report.chunks = len(old.chunks)
        report.seconds = time.perf_counter() - started
        return report

    chunks, texts, keys, spans, sents, sent_texts, sent_keys, kept = [], [], [], [], [], [], [], []
    # An unchanged document (same hash, same chunking settings: check_compatible) keeps its
    # chunks, sentence spans and keys; only new and changed documents are chunked again.
    reuse = _spans_by_doc(old, set(report.unchanged)) if old else {}
    for doc in docs:
        try:
            if doc.id in reuse:
                doc_chunks, doc_keys, doc_sents, doc_sent_keys = reuse[doc.id]
            else:
                doc_chunks = chunk_document(doc, tokenizer, settings.chunk_size, settings.chunk_overlap)
                doc_sents, doc_keys, doc_sent_keys = split_sentences(doc.text), None, None
        except Exception as e:  # one file the chunker cannot handle must not stop the others
            _drop(report, doc.id, old_docs, f"could not be chunked ({type(e).__name__}: {str(e)[:100]}); "
                                            f"please report this file")
            continue
        kept.append(doc)
        doc_texts = [embed_text(c.text, c.title, c.section, tokenizer, settings.embed_titles) for c in doc_chunks]
        # the key is the vector cache's key and the chunk's key on disk
        doc_keys = doc_keys or [content_hash(settings.model, t) for t in doc_texts]
        doc_sent_texts = [doc.text[s:e] for s, e in doc_sents]
        doc_spans = [()] * len(doc_chunks)
        if settings.index_sentences and not doc_sent_keys:
            doc_spans, doc_sent_keys = _sentence_homes(doc_chunks, doc_texts, doc_keys, doc_sents,
                                                       doc_sent_texts, settings.model)
        chunks += doc_chunks
        texts += doc_texts
        keys += doc_keys
        spans += doc_spans
        sents += [(doc.id, s, e) for s, e in doc_sents]
        sent_texts += doc_sent_texts
        sent_keys += doc_sent_keys or []
    docs = kept
    if not docs:
        raise RagError(f"no indexable documents in {settings.corpus_dir}/{_skipped_note(report.skipped)}; "
                       f"add .txt, .md, .html or .pdf files")
    cache = old.vector_cache() if old else {}
    vectors, n1 = _embed_cached(embedder, texts, keys, cache, "chunks", log, spans)
    if settings.index_sentences:
        sent_vectors, n2 = _embed_cached(embedder, sent_texts, sent_keys, cache, "sentences", log, consume=True)
    else:
        sent_vectors, n2 = np.zeros((0, vectors.shape[1]), "float32"), 0
    report.embedded, report.chunks = n1 + n2, len(chunks)
    del cache  # the vectors are in the two arrays now
    release_memory()

    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    info = dict(manifest.manifest_params(settings, int(vectors.shape[1]), store.kind),
                built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                count=len(chunks), sentences=len(sents),
                documents=_doc_entries(docs, chunks, stamp, old_docs, set(report.unchanged)))
    tokens = lexical.saved_tokens(old.path / "bm25", old.chunk_keys) if old else {}
    tmp = versions.new_version_dir(index_dir, ident)
    try:
        # int8 from here on (as they load), so the float32 copy is freed before BM25 is built
        sent_vectors = save_sentence_vectors(tmp, sent_vectors)
        ids = _write(tmp, info, docs, chunks, texts, keys, vectors, sents, sent_keys, sent_vectors, store,
                     tokens, log)
    except BaseException:  # a full disk must not stay full until the next run: free it now
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    versions.publish(tmp, index_dir, stamp)
    versions.sweep(index_dir, ident)
    store.prune(ids)  # only now: until the swap the previous version's rows must stay searchable
    report.seconds = time.perf_counter() - started
    return report


def _drop(report: Report, doc_id: str, old_docs: dict, reason: str) -> None:
    for bucket in (report.added, report.changed, report.unchanged):
        if doc_id in bucket:
            bucket.remove(doc_id)
    if doc_id in old_docs:
        report.deleted = sorted({*report.deleted, doc_id})
    report.skipped.append(Skipped(doc_id, reason))


def _skipped_note(skipped: list[Skipped]) -> str:
    if not skipped:
        return ""
    shown = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:3])
    return f" ({len(skipped)} skipped: {shown}{'; ...' if len(skipped) > 3 else ''})"


def _doc_entries(docs: list[Document], chunks: list[Chunk], stamp: str, old_docs: dict,
                 unchanged: set[str]) -> list[dict]:
    """Manifest rows; chunk counts in one pass (a per-document scan is quadratic: 11 s at 5k docs)."""
    per_doc = Counter(c.doc_id for c in chunks)
    out = []
    for doc in docs:
        prev = old_docs.get(doc.id)
        indexed_at = prev["indexed_at"] if prev and doc.id in unchanged else stamp
        out.append({"id": doc.id, "title": doc.title, "hash": doc.hash, "indexed_at": indexed_at,
                    "chunks": per_doc[doc.id], "chars": len(doc.text)})
    return out


def _spans_by_doc(old, unchanged: set[str]) -> dict[str, tuple[list, list, list, list]]:
    """The previous index's chunks, chunk keys, sentence spans and sentence keys of the
    unchanged documents (sentence keys None for an index without them: they are worked out again)."""
    out: dict[str, tuple[list, list, list, list]] = {d: ([], [], [], []) for d in unchanged}
    for c, key in zip(old.chunks, old.chunk_keys):
        if c.doc_id in out:
            out[c.doc_id][0].append(c)
            out[c.doc_id][1].append(key)
    for (doc_id, s, e), key in zip(old.sentences, old.sentence_keys or [None] * len(old.sentences)):
        if doc_id in out:
            out[doc_id][2].append((s, e))
            out[doc_id][3].append(key)
    return {d: (c, k, s, sk if sk and None not in sk else None) for d, (c, k, s, sk) in out.items()}


def _sentence_homes(chunks: list[Chunk], texts: list[str], keys: list[str], sents: list[tuple[int, int]],
                    sent_texts: list[str], model: str) -> tuple[list[list], list[str]]:
    """For one document, where each sentence's vector comes from: the forward pass of the chunk
    that holds it whole with the most context on its shorter side (late chunking), as a
    (start, end, key) span of that chunk's embedded text; a sentence no chunk holds whole (at a
    hard split) is embedded on its own. Returns the spans per chunk and the sentences' cache keys."""
    starts = [c.start for c in chunks]
    spans: list[list] = [[] for _ in chunks]
    sent_keys = []
    for (s, e), text in zip(sents, sent_texts):
        j, home, room = bisect.bisect_right(starts, s) - 1, -1, -1
        for i in range(max(0, j - 8), j + 1):  # chunks overlap a few neighbours at most
            c = chunks[i]
            if c.start <= s and e <= c.end and min(s - c.start, c.end - e) > room:
                home, room = i, min(s - c.start, c.end - e)
        if home < 0:
            sent_keys.append(content_hash(model, text))
            continue
        shift = len(texts[home]) - len(chunks[home].text) - chunks[home].start  # the title prefix
        a, b = s + shift, e + shift
        sent_keys.append(content_hash(model, "late", keys[home], str(a), str(b)))
        spans[home].append((a, b, sent_keys[-1]))
    return spans, sent_keys


def _embed_cached(embedder: Embedder, texts: list[str], keys: list[str], cache: dict, what: str, log=print,
                  spans: list | None = None, consume: bool = False):
    """Never embed the same text twice: reuse vectors keyed by (model, text hash). With spans
    (per text: (start, end, key) of its sentences) those come from the text's own pass too."""
    from tqdm import tqdm

    want: dict[str, tuple[str, set]] = {}
    for k, t, sp in zip(keys, texts, spans or [()] * len(texts)):
        missing = {x for x in sp if x[2] not in cache}
        if k not in cache or missing:
            want.setdefault(k, (t, set()))[1].update(missing)
    # Sorting by length puts similar lengths in one batch, so little padding is computed. Longest
    # first: each batch's tensors then fit in the memory the previous (larger) batch freed, where
    # shortest first grows the heap batch after batch (peak RSS 2.3 GB on SciFact, bench/README.md).
    todo = sorted(want.items(), key=lambda kv: len(kv[1][0]), reverse=True)
    n_spans = sum(len(sp) for _, (_, sp) in todo)
    log(f"{what}: {len(texts)}, embedding {len(todo)} new" + (f", {len(texts) - len(todo)} already embedded"
                                                            if len(todo) < len(texts) else "")
        + (f"; {n_spans} sentence vectors from the same pass" if n_spans else ""))
    batch = getattr(embedder, "texts_per_call", 64)  # small calls give a progress bar; Ray takes all at once
    with tqdm(total=len(todo), desc=f"embedding {what}", unit=" texts", disable=not todo, leave=False) as bar:
        for i in range(0, len(todo), batch):
            part = todo[i:i + batch]
            if any(sp for _, (_, sp) in part):
                part_spans = [sorted(sp) for _, (_, sp) in part]
                vecs, span_vecs = embedder.embed_spans([t for _, (t, _) in part],
                                                       [[(a, b) for a, b, _ in sp] for sp in part_spans])
                for sp, sv in zip(part_spans, span_vecs):
                    cache.update((key, v) for (_, _, key), v in zip(sp, sv) if np.isfinite(v).all())
            else:
                vecs = embedder.embed_documents([t for _, (t, _) in part])
            cache.update(zip((k for k, _ in part), vecs))
            if i // batch % 8 == 7:  # every call: ~6% slower for ~100 MB less at the peak
                release_memory()
            bar.update(len(part))
    if not keys:
        return np.zeros((0, embedder.dim), "float32"), len(todo)
    out = np.empty((len(keys), embedder.dim), dtype="float32")
    last = {k: i for i, k in enumerate(keys)} if consume else {}
    for i, k in enumerate(keys):  # consume: entries leave the cache as they are copied (less held at once)
        out[i] = cache.pop(k) if last.get(k) == i else cache[k]
        if consume and i % 8192 == 8191:
            release_memory()
    return out, len(todo)


def _write(tmp: Path, info: dict, docs, chunks, texts, keys, vectors, sents, sent_keys, sent_vectors, store,
           tokens, log) -> np.ndarray:
    """Write one version's files (and its vectors to the store); returns the chunks' store ids."""
    dump = json.JSONEncoder(ensure_ascii=False).encode  # one encoder: json.dumps(..., kw) makes one per call
    with open(tmp / "documents.jsonl", "w", encoding="utf-8") as f:
        f.writelines(dump({"id": d.id, "title": d.title, "text": d.text, "metadata": d.metadata}) + "\n"
                     for d in docs)
    with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
        f.writelines(dump([c.doc_id, c.start, c.end, c.section, c.page, key]) + "\n" for c, key in zip(chunks, keys))
    with open(tmp / "sentences.jsonl", "w", encoding="utf-8") as f:  # key: where the sentence's vector came from
        f.writelines(dump([*s, key] if key else list(s)) + "\n" for s, key in zip(sents, sent_keys or [None] * len(sents)))
    if not store.keeps_vectors:  # else the store's file in this directory gives them back
        save_array(tmp / "vectors.npy", vectors)
    ids = row_ids([(c.doc_id, c.start, c.end, k) for c, k in zip(chunks, keys)])
    info["ann"] = store.add(tmp, vectors, ids, [c.doc_id for c in chunks], log)
    info["index_type"] = info["ann"]["type"]
    lexical.build(texts, tmp / "bm25", keys, tokens)
    info["files"] = manifest.file_list(tmp)
    info["probe"] = {"vectors": manifest.fingerprint(vectors[manifest.probe_rows(len(vectors))]),
                     "sentences": manifest.fingerprint(sent_vectors[manifest.probe_rows(len(sent_vectors))])}
    manifest.write_manifest(tmp, info)
    versions.fsync_tree(tmp)
    return ids


def _open_previous(settings: Settings, store: VectorStore) -> Index | None:
    if not (Path(settings.index_dir) / versions.CURRENT).exists():
        return None
    return open_index(settings, load_vectors=True, for_build=True, store=store)
