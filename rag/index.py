"""Build, incrementally update and open the on-disk index (FAISS + BM25 + chunk store + manifest).

Layout: index/current -> v-<stamp>/ holding manifest.json, documents.jsonl, chunks.jsonl,
vectors.npy, vectors.faiss, sentences.jsonl, sentences.npy and bm25/. A build writes a
fresh .tmp-* directory, renames it to v-<stamp> and swaps the `current` symlink atomically,
so a crash at any moment leaves the previous index usable.
"""

from __future__ import annotations

import bisect
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import lexical, vectorstore
from .chunk import chunk_document, check_budget, embed_text, load_tokenizer, split_sentences
from .config import Settings
from .embed import Embedder, import_torch_first, model_dir
from .errors import RagError
from .load import Skipped, load_corpus
from .types import Chunk, Document, content_hash

FORMAT_VERSION = 1
ID_FILE = ".rag-index"  # the index directory's id, made by its first build
MARKER = ".rag-version"  # in every version and temp directory a build makes: the index's id
SENTENCE_VECTORS = "chunk-pass"  # sentence vectors pooled from their chunk's pass (older indexes: none recorded)
CURRENT = "current"


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


def manifest_params(settings: Settings, dim: int) -> dict:
    return {"format_version": FORMAT_VERSION, "model": settings.model, "dim": dim,
            "chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
            "embed_titles": settings.embed_titles, "index_sentences": settings.index_sentences,
            "sentence_vectors": SENTENCE_VECTORS if settings.index_sentences else None,
            "vector_store": vectorstore.parse(settings.vector_store)[0]}


def built_store(manifest: dict) -> str:
    """The vector-store kind a version was built for (versions from before the setting: faiss)."""
    return manifest.get("vector_store", "faiss")


# What a build brings an index to without --rebuild: it moves the stored vectors to the configured
# store, or pools the sentence vectors anew. Serving an index that differs here still fails.
UPDATED_BY_BUILD = ("vector_store", "sentence_vectors")


def differing_params(manifest: dict, settings: Settings) -> dict[str, tuple]:
    """{name: (built with, configured)} for every manifest parameter that differs from settings."""
    want = manifest_params(settings, manifest.get("dim", 0))
    have = {k: built_store(manifest) if k == "vector_store" else manifest.get(k) for k in want}
    return {k: (have[k], want[k]) for k in want if have[k] != want[k]}


def check_compatible(manifest: dict, settings: Settings, index_dir: Path, ignore: tuple = ()) -> None:
    diff = {k: v for k, v in differing_params(manifest, settings).items() if k not in ignore}
    if diff:
        shown = ", ".join(f"{k} {have!r} (config: {want!r})" for k, (have, want) in diff.items())
        raise RagError(f"{index_dir}/ was built with other settings: {shown}; run `rag index --rebuild`")


@contextmanager
def locked(index_dir: Path):
    """One writer at a time; a second `rag index` exits with one line instead of mixing indexes."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fh = open(index_dir / ".lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise RagError(f"another `rag index` is already updating {index_dir}/; wait for it to finish") from None
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def build(settings: Settings, embedder: Embedder, rebuild: bool = False, log=print) -> Report:
    """Index corpus_dir into index_dir, embedding only new or changed documents."""
    started = time.perf_counter()
    index_dir = Path(settings.index_dir)
    check_dirs(Path(settings.corpus_dir), index_dir)
    with locked(index_dir):
        ident = index_id(index_dir)
        _adopt_current(index_dir, ident)
        _sweep(index_dir, ident)
        docs, skipped = load_corpus(Path(settings.corpus_dir))
        report = Report(skipped=skipped)
        tokenizer = load_tokenizer(str(model_dir(settings.model)))
        check_budget(tokenizer, settings.chunk_size, settings.embed_titles)
        old = None if rebuild else _open_previous(index_dir, settings)
        old_docs = {d["id"]: d for d in old.manifest["documents"]} if old else {}
        new_ids = {d.id for d in docs}
        report.deleted = sorted(set(old_docs) - new_ids)
        for doc in docs:
            prev = old_docs.get(doc.id)
            bucket = report.added if prev is None else report.unchanged if prev["hash"] == doc.hash else report.changed
            bucket.append(doc.id)
        moved = old is not None and bool(differing_params(old.manifest, settings).keys() & set(UPDATED_BY_BUILD))
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
            sent_vectors, n2 = _embed_cached(embedder, sent_texts, sent_keys, cache, "sentences", log)
        else:
            sent_vectors, n2 = np.zeros((0, vectors.shape[1]), "float32"), 0
        report.embedded, report.chunks = n1 + n2, len(chunks)

        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{ident[:12]}-", dir=index_dir))
        (tmp / MARKER).write_text(ident, encoding="utf-8")
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        manifest = dict(manifest_params(settings, int(vectors.shape[1])),
                        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        count=len(chunks), sentences=len(sents),
                        documents=_doc_entries(docs, chunks, stamp, old_docs, set(report.unchanged)))
        store = vectorstore.open_store(settings)
        tokens = lexical.saved_tokens(old.path / "bm25", old.chunk_keys) if old else {}
        ids = _write(tmp, manifest, docs, chunks, texts, keys, vectors, sents, sent_keys, sent_vectors, store,
                     tokens, log)
        final = index_dir / f"v-{stamp}-{content_hash(str(time.time_ns()))[:6]}"
        os.rename(tmp, final)
        _swap_current(index_dir, final.name)
        _sweep(index_dir, ident)
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
                  spans: list | None = None):
    """Never embed the same text twice: reuse vectors keyed by (model, text hash). With spans
    (per text: (start, end, key) of its sentences) those come from the text's own pass too."""
    from tqdm import tqdm

    want: dict[str, tuple[str, set]] = {}
    for k, t, sp in zip(keys, texts, spans or [()] * len(texts)):
        missing = {x for x in sp if x[2] not in cache}
        if k not in cache or missing:
            want.setdefault(k, (t, set()))[1].update(missing)
    # Sorting by length puts similar lengths in one batch, so little padding is computed.
    todo = sorted(want.items(), key=lambda kv: len(kv[1][0]))
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
            bar.update(len(part))
    if not keys:
        return np.zeros((0, embedder.dim), "float32"), len(todo)
    return np.stack([cache[k] for k in keys]).astype("float32"), len(todo)


def _write(tmp: Path, manifest, docs, chunks, texts, keys, vectors, sents, sent_keys, sent_vectors, store,
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
    np.save(tmp / "vectors.npy", vectors)
    np.save(tmp / "sentences.npy", sent_vectors)
    ids = vectorstore.row_ids([(c.doc_id, c.start, c.end, k) for c, k in zip(chunks, keys)])
    manifest["ann"] = store.write(tmp, vectors, ids, [c.doc_id for c in chunks], log)
    manifest["index_type"] = manifest["ann"]["type"]
    lexical.build(texts, tmp / "bm25", keys, tokens)
    manifest["files"] = _file_list(tmp)
    manifest["probe"] = {"vectors": fingerprint(vectors[probe_rows(len(vectors))]),
                         "sentences": fingerprint(sent_vectors[probe_rows(len(sent_vectors))])}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    for p in tmp.rglob("*"):  # flush to disk before the rename makes this version visible
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    return ids


CHECKSUMMED = ("documents.jsonl", "chunks.jsonl", "sentences.jsonl")  # read whole at open anyway


def probe_rows(n: int) -> list[int]:
    return sorted({round(i * (n - 1) / 7) for i in range(8)}) if n else []


def fingerprint(rows: np.ndarray) -> str:
    """Hash of a few evenly spaced vectors: tells this build's vector file from another
    build's of the same size, without reading it all."""
    return hashlib.sha256(np.ascontiguousarray(rows, dtype="float32").tobytes()).hexdigest()[:16]


def _file_list(version: Path) -> dict:
    """Size of every file (and a checksum of the stores answers are built from), so opening
    can tell a truncated, edited or swapped-in file from the one this build wrote."""
    files = {}
    for p in sorted(version.rglob("*")):
        if p.is_file():
            name = p.relative_to(version).as_posix()
            files[name] = {"bytes": p.stat().st_size}
            if name in CHECKSUMMED:
                files[name]["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return files


ANN_RECALL = 0.95  # recall@10 against exact search an approximate index must keep
EF_SEARCH = (16, 32, 64, 128, 256, 512)  # tried in order; the first to reach ANN_RECALL is stored


def write_faiss(vectors: np.ndarray, path: Path, flat_threshold: int, log=print):
    """Exact IndexFlatIP up to flat_threshold vectors; above, HNSW with the smallest efSearch
    that keeps recall@10 >= ANN_RECALL on these vectors, or exact search if none does.
    Returns the index and what was chosen (kept in the manifest)."""
    import_torch_first()
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


def _swap_current(index_dir: Path, target: str) -> None:
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


def _ours(path: Path, ident: str) -> bool:
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        return (path / MARKER).read_text(encoding="utf-8").strip() == ident
    except OSError:
        # a temp dir of ours that a crash left before its marker was written is empty
        return path.name.startswith(f".tmp-{ident[:12]}-") and not any(path.iterdir())


def _adopt_current(index_dir: Path, ident: str) -> None:
    """A version built before versions were marked is ours when `current` names it: mark it, so
    the build after next may sweep it like any other."""
    link = index_dir / CURRENT
    if not link.is_symlink():
        return
    target = index_dir / os.readlink(link)
    if target.parent == index_dir and target.name.startswith("v-") and target.is_dir() \
            and not (target / MARKER).exists() and (target / "manifest.json").is_file():
        (target / MARKER).write_text(ident, encoding="utf-8")


def _sweep(index_dir: Path, ident: str) -> None:
    """Remove temp dirs left by crashed builds and versions no longer current: only directories
    this index marked as its own, never anything else a user keeps in the folder."""
    current = os.readlink(index_dir / CURRENT) if (index_dir / CURRENT).is_symlink() else None
    for p in index_dir.iterdir():
        if p.name.startswith(".tmp-") or (p.name.startswith("v-") and p.name != current):
            if _ours(p, ident):
                shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(".current-") and p.is_symlink():
            p.unlink()


def _open_previous(index_dir: Path, settings: Settings):
    from .store import open_index

    if not (index_dir / CURRENT).exists():
        return None
    return open_index(settings, load_vectors=True, for_build=True)
