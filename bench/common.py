"""Shared pieces of the benchmark scripts: corpora, timing statistics, memory, subprocess workers.

Every measured system runs in its own subprocess (`run_worker`), so peak RSS and import
costs are never shared between the two pipelines.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SCIFACT = ROOT.parent / "shared" / "benchmarks" / "scifact"
WORK = Path(os.environ.get("BENCH_WORK", "/tmp/bench-helper"))
LC_PY = os.environ.get("BENCH_LC_PYTHON", PY)  # LangChain may live in its own venv (bench/README.md)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    rank = max(1, min(len(xs), round(q / 100 * len(xs) + 0.5)))
    return xs[rank - 1]


def latency(ms: list[float]) -> dict:
    return {"p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2), "n": len(ms)}


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def du_mb(path: Path) -> float:
    """Bytes on disk under path (files only, symlinks not followed)."""
    total = sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and not p.is_symlink())
    return round(total / 2**20, 2)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "sentence-transformers", "faiss-cpu", "langchain-community",
                "langchain-huggingface", "langchain-text-splitters", "bm25s"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()], "versions": versions,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def run_worker(args: list[str], env: dict | None = None, timeout: float = 7200) -> dict:
    """Run `python <args>` in a fresh process; its last stdout line is a JSON result."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                    TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")
    full_env.update(env or {})
    python = LC_PY if "langchain" in args[:3] else PY
    proc = subprocess.run([python, *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"worker failed ({proc.returncode}): {' '.join(args)}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"worker printed no JSON result: {' '.join(args)}\n{proc.stdout[-2000:]}")
    return json.loads(lines[-1])


def emit(result: dict) -> None:
    """A worker's result: one JSON line on stdout (progress goes to stderr)."""
    print(json.dumps(result), flush=True)


# ---- corpora -------------------------------------------------------------------------------

def scifact_subset(limit: int | None) -> tuple[dict, dict, dict]:
    """SciFact (corpus, queries, qrels); with limit, N documents that hold the relevant ones of
    the first queries (about half the docs) plus distractors, and only those queries."""
    from rag.beir import read_beir

    corpus, queries, qrels = read_beir(SCIFACT)
    if not limit or limit >= len(corpus):
        return corpus, queries, qrels
    keep: list[str] = []
    kept_q = {}
    for qid, text in queries.items():
        rel = [d for d in qrels[qid] if d in corpus and d not in keep]
        if len(keep) + len(rel) > limit // 2:
            break
        keep += rel
        kept_q[qid] = text
    for d in corpus:
        if len(keep) >= limit:
            break
        if d not in keep:
            keep.append(d)
    keep_set = set(keep)
    sub = {d: corpus[d] for d in corpus if d in keep_set}
    return sub, kept_q, {q: qrels[q] for q in kept_q}


def prepare_corpus(name: str, limit: int | None) -> dict:
    """A fresh copy of the corpus as files (the same files for both pipelines) plus its queries."""
    root = WORK / (f"{name}-{limit}" if limit else name)
    corpus_dir = root / "corpus"
    shutil.rmtree(root, ignore_errors=True)
    corpus_dir.mkdir(parents=True)
    if name == "scifact":
        from rag.beir import write_corpus

        corpus, queries, qrels = scifact_subset(limit)
        write_corpus(corpus, corpus_dir)
        # the document that the re-index step edits: a mid-sized abstract
        changed = sorted(corpus, key=lambda d: len(corpus[d][1]))[len(corpus) // 2] + ".txt"
    elif name == "bundled":
        src = ROOT / "corpus"
        files = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith("."))
        for p in files[: limit or None]:
            dest = corpus_dir / p.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest)
        queries = {}
        with open(ROOT / "eval" / "gold.jsonl", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                queries[row["id"]] = row["question"]
        qrels = {}
        changed = sorted(p.relative_to(corpus_dir).as_posix() for p in corpus_dir.rglob("*") if p.is_file())[0]
    else:
        raise SystemExit(f"unknown corpus {name!r}; use scifact or bundled")
    (root / "queries.json").write_text(json.dumps(queries))
    (root / "qrels.json").write_text(json.dumps(qrels))
    n_docs = sum(1 for p in corpus_dir.rglob("*") if p.is_file())
    return {"name": name, "root": str(root), "corpus_dir": str(corpus_dir), "docs": n_docs,
            "queries": len(queries), "changed_doc": changed, "scored": bool(qrels)}


def change_document(path: Path) -> None:
    """Edit one document the way a user would: append a sentence."""
    with open(path, "a", encoding="utf-8") as f:
        f.write("\nThis sentence was added to measure re-indexing after one document changes.\n")
