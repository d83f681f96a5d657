"""The two pipelines under test, each as subprocess workers: build (+ re-index) and query.

    python bench/systems.py build SYSTEM CORPUS_ROOT CHANGED_DOC
    python bench/systems.py query SYSTEM CORPUS_ROOT [--max-queries N]
    python bench/systems.py cold-langchain INDEX_DIR QUESTION

`ours` is this product with index_sentences=False (chunk vectors only), `ours-sent` the product
default (every sentence embedded too, for fast extractive answers), `ours-fp32` is `ours` without
bfloat16 batches (to show their quality cost), `langchain` the tutorial
pipeline: RecursiveCharacterTextSplitter(1000, 200) -> HuggingFaceEmbeddings (same packaged
model, normalised) -> langchain_community FAISS, similarity_search.
Each worker prints one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if os.environ.get("BENCH_RAG_PATH"):  # try a patched copy of the rag package (see bench/README.md)
    sys.path.insert(0, os.environ["BENCH_RAG_PATH"])

from bench.common import change_document, du_mb, emit, latency, peak_rss_mb  # noqa: E402

WARMUP = 5
SEARCH_K = 5  # the product's top_k; the tutorial's similarity_search default is 4
DOC_DEPTH = 300  # chunks retrieved per query before folding into documents (as rag/beir.py)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu_s() -> float:
    """CPU seconds (user + system) of this process: less sensitive than wall time to a busy machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _threads() -> int:
    """torch's intra-op threads, if the process loaded torch (an OpenVINO build does not)."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch else os.cpu_count() or 1


def _load(emb) -> None:
    """Load what the build embeds with: OpenVINO's compiled model where the product uses it, else
    torch's model (loaded lazily otherwise; model load is reported apart from the build)."""
    if emb.vino is not None:
        emb.vino.session("bf16")
    else:
        emb.model


# ---- ours ------------------------------------------------------------------------------------

def _settings(root: Path, system: str):
    from rag.config import load_settings

    return load_settings(env={}, corpus_dir=root / "corpus", index_dir=root / f"index-{system}",
                         index_sentences=(system == "ours-sent"))


def _embedder(system: str, s):
    """The product's embed_precision ("auto": bfloat16 batches where the CPU has native bf16,
    rag/embed.py) and query_precision; `ours-fp32` forces float32 for both, to show what they cost."""
    from rag.embed import SentenceTransformerEmbedder

    if system == "ours-fp32":
        return SentenceTransformerEmbedder(s.model, s.batch_size, "fp32", "fp32")
    return SentenceTransformerEmbedder(s.model, s.batch_size, s.embed_precision, s.query_precision)


def build_ours(root: Path, system: str, changed: str) -> dict:
    from rag.index import build

    s = _settings(root, system)
    shutil.rmtree(s.index_dir, ignore_errors=True)
    emb = _embedder(system, s)
    t = time.perf_counter()
    _load(emb)
    load_s = time.perf_counter() - t
    t, cpu = time.perf_counter(), cpu_s()
    report = build(s, emb, rebuild=True, log=log)
    build_s, build_cpu = time.perf_counter() - t, cpu_s() - cpu
    build_peak = peak_rss_mb()  # before the re-index below, which has its own row
    manifest = json.loads((Path(s.index_dir) / "current" / "manifest.json").read_text())
    size = du_mb(Path(s.index_dir) / "current")
    path = Path(s.corpus_dir) / changed
    original = path.read_bytes()
    try:
        change_document(path)
        t = time.perf_counter()
        again = build(s, emb, log=log)
        reindex_s = time.perf_counter() - t
    finally:
        path.write_bytes(original)
    docs = len(report.added)
    return {"model_load_s": round(load_s, 2), "build_s": round(build_s, 2), "build_cpu_s": round(build_cpu, 1), "docs": docs,
            "chunks": report.chunks, "sentences": manifest["sentences"], "embedded": report.embedded,
            "docs_per_s": round(docs / build_s, 2), "chunks_per_s": round(report.chunks / build_s, 2),
            "embedded_per_s": round(report.embedded / build_s, 2),
            "reindex_s": round(reindex_s, 3), "reindex_embedded": again.embedded,
            "reindex_changed": again.changed, "index_mb": size, "index_type": manifest["index_type"],
            "bf16": emb.vino is not None or emb.bf16, "runtime": "openvino" if emb.vino else "torch",
            "torch_threads": _threads(), "build_peak_rss_mb": build_peak,
            "reindex_peak_rss_mb": peak_rss_mb()}


def reindex_ours(root: Path, system: str, changed: str) -> dict:
    """Only the re-index step, on an index `build` left: change one document, update; restore, update."""
    import rag
    from rag.index import build

    s = _settings(root, system)
    emb = _embedder(system, s)
    _load(emb)
    path = Path(s.corpus_dir) / changed
    original = path.read_bytes()
    times = []
    build(s, emb, log=log)  # `build` leaves the index holding the changed text: catch up first
    try:
        change_document(path)
        for step in ("change", "restore"):
            if step == "restore":
                path.write_bytes(original)
            t = time.perf_counter()
            report = build(s, emb, log=log)
            times.append(time.perf_counter() - t)
            if report.changed != [changed]:
                raise SystemExit(f"expected one changed document, got {report.changed}")
    finally:
        path.write_bytes(original)
    return {"rag": str(Path(rag.__file__).parent), "reindex_s": [round(x, 3) for x in times]}


def search_breakdown(rag, texts: list[str]) -> dict:
    """p50 of each stage of a hybrid search, to see where the milliseconds go."""
    import numpy as np

    from rag.retrieve import DEPTH, sentence_ranking

    index, emb = rag.index, rag.embedder
    depth = min(len(index.chunks), DEPTH)
    stages: dict[str, list[float]] = {"embed_query": [], "faiss": [], "bm25": [], "sentences": []}
    for q in texts:
        t = time.perf_counter()
        qv = emb.embed_query(q)
        t1 = time.perf_counter()
        ids, _ = index.searcher.search(qv[None, :], depth)
        t2 = time.perf_counter()
        scores = index.lexical.scores(q)
        t3 = time.perf_counter()
        sentence_ranking(index, qv, sorted({int(i) for i in ids[0] if i >= 0} |
                                           {int(i) for i in np.argsort(-scores)[:depth]}))
        t4 = time.perf_counter()
        for name, a, b in (("embed_query", t, t1), ("faiss", t1, t2), ("bm25", t2, t3), ("sentences", t3, t4)):
            stages[name].append(1000 * (b - a))
    return {k: latency(v)["p50_ms"] for k, v in stages.items()}


def query_ours(root: Path, system: str, queries: dict, qrels: dict, max_queries: int) -> dict:
    from rag.pipeline import Rag

    s = _settings(root, system)
    rag = Rag(s, embedder=_embedder(system, s))
    t = time.perf_counter()
    rag.index  # loads the model first (torch before faiss), then opens the index
    open_s = time.perf_counter() - t
    texts = list(queries.values())[:max_queries]
    for q in texts[:WARMUP]:
        rag.search(q)
        rag.ask(q)
    search_ms, ask_ms = [], []
    for q in texts:
        t = time.perf_counter()
        rag.search(q)
        search_ms.append(1000 * (time.perf_counter() - t))
    for q in texts:
        t = time.perf_counter()
        rag.ask(q)
        ask_ms.append(1000 * (time.perf_counter() - t))
    out = {"open_s": round(open_s, 2), "search": latency(search_ms), "ask": latency(ask_ms),
           "search_stages_p50_ms": search_breakdown(rag, texts[:100]), "torch_threads": _threads()}
    if qrels:
        from rag.beir import doc_run, score

        for mode in ("hybrid", "dense"):
            t = time.perf_counter()
            run = doc_run(rag, queries, mode, DOC_DEPTH)
            out[f"quality_{mode}"] = dict(score(qrels, run), ms_per_query=round(
                1000 * (time.perf_counter() - t) / max(1, len(queries)), 1))
    out["serve_peak_rss_mb"] = peak_rss_mb()
    return out


# ---- the LangChain tutorial pipeline ---------------------------------------------------------

def _lc_embeddings():
    from langchain_huggingface import HuggingFaceEmbeddings

    from rag.config import PACKAGED_MODEL
    from rag.embed import model_dir

    return HuggingFaceEmbeddings(model_name=str(model_dir(PACKAGED_MODEL)), model_kwargs={"device": "cpu"},
                                 encode_kwargs={"normalize_embeddings": True})


def _lc_load(corpus_dir: Path, glob: str = "**/*.txt"):
    from langchain_community.document_loaders import DirectoryLoader, TextLoader

    return DirectoryLoader(str(corpus_dir), glob=glob, loader_cls=TextLoader,
                           loader_kwargs={"encoding": "utf-8"}).load()


def _lc_splitter():
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)


def build_langchain(root: Path, changed: str) -> dict:
    from langchain_community.vectorstores import FAISS

    index_dir = root / "index-langchain"
    shutil.rmtree(index_dir, ignore_errors=True)
    t = time.perf_counter()
    emb = _lc_embeddings()
    load_s = time.perf_counter() - t
    t, cpu = time.perf_counter(), cpu_s()
    docs = _lc_load(root / "corpus")
    chunks = _lc_splitter().split_documents(docs)
    db = FAISS.from_documents(chunks, emb)
    db.save_local(str(index_dir))
    build_s, build_cpu = time.perf_counter() - t, cpu_s() - cpu
    build_peak = peak_rss_mb()
    size = du_mb(index_dir)
    # The tutorial has no incremental update; the least it takes with this API: drop the
    # changed file's chunks, split and embed it again, add them, save.
    path = root / "corpus" / changed
    original = path.read_bytes()
    try:
        change_document(path)
        t = time.perf_counter()
        stale = [i for i, d in db.docstore._dict.items() if Path(d.metadata["source"]) == path]
        db.delete(stale)
        fresh = _lc_splitter().split_documents(_lc_load(path.parent, path.name))
        db.add_documents(fresh)
        db.save_local(str(index_dir))
        reindex_s = time.perf_counter() - t
    finally:
        path.write_bytes(original)
    return {"model_load_s": round(load_s, 2), "build_s": round(build_s, 2), "build_cpu_s": round(build_cpu, 1), "docs": len(docs),
            "chunks": len(chunks), "sentences": 0, "embedded": len(chunks),
            "docs_per_s": round(len(docs) / build_s, 2), "chunks_per_s": round(len(chunks) / build_s, 2),
            "embedded_per_s": round(len(chunks) / build_s, 2), "reindex_s": round(reindex_s, 3),
            "reindex_embedded": len(fresh), "index_mb": size, "index_type": type(db.index).__name__,
            "torch_threads": _threads(), "build_peak_rss_mb": build_peak, "reindex_peak_rss_mb": peak_rss_mb()}


def _lc_open(index_dir: Path):
    from langchain_community.vectorstores import FAISS

    return FAISS.load_local(str(index_dir), _lc_embeddings(), allow_dangerous_deserialization=True)


def query_langchain(root: Path, queries: dict, qrels: dict, max_queries: int) -> dict:
    t = time.perf_counter()
    db = _lc_open(root / "index-langchain")
    open_s = time.perf_counter() - t
    texts = list(queries.values())[:max_queries]
    for q in texts[:WARMUP]:
        db.similarity_search(q, k=SEARCH_K)
    search_ms = []
    for q in texts:
        t = time.perf_counter()
        db.similarity_search(q, k=SEARCH_K)
        search_ms.append(1000 * (time.perf_counter() - t))
    out = {"open_s": round(open_s, 2), "search": latency(search_ms), "ask": None, "torch_threads": _threads()}
    if qrels:
        from rag.beir import score

        t = time.perf_counter()
        run = {}
        for qid, q in queries.items():
            scores: dict[str, float] = {}
            for doc, dist in db.similarity_search_with_score(q, k=DOC_DEPTH):
                d = Path(doc.metadata["source"]).stem
                scores[d] = max(scores.get(d, float("-inf")), -float(dist))  # L2 on unit vectors
            run[qid] = scores
        out["quality_dense"] = dict(score(qrels, run), ms_per_query=round(
            1000 * (time.perf_counter() - t) / max(1, len(queries)), 1))
    out["serve_peak_rss_mb"] = peak_rss_mb()
    return out


def cold_langchain(index_dir: Path, question: str) -> None:
    """What `rag search` does, the tutorial way, in a fresh process."""
    for doc in _lc_open(index_dir).similarity_search(question, k=SEARCH_K):
        print(doc.metadata["source"], doc.page_content[:80].replace("\n", " "))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["build", "query", "reindex", "cold-langchain"])
    p.add_argument("system", help="ours | ours-sent | ours-fp32 | langchain (cold-langchain: the index dir)")
    p.add_argument("root", help="corpus root from bench/common.py prepare_corpus (cold-langchain: question)")
    p.add_argument("changed", nargs="?", default="", help="build: the document to change for re-indexing")
    p.add_argument("--max-queries", type=int, default=300)
    a = p.parse_args(argv)
    if a.action == "cold-langchain":
        cold_langchain(Path(a.system), a.root)
        return 0
    import torch  # noqa: F401  (before faiss: one OpenMP runtime)

    root = Path(a.root)
    if a.action == "reindex":
        emit(reindex_ours(root, a.system, a.changed))
        return 0
    if a.action == "build":
        emit(build_langchain(root, a.changed) if a.system == "langchain" else build_ours(root, a.system, a.changed))
        return 0
    queries = json.loads((root / "queries.json").read_text())
    qrels = json.loads((root / "qrels.json").read_text())
    if a.system == "langchain":
        emit(query_langchain(root, queries, qrels, a.max_queries))
    else:
        emit(query_ours(root, a.system, queries, qrels, a.max_queries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
