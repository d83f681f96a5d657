"""`rag bench beir --data DIR`: any BEIR dataset through the product's own chunking, index and retrieval.

A BEIR directory holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv. Each document becomes one
.txt file (title in front matter) in a cached corpus directory, the normal incremental `build`
indexes it, and a document scores the best score among its chunks. Document ids may hold any
character (`OSTM/Jason-2:2`, spaces, other scripts): an id that is not a plain file name is
stored under a percent-encoded name with a hash of the id, and mapped back before scoring. The
cache lives outside the repository, keyed by the dataset and everything that changes the vectors,
so a second run embeds nothing and only the retrieval is timed again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import quote

from .config import Settings
from .errors import RagError
from .types import content_hash

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
DOC_DEPTH = 300  # chunks retrieved per query before they are folded into documents
ANCHORS = {  # published nDCG@10 on the SciFact test set, for the printed comparison
    "BM25 (Anserini)": 0.665, "BM25 (bm25s)": 0.687, "all-MiniLM-L6-v2 dense": 0.65,
    "bge-small-en-v1.5": 0.713, "BM25+MiniLM hybrid (txtai)": 0.713,
}
PLAIN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,119}")  # ids used as file names as they are (SciFact's)


def read_beir(data: Path, limit: int | None = None, split: str = "test") -> tuple[dict, dict, dict]:
    """(corpus {id: (title, text)}, queries {id: text}, qrels {qid: {doc_id: grade}}) of one split."""
    data = Path(data)
    need = [data / "corpus.jsonl", data / "queries.jsonl", data / "qrels" / f"{split}.tsv"]
    missing = [str(p) for p in need if not p.is_file()]
    if missing:
        raise RagError(f"BEIR data incomplete under {data}/: missing {', '.join(missing)}; "
                       f"pass --data pointing at a BEIR dataset directory")
    corpus = {}
    with open(need[0], encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                corpus[str(d["_id"])] = (d.get("title") or "", d.get("text") or "")
    qrels: dict[str, dict[str, int]] = {}
    with open(need[2], encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 3 or row[0] == "query-id":
                continue
            if int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {}
    with open(need[1], encoding="utf-8") as f:
        for line in f:
            if line.strip() and str((q := json.loads(line))["_id"]) in qrels:  # the split: judged queries
                queries[str(q["_id"])] = q["text"]
    if limit:
        queries = dict(list(queries.items())[:limit])
    qrels = {q: qrels[q] for q in queries}
    return corpus, queries, qrels


def file_stem(doc_id: str) -> str:
    """A file name (without .txt) for any document id: the id itself when it is a plain name, else
    its percent-encoding cut to 80 characters and a hash of the id (no `/`, no leading dot)."""
    if PLAIN.fullmatch(doc_id):
        return doc_id
    readable = quote(doc_id, safe="").replace(".", "%2E")[:80]
    return f"{readable}~{hashlib.sha256(doc_id.encode()).hexdigest()[:16]}"


def dataset_name(data: Path) -> str:
    """The dataset's folder name, as a file-name-safe word ("scifact")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(data).resolve().name).strip("._") or "beir"


def cache_dir(settings: Settings, corpus_file: Path, sentences: bool = False) -> Path:
    """Per-(dataset, data, model, chunking) directory under ~/.cache/rag-bench, outside the repository.

    The directory is named after the dataset's folder; an index with sentence vectors (the SciFact
    rationale run) lives in its own directory, so the two runs do not rebuild each other's index.
    """
    digest = hashlib.sha256(Path(corpus_file).read_bytes()).hexdigest()
    parts = [digest, settings.model, str(settings.chunk_size), str(settings.chunk_overlap), str(settings.embed_titles)]
    key = content_hash(*parts, *(["sentences"] if sentences else []))[:12]
    name = dataset_name(Path(corpus_file).parent)
    root = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "rag-bench"
    return root / f"{name}-{'sent-' if sentences else ''}{key}"


def write_corpus(corpus: dict, out: Path) -> None:
    """One front-matter .txt file per document; skipped when an earlier run wrote them all."""
    done = out.parent / "corpus.complete"
    if done.is_file() and done.read_text() == str(len(corpus)):
        return
    out.mkdir(parents=True, exist_ok=True)
    for doc_id, (title, text) in corpus.items():
        title = " ".join(title.split())
        body = text.strip() or title or doc_id  # the loader skips files with no body text
        (out / f"{file_stem(doc_id)}.txt").write_text(f"---\ntitle: {title}\n---\n{body}\n", encoding="utf-8")
    done.write_text(str(len(corpus)))


def doc_run(rag, queries: dict, mode: str, depth: int = DOC_DEPTH, ids: dict[str, str] | None = None,
            progress: bool = False) -> dict[str, dict[str, float]]:
    """{qid: {doc_id: best chunk score}} from the product's own `Rag.search`; `ids` maps file stems
    back to document ids (`{file_stem(d): d}`; without it a stem is the id)."""
    items = queries.items()
    if progress:
        from tqdm import tqdm

        items = tqdm(items, total=len(queries), desc="queries", unit="q", file=sys.stderr)
    run = {}
    for qid, text in items:
        scores: dict[str, float] = {}
        for h in rag.search(text, k=depth, mode=mode):
            stem = Path(h.chunk.doc_id).stem
            doc = ids.get(stem, stem) if ids else stem
            scores[doc] = max(scores.get(doc, float("-inf")), float(h.score))
        run[qid] = scores
    return run


def score(qrels: dict, run: dict) -> dict[str, float]:
    """nDCG@10, Recall@10, Recall@100, MRR@10 over all judged queries (ranx)."""
    from .evaluate import ranx_scores

    return ranx_scores(qrels, run, list(METRICS), digits=None)


def cached_index(settings: Settings, data: Path, corpus: dict, sentences: bool = False):
    """A `Rag` over the dataset's documents, indexed once into the cache (later runs embed nothing);
    prints one line on what was built. Dedup 1.0: near-duplicate chunks of different documents must
    not hide each other here."""
    from .pipeline import Rag

    work = cache_dir(settings, data / "corpus.jsonl", sentences=sentences)
    write_corpus(corpus, work / "corpus")
    rag = Rag(settings.replace(corpus_dir=work / "corpus", index_dir=work / "index", index_sentences=sentences,
                               dedup_threshold=1.0))
    report = rag.build(log=lambda m: print(m, file=sys.stderr))
    built = "reused (nothing embedded)" if not report.embedded else f"embedded {report.embedded} texts"
    print(f"index: {work / 'index'}: {len(corpus)} documents, {report.chunks} chunks"
          f"{', sentence vectors' if sentences else ''}, {built} in {report.seconds:.1f}s")
    return rag, report


def bench_beir(args, settings: Settings) -> int:
    """Index the dataset (cached), search every judged query, print the metrics table."""
    data = Path(args.data)
    split = getattr(args, "split", None) or "test"
    corpus, queries, qrels = read_beir(data, args.limit, split)
    name = dataset_name(data)
    rag, report = cached_index(settings, data, corpus)
    settings = rag.settings
    started = time.perf_counter()
    run = doc_run(rag, queries, settings.mode, ids={file_stem(d): d for d in corpus}, progress=True)
    seconds = time.perf_counter() - started
    result = score(qrels, run)
    print(f"{name} {split}, {len(queries)} queries, mode {settings.mode}, model {settings.model}, "
          f"chunk_size {settings.chunk_size}: {1000 * seconds / max(1, len(queries)):.1f} ms/query")
    print("| metric | value |\n| --- | --- |")
    for m in METRICS:
        print(f"| {m} | {result[m]:.4f} |")
    if name == "scifact":
        print("published nDCG@10: " + ", ".join(f"{k} {v:.3f}" for k, v in ANCHORS.items()))
    out = Path("bench/results")
    if out.parent.is_dir():  # git-ignored; only when run from the repository root
        out.mkdir(exist_ok=True)
        record = dict(result, dataset=name, split=split, mode=settings.mode, model=settings.model,
                      chunk_size=settings.chunk_size, queries=len(queries), chunks=report.chunks,
                      build_seconds=round(report.seconds, 1), embedded=report.embedded,
                      ms_per_query=round(1000 * seconds / max(1, len(queries)), 1))
        (out / f"{name}-{settings.mode}.json").write_text(json.dumps(record, indent=1))
    return 0
