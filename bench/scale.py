"""Scale run: exact IndexFlatIP vs HNSW vs IVF on up to 1M normalised vectors.

    python bench/scale.py                      # 1,000,000 random 384-d vectors (long: HNSW build)
    python bench/scale.py --n 100000           # a quicker run
    python bench/scale.py --data clustered     # Gaussian-mixture vectors, closer to real embeddings
    python bench/scale.py --data vectors.npy   # any (N, dim) float32 matrix, e.g. an index's vectors.npy

Reports per index type: build time, index memory (anonymous RSS growth) and file size, recall@10
against exact search and single-query latency p50/p95 for each search parameter, the cheapest
parameter reaching --target recall, and how each file opens with faiss's memory-mapping flags.
HNSW is built by the product's own `rag.vectorstore.write_faiss`, so "as shipped" is measured too:
the efSearch it tuned (or its fall-back to exact search) with the depth `rag.retrieve` asks for. Every index type is built in its
own subprocess, so memory figures are not shared.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import WORK, emit, machine, peak_rss_mb, percentile, run_worker  # noqa: E402

K = 10
EF_SEARCH = (16, 32, 64, 128, 256, 512, 1024, 2048)


def mem() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = round(int(line.split()[1]) / 1024, 1)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_data(data: str, n: int, dim: int, nq: int, seed: int, out: Path) -> dict:
    """Write base.npy and queries.npy under out/ once per (data, n, dim, nq, seed)."""
    out.mkdir(parents=True, exist_ok=True)
    base, queries = out / "base.npy", out / "queries.npy"
    if base.is_file() and queries.is_file():
        return {"dir": str(out), "reused": True}
    rng = np.random.default_rng(seed)
    if data not in ("random", "clustered"):  # a file of real vectors: queries are held-out rows
        x = np.load(data, mmap_mode="r")
        order = rng.permutation(len(x))
        np.save(queries, _unit(np.array(x[order[:nq]], dtype="float32")))
        np.save(base, _unit(np.array(x[order[nq:nq + n]], dtype="float32")))
        return {"dir": str(out), "reused": False}
    centers = _unit(rng.standard_normal((max(1, int(math.sqrt(n))), dim), dtype=np.float32))

    def draw(m: int) -> np.ndarray:
        g = rng.standard_normal((m, dim), dtype=np.float32)
        if data == "clustered":  # points around sqrt(n) centres, cosine to their centre ~0.7
            g = centers[rng.integers(0, len(centers), m)] + g * (1.0 / math.sqrt(dim))
        return _unit(g)

    mm = np.lib.format.open_memmap(base, mode="w+", dtype="float32", shape=(n, dim))
    for i in range(0, n, 100_000):
        mm[i:i + 100_000] = draw(min(100_000, n - i))
    mm.flush()
    del mm
    np.save(queries, draw(nq))
    return {"dir": str(out), "reused": False}


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def timed_queries(index, q: np.ndarray, k: int) -> dict:
    """Single-query latency, one search call per query, as a server answers them."""
    index.search(q[:5], k)  # warm-up
    ms = []
    for row in q:
        t = time.perf_counter()
        index.search(row[None, :], k)
        ms.append(1000 * (time.perf_counter() - t))
    return {"p50_ms": round(percentile(ms, 50), 3), "p95_ms": round(percentile(ms, 95), 3)}


def sweep(index, setter, values, q, truth, n_latency: int, target: float) -> list[dict]:
    rows = []
    for v in values:
        setter(v)
        t = time.perf_counter()
        _, found = index.search(q, K)
        batch = 1000 * (time.perf_counter() - t) / len(q)
        rows.append(dict(param=v, recall_at_10=round(recall_at_k(found, truth), 4),
                         batch_ms_per_query=round(batch, 3), **timed_queries(index, q[:n_latency], K)))
        print(f"  {v}: {rows[-1]}", file=sys.stderr, flush=True)
        if rows[-1]["recall_at_10"] >= max(0.995, target):
            break  # higher values only cost more time
    return rows


def worker(method: str, d: Path, args) -> dict:
    import torch  # noqa: F401  (before faiss: one OpenMP runtime)
    import faiss

    base = np.load(d / "base.npy", mmap_mode="r")
    q = np.load(d / "queries.npy")
    n, dim = base.shape
    path = d / f"{method}.faiss"
    vecs = np.ascontiguousarray(base) if method == "hnsw" else None  # write_faiss takes one array
    before = mem()
    t = time.perf_counter()
    if method == "flat":
        index = faiss.IndexFlatIP(dim)
        for i in range(0, n, 100_000):
            index.add(np.ascontiguousarray(base[i:i + 100_000]))
    elif method == "hnsw":
        from rag.vectorstore import write_faiss

        index, shipped = write_faiss(vecs, path, flat_threshold=0, log=print)  # the product's own choice
    elif method == "ivf":
        nlist = args.nlist or max(1, int(math.sqrt(n)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        train = np.ascontiguousarray(base[np.random.default_rng(1).choice(n, min(n, 64 * nlist), replace=False)])
        index.train(train)
        del train
        for i in range(0, n, 100_000):
            index.add(np.ascontiguousarray(base[i:i + 100_000]))
    else:
        raise SystemExit(f"unknown method {method}")
    if method != "hnsw":
        faiss.write_index(index, str(path))
    build_s = time.perf_counter() - t  # including the write, as rag.vectorstore.write_faiss does
    after = mem()
    del vecs
    out = {"method": method, "n": n, "dim": dim, "build_s": round(build_s, 2),
           "index_mem_mb": round(after["RssAnon"] - before["RssAnon"], 1),
           "file_mb": round(path.stat().st_size / 2**20, 1), "faiss_threads": faiss.omp_get_max_threads()}
    if method == "flat":
        t = time.perf_counter()
        _, truth = index.search(q, K)
        out["batch_ms_per_query"] = round(1000 * (time.perf_counter() - t) / len(q), 3)
        np.save(d / "truth.npy", truth)
        out.update(recall_at_10=1.0, **timed_queries(index, q[:args.latency_queries], K))
    else:
        truth = np.load(d / "truth.npy")
        if method == "hnsw":
            from rag.retrieve import DEPTH

            _, found = index.search(q, DEPTH)  # what rag.retrieve.search asks for
            out["as_shipped"] = dict(shipped, search_k=DEPTH, recall_at_10_bench_queries=round(recall_at_k(found, truth), 4))
            if shipped["type"] == "flat":  # no efSearch kept recall: the product fell back to exact search
                out["peak_rss_mb"] = peak_rss_mb()
                return out

            def setter(v):
                index.hnsw.efSearch = v

            out["sweep"] = sweep(index, setter, EF_SEARCH, q, truth, args.latency_queries, args.target)
            out["param"] = "efSearch"
        else:
            def setter(v):
                index.nprobe = v

            nlist = index.nlist
            probes = sorted({p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048) if p < nlist} | {nlist})
            out["sweep"] = sweep(index, setter, probes, q, truth, args.latency_queries, args.target)
            out["param"] = f"nprobe (nlist {nlist})"
        ok = [r for r in out["sweep"] if r["recall_at_10"] >= args.target]
        out["chosen"] = ok[0] if ok else None
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def load_worker(method: str, d: Path, flag: str) -> dict:
    """Open a written index with one set of IO flags in a fresh process: time and memory."""
    import torch  # noqa: F401
    import faiss

    flags = {"none": 0, "IO_FLAG_MMAP": faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY,
             "IO_FLAG_MMAP_IFC": faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY}[flag]
    before = mem()
    t = time.perf_counter()
    try:
        index = faiss.read_index(str(d / f"{method}.faiss"), flags)
    except RuntimeError as e:
        return {"method": method, "flag": flag, "error": str(e).splitlines()[0][:120]}
    load_s = time.perf_counter() - t
    after = mem()
    q = np.load(d / "queries.npy")[:20]
    if hasattr(index, "nprobe"):
        index.nprobe = 8
    t = time.perf_counter()
    index.search(q, K)
    first = 1000 * (time.perf_counter() - t) / len(q)
    return {"method": method, "flag": flag, "load_s": round(load_s, 3),
            "anon_mb": round(after["RssAnon"] - before["RssAnon"], 1),
            "file_mb": round(after["RssFile"] - before["RssFile"], 1), "first_ms_per_query": round(first, 2)}


def report(res: dict) -> str:
    from rag.vectorstore import EF_SEARCH as PRODUCT_EF

    lines = [f"scale run: {res['n']:,} {res['data']} vectors, dim {res['dim']}, {res['queries']} queries, "
             f"target recall@10 >= {res['target']}",
             "| index | build s | index mem MB | file MB | setting | recall@10 | p50 ms | p95 ms |",
             "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for m in res["methods"]:
        if m["method"] == "flat":
            rows = [("exact", m)]
        elif "sweep" not in m:  # the product's tuning found no efSearch and kept exact search
            s = m["as_shipped"]
            lines.append(f"| {m['method']} | {m['build_s']} | {m['index_mem_mb']} | {m['file_mb']} | as shipped: "
                         f"exact (HNSW recall@10 {s.get('hnsw_recall_at_10')} at efSearch {PRODUCT_EF[-1]}) | "
                         f"{s['recall_at_10_bench_queries']:.3f} | | |")
            continue
        else:
            rows = [(f"{m['param']}={r['param']}" + (" (chosen)" if r == m.get("chosen") else ""), r)
                    for r in m["sweep"]]
        for i, (setting, r) in enumerate(rows):
            head = (f"| {m['method']} | {m['build_s']} | {m['index_mem_mb']} | {m['file_mb']} |" if i == 0
                    else "| | | | |")
            lines.append(f"{head} {setting} | {r['recall_at_10']:.3f} | {r['p50_ms']} | {r['p95_ms']} |")
        if m["method"] != "flat" and not m.get("chosen"):
            lines.append(f"| {m['method']} | | | | no setting tried reaches {res['target']} | | | |")
        if "as_shipped" in m:
            s = m["as_shipped"]
            lines.append(f"| hnsw as shipped | | | | M={s['M']} efC={s['ef_construction']} efSearch={s['ef_search']} "
                         f"(tuned recall {s['recall_at_10']}), k={s['search_k']} | "
                         f"{s['recall_at_10_bench_queries']:.3f} | | |")
    lines += ["", "| opened with | index | load s | anon RSS MB | file-backed RSS MB |", "| --- | --- | ---: | ---: | ---: |"]
    for ld in res["loads"]:
        if "error" in ld:
            lines.append(f"| {ld['flag']} | {ld['method']} | error: {ld['error']} | | |")
        else:
            lines.append(f"| {ld['flag']} | {ld['method']} | {ld['load_s']} | {ld['anon_mb']} | {ld['file_mb']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000, help="vectors in the base set (default 1,000,000)")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--data", default="random", help="random | clustered | path to an (N, dim) .npy")
    p.add_argument("--queries", type=int, default=1000, help="queries for recall (default 1000)")
    p.add_argument("--latency-queries", type=int, default=200, help="single-query timings per setting")
    p.add_argument("--methods", default="flat,hnsw,ivf")
    p.add_argument("--nlist", type=int, default=0, help="IVF lists (default sqrt(n))")
    p.add_argument("--target", type=float, default=0.95, help="recall@10 a setting must reach")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench/results/scale.json")
    p.add_argument("--keep", action="store_true", help="keep the generated vectors and index files")
    p.add_argument("--worker", nargs=2, metavar=("METHOD", "DIR"), help=argparse.SUPPRESS)
    p.add_argument("--load", nargs=3, metavar=("METHOD", "DIR", "FLAG"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        emit(worker(a.worker[0], Path(a.worker[1]), a))
        return 0
    if a.load:
        emit(load_worker(a.load[0], Path(a.load[1]), a.load[2]))
        return 0
    tag = Path(a.data).stem if a.data not in ("random", "clustered") else a.data
    d = WORK / "scale" / f"{tag}-{a.n}-{a.dim}-{a.queries}-{a.seed}"
    t = time.perf_counter()
    make_data(a.data, a.n, a.dim, a.queries, a.seed, d)
    n = len(np.load(d / "base.npy", mmap_mode="r"))
    print(f"data ready in {time.perf_counter() - t:.1f}s: {d}", file=sys.stderr)
    methods = ["flat"] + [m for m in a.methods.split(",") if m and m != "flat"]
    res = {"machine": machine(), "data": a.data, "n": n, "dim": a.dim, "queries": a.queries,
           "target": a.target, "command": "python bench/scale.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "methods": [], "loads": []}
    common = ["bench/scale.py", "--latency-queries", str(a.latency_queries), "--target", str(a.target),
              "--nlist", str(a.nlist)]
    for m in methods:
        print(f"building {m} ...", file=sys.stderr, flush=True)
        res["methods"].append(run_worker([*common, "--worker", m, str(d)]))
        print(json.dumps(res["methods"][-1]), file=sys.stderr)
    for m in methods:
        for flag in ("none", "IO_FLAG_MMAP", "IO_FLAG_MMAP_IFC"):
            res["loads"].append(run_worker([*common, "--load", m, str(d), flag]))
    table = report(res)
    print(table)
    res["table"] = table
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out}")
    if not a.keep:
        for f in d.glob("*.faiss"):
            f.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
