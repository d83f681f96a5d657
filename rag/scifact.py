"""`rag bench scifact`: BEIR SciFact through the product's own chunking, index and retrieval.

Each abstract becomes one .txt file (title in front matter) in a cached corpus directory, the
normal incremental `build` indexes it, and a document scores the best score among its chunks.
The cache lives outside the repository, keyed by everything that changes the vectors, so a
second run embeds nothing and only the retrieval is timed again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from .config import Settings
from .errors import RagError
from .types import content_hash

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
DOC_DEPTH = 300  # chunks retrieved per query before they are folded into documents
ANCHORS = {  # published nDCG@10 on this test set, for the printed comparison
    "BM25 (Anserini)": 0.665, "BM25 (bm25s)": 0.687, "all-MiniLM-L6-v2 dense": 0.65,
    "bge-small-en-v1.5": 0.713, "BM25+MiniLM hybrid (txtai)": 0.713,
}


def read_scifact(data: Path, limit: int | None = None) -> tuple[dict, dict, dict]:
    """(corpus {id: (title, text)}, queries {id: text}, qrels {qid: {doc_id: grade}}) of the test split."""
    data = Path(data)
    need = [data / "corpus.jsonl", data / "queries.jsonl", data / "qrels" / "test.tsv"]
    missing = [str(p) for p in need if not p.is_file()]
    if missing:
        raise RagError(f"SciFact data incomplete under {data}/: missing {', '.join(missing)}; "
                       f"pass --data pointing at a BEIR scifact directory")
    corpus = {}
    with open(need[0], encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            corpus[str(d["_id"])] = (d.get("title") or "", d.get("text") or "")
    qrels: dict[str, dict[str, int]] = {}
    with open(need[2], encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            if int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {}
    with open(need[1], encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if str(q["_id"]) in qrels:  # the test split is the queries that have judgements
                queries[str(q["_id"])] = q["text"]
    if limit:
        queries = dict(list(queries.items())[:limit])
    qrels = {q: qrels[q] for q in queries}
    return corpus, queries, qrels


def cache_dir(settings: Settings, corpus_file: Path) -> Path:
    """Per-(data, model, chunking) directory under ~/.cache/rag-bench, outside the repository."""
    digest = hashlib.sha256(Path(corpus_file).read_bytes()).hexdigest()
    key = content_hash(digest, settings.model, str(settings.chunk_size), str(settings.chunk_overlap),
                       str(settings.embed_titles))[:12]
    root = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "rag-bench"
    return root / f"scifact-{key}"


def write_corpus(corpus: dict, out: Path) -> None:
    """One front-matter .txt file per abstract; skipped when an earlier run wrote them all."""
    done = out.parent / "corpus.complete"
    if done.is_file() and done.read_text() == str(len(corpus)):
        return
    out.mkdir(parents=True, exist_ok=True)
    for doc_id, (title, text) in corpus.items():
        title = " ".join(title.split())
        body = text.strip() or title  # the loader skips files with no body text
        (out / f"{doc_id}.txt").write_text(f"---\ntitle: {title}\n---\n{body}\n", encoding="utf-8")
    done.write_text(str(len(corpus)))


def doc_run(rag, queries: dict, mode: str, depth: int = DOC_DEPTH) -> dict[str, dict[str, float]]:
    """{qid: {doc_id: best chunk score}} from the product's own `Rag.search`."""
    run = {}
    for qid, text in queries.items():
        scores: dict[str, float] = {}
        for h in rag.search(text, k=depth, mode=mode):
            doc = Path(h.chunk.doc_id).stem
            scores[doc] = max(scores.get(doc, float("-inf")), float(h.score))
        run[qid] = scores
    return run


def score(qrels: dict, run: dict) -> dict[str, float]:
    """nDCG@10, Recall@10, Recall@100, MRR@10 over all judged queries (ranx)."""
    from ranx import Qrels, Run, evaluate

    # ranx refuses empty rankings; a query with no hits scores 0 through an unjudged filler.
    run = {q: (run.get(q) or {"\u2205": 0.0}) for q in qrels}
    out = evaluate(Qrels(qrels), Run(run), list(METRICS), make_comparable=True)
    return {m: float(out[m]) for m in METRICS}


def bench_scifact(args, settings: Settings) -> int:
    from .pipeline import Rag

    data = Path(args.data)
    corpus, queries, qrels = read_scifact(data, args.limit)
    work = cache_dir(settings, data / "corpus.jsonl")
    write_corpus(corpus, work / "corpus")
    # dedup 1.0: near-duplicate chunks of different abstracts must not hide each other here
    settings = settings.replace(corpus_dir=work / "corpus", index_dir=work / "index", index_sentences=False,
                                dedup_threshold=1.0)
    rag = Rag(settings)
    report = rag.build(log=lambda m: print(m, file=sys.stderr))
    built = "reused (nothing embedded)" if not report.embedded else f"embedded {report.embedded} texts"
    print(f"index: {work / 'index'}: {len(corpus)} abstracts, {report.chunks} chunks, {built} "
          f"in {report.seconds:.1f}s")
    started = time.perf_counter()
    run = doc_run(rag, queries, settings.mode)
    seconds = time.perf_counter() - started
    result = score(qrels, run)
    print(f"SciFact test, {len(queries)} queries, mode {settings.mode}, model {settings.model}, "
          f"chunk_size {settings.chunk_size}: {1000 * seconds / max(1, len(queries)):.1f} ms/query")
    print("| metric | value |\n| --- | --- |")
    for m in METRICS:
        print(f"| {m} | {result[m]:.4f} |")
    print("published nDCG@10: " + ", ".join(f"{k} {v:.3f}" for k, v in ANCHORS.items()))
    out = Path("bench/results")
    if out.parent.is_dir():  # git-ignored; only when run from the repository root
        out.mkdir(exist_ok=True)
        record = dict(result, mode=settings.mode, model=settings.model, chunk_size=settings.chunk_size,
                      queries=len(queries), chunks=report.chunks, build_seconds=round(report.seconds, 1),
                      embedded=report.embedded, ms_per_query=round(1000 * seconds / max(1, len(queries)), 1))
        (out / f"scifact-{settings.mode}.json").write_text(json.dumps(record, indent=1))
    return 0
