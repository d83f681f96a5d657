"""`rag bench scifact`: BEIR SciFact through the product's own chunking, index and retrieval.

`rag bench scifact --rationales [--split test|dev]` instead asks each claim of rationales.jsonl
over the whole corpus (an index with sentence vectors) and reports the share of answers citing a
rationale sentence of an evidence abstract, the share citing an evidence abstract at all, the
refusal share and the p50 time per claim.

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


def cache_dir(settings: Settings, corpus_file: Path, sentences: bool = False) -> Path:
    """Per-(data, model, chunking) directory under ~/.cache/rag-bench, outside the repository.

    An index with sentence vectors (the rationale run) lives in its own directory, so the two
    runs do not rebuild each other's index.
    """
    digest = hashlib.sha256(Path(corpus_file).read_bytes()).hexdigest()
    parts = [digest, settings.model, str(settings.chunk_size), str(settings.chunk_overlap), str(settings.embed_titles)]
    key = content_hash(*parts, *(["sentences"] if sentences else []))[:12]
    root = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "rag-bench"
    return root / f"scifact-{'sent-' if sentences else ''}{key}"


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
    from .evaluate import ranx_scores

    return ranx_scores(qrels, run, list(METRICS), digits=None)


def bench_scifact(args, settings: Settings) -> int:
    from .pipeline import Rag

    if getattr(args, "rationales", False):
        return bench_rationales(args, settings)
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


# --- rationales: does the answer to a claim cite the sentences that decide it? -------------------

def read_rationales(data: Path, split: str = "test", limit: int | None = None) -> dict[str, dict]:
    """{claim_id: {"claim": text, "evidence": {doc_id: [rationale sentences]}}} for one split.

    A claim has one row per (evidence abstract, rationale); rows of the same claim are merged, so
    each claim is asked once. `limit` keeps the first N distinct claims in file order.
    """
    path = Path(data) / "rationales.jsonl"
    if not path.is_file():
        raise RagError(f"SciFact rationales missing: {path}; pass --data pointing at a directory with rationales.jsonl")
    claims: dict[str, dict] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                if r["split"] != split:
                    continue
                cid, doc, sentences = str(r["claim_id"]), str(r["doc_id"]), list(r["rationale"])
                claim = r["claim"]
            except (ValueError, KeyError, TypeError) as e:
                raise RagError(f"{path}:{n} is not a rationale row ({type(e).__name__}: {e})") from None
            if cid not in claims:
                if limit and len(claims) >= limit:
                    continue
                claims[cid] = {"claim": claim, "evidence": {}}
            have = claims[cid]["evidence"].setdefault(doc, [])
            have += [s for s in sentences if s not in have]
    if not claims:
        raise RagError(f"{path} has no claims in split {split!r}; use --split test or --split dev")
    return claims


def locate(text: str, sentence: str) -> tuple[int, int] | None:
    """(start, end) of `sentence` in `text`: exact, else with runs of whitespace matched loosely."""
    at = text.find(sentence)
    if at >= 0:
        return at, at + len(sentence)
    import re

    words = sentence.split()
    if not words:
        return None
    m = re.search(r"\s+".join(map(re.escape, words)), text)
    return (m.start(), m.end()) if m else None


def rationale_spans(claims: dict, documents: dict) -> tuple[dict, int]:
    """{claim_id: {doc stem: [(start, end)]}} over the indexed documents, and how many sentences were not found."""
    by_stem = {Path(d).stem: doc for d, doc in documents.items()}
    spans, missing = {}, 0
    for cid, c in claims.items():
        spans[cid] = {}
        for doc_id, sentences in c["evidence"].items():
            doc = by_stem.get(doc_id)
            found = [locate(doc.text, s) for s in sentences] if doc is not None else [None] * len(sentences)
            missing += sum(f is None for f in found)
            spans[cid][doc_id] = [f for f in found if f]
    return spans, missing


def score_rationale_answer(ans, evidence: dict) -> dict:
    """Whether one answer cites a rationale sentence / any evidence abstract; `evidence` is {doc stem: spans}."""
    cited = [(Path(c.doc_id).stem, c.start, c.end) for c in ans.citations]
    return {"refused": bool(ans.refused),
            "cites_evidence": any(d in evidence for d, _, _ in cited),
            "cites_rationale": any(s < b and a < e for d, s, e in cited for a, b in evidence.get(d, ()))}


def summarise_rationales(records: list[dict], ms: list[float]) -> dict:
    import numpy as np

    n = len(records)
    share = (lambda key: round(sum(r[key] for r in records) / n, 4) if n else None)
    return {"claims": n, "cites_rationale": share("cites_rationale"), "cites_evidence": share("cites_evidence"),
            "refused": share("refused"), "ms_per_claim_p50": round(float(np.percentile(ms, 50)), 1) if ms else None}


def run_rationales(rag, claims: dict) -> tuple[dict, dict]:
    """(summary, {claim_id: record}) asking each claim once over the whole corpus."""
    spans, missing = rationale_spans(claims, rag.index.documents)
    if claims:
        rag.ask(next(iter(claims.values()))["claim"])  # model load is not claim latency
    records, ms = {}, []
    for cid, c in claims.items():
        started = time.perf_counter()
        ans = rag.ask(c["claim"])
        ms.append(1000 * (time.perf_counter() - started))
        records[cid] = dict(score_rationale_answer(ans, spans[cid]), ms=round(ms[-1], 1))
    summary = summarise_rationales(list(records.values()), ms)
    summary["rationale_sentences_not_found"] = missing
    return summary, records


def bench_rationales(args, settings: Settings) -> int:
    from .pipeline import Rag

    data = Path(args.data)
    split = getattr(args, "split", None) or "test"
    claims = read_rationales(data, split, args.limit)
    corpus, _, _ = read_scifact(data)
    work = cache_dir(settings, data / "corpus.jsonl", sentences=True)
    write_corpus(corpus, work / "corpus")
    settings = settings.replace(corpus_dir=work / "corpus", index_dir=work / "index", index_sentences=True,
                                dedup_threshold=1.0)
    rag = Rag(settings)
    report = rag.build(log=lambda m: print(m, file=sys.stderr))
    built = "reused (nothing embedded)" if not report.embedded else f"embedded {report.embedded} texts"
    print(f"index: {work / 'index'}: {len(corpus)} abstracts, {report.chunks} chunks, sentence vectors, {built} "
          f"in {report.seconds:.1f}s")
    summary, records = run_rationales(rag, claims)
    print(f"SciFact rationales, {split} split, {summary['claims']} claims, mode {settings.mode}, "
          f"model {settings.model}, backend {settings.backend}")
    print("| metric | value |\n| --- | --- |")
    for key, label in (("cites_rationale", "answers citing a rationale sentence"),
                       ("cites_evidence", "answers citing an evidence abstract"),
                       ("refused", "refused"), ("ms_per_claim_p50", "ms per claim (p50)")):
        v = summary[key]
        print(f"| {label} | {'n/a' if v is None else f'{v:.1f}' if key.startswith('ms') else f'{v:.4f}'} |")
    if summary["rationale_sentences_not_found"]:
        print(f"{summary['rationale_sentences_not_found']} rationale sentences not found in their abstracts "
              f"(not counted as cited)", file=sys.stderr)
    out = Path("bench/results")
    if out.parent.is_dir():  # git-ignored; only when run from the repository root
        out.mkdir(exist_ok=True)
        record = dict(summary, split=split, mode=settings.mode, model=settings.model, backend=settings.backend,
                      chunk_size=settings.chunk_size, chunks=report.chunks, build_seconds=round(report.seconds, 1),
                      embedded=report.embedded, per_claim=records)
        (out / f"scifact-rationales-{split}.json").write_text(json.dumps(record, indent=1))
    return 0
