"""Our pipeline vs the tutorial LangChain pipeline, side by side, in one run, same corpus and model.

    python bench/compare.py                              # both corpora, full SciFact (~45 min on 2 cores)
    python bench/compare.py --corpus scifact --limit 300 # quick run on 300 abstracts
    python bench/compare.py --corpus bundled

Systems (each build and each query phase in its own fresh process, see bench/systems.py):
  ours       this product, index_sentences=False (chunk vectors + BM25; sentences embedded per question)
  ours-sent  this product's default, index_sentences=True (every sentence embedded at index time)
  ours-fp32  `ours` with bfloat16 batches off: what bf16 costs in nDCG@10 (where the CPU has it)
  langchain  RecursiveCharacterTextSplitter(1000, 200) + HuggingFaceEmbeddings (same packaged model,
             normalised) + langchain_community FAISS, similarity_search
Prints a markdown table per corpus and the targets of issue 19 (issue 16's for warm ask); writes
everything to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import coldstart  # noqa: E402
from bench.common import ROOT, machine, prepare_corpus, run_worker  # noqa: E402

SYSTEMS = ("ours", "ours-sent", "ours-fp32", "langchain")
TARGETS = {"build_ratio": 2.0, "reindex_fraction": 0.02, "search_p50_ms": 5.0, "build_rss_mb": 1024.0,
           "index_vs_langchain": 2.0, "cold_ask_s": 2.0}
ASK_P50_MS = {"scifact": 250.0, "bundled": 150.0}  # issue 16: the reader may spend this on quality


def run_corpus(name: str, limit: int | None, systems: list[str], max_queries: int, cold_runs: int) -> dict:
    info = prepare_corpus(name, limit)
    root = Path(info["root"])
    print(f"== {name}: {info['docs']} documents, {info['queries']} queries, in {root}", file=sys.stderr)
    out = {"corpus": info, "systems": {}}
    for system in systems:
        t = time.perf_counter()
        build = run_worker(["bench/systems.py", "build", system, str(root), info["changed_doc"]])
        # ours-fp32 is there for its nDCG@10; a few timed queries are enough
        n = min(max_queries, 20) if system == "ours-fp32" else max_queries
        query = run_worker(["bench/systems.py", "query", system, str(root), "--max-queries", str(n)])
        out["systems"][system] = {"build": build, "query": query}
        print(f"   {system}: built in {build['build_s']}s, phase took {time.perf_counter() - t:.0f}s",
              file=sys.stderr, flush=True)
    ours = "ours-sent" if "ours-sent" in systems else "ours" if "ours" in systems else None
    if ours and cold_runs:
        question = next(iter(json.loads((root / "queries.json").read_text()).values()))
        extra = {"RAG_INDEX_SENTENCES": "true" if ours == "ours-sent" else "false"}
        lc = root / "index-langchain" if "langchain" in systems else None
        out["coldstart"] = coldstart.run(root / f"index-{ours}", root / "corpus", question, cold_runs, lc, extra)
        out["coldstart"]["system"] = ours
    out["targets"] = targets(out)
    return out


def targets(res: dict) -> list[dict]:
    """Each target of issue 19 with the value measured in this run."""
    sysres, rows = res["systems"], []
    lc = sysres.get("langchain")
    for name in ("ours", "ours-sent", "ours-fp32"):
        if name not in sysres:
            continue
        b, q = sysres[name]["build"], sysres[name]["query"]
        if lc:
            ratio = b["docs_per_s"] / lc["build"]["docs_per_s"]
            ours_q = q.get("quality_hybrid", {}).get("ndcg@10")
            lc_q = lc["query"].get("quality_dense", {}).get("ndcg@10")
            quality_ok = ours_q is None or lc_q is None or ours_q >= lc_q
            rows.append({"target": f"{name}: build docs/s >= {TARGETS['build_ratio']}x langchain, nDCG@10 >= langchain",
                         "value": f"{ratio:.2f}x" + (f", nDCG {ours_q:.3f} vs {lc_q:.3f}" if ours_q is not None and lc_q is not None else ""),
                         "met": ratio >= TARGETS["build_ratio"] and quality_ok})
            size = b["index_mb"] / lc["build"]["index_mb"]
            rows.append({"target": f"{name}: index on disk <= {TARGETS['index_vs_langchain']}x langchain's",
                         "value": f"{size:.2f}x ({b['index_mb']} vs {lc['build']['index_mb']} MB)",
                         "met": size <= TARGETS["index_vs_langchain"]})
        rows.append({"target": f"{name}: peak RSS during the build <= {TARGETS['build_rss_mb']:.0f} MiB (1.0 GiB)",
                     "value": f"{b['build_peak_rss_mb']} MiB", "met": b["build_peak_rss_mb"] <= TARGETS["build_rss_mb"]})
        frac = b["reindex_s"] / b["build_s"]
        if b["docs"] < 10:  # one of one documents changed: the ratio says nothing
            frac = None
        rows.append({"target": f"{name}: re-index one changed doc <= 2% of full build",
                     "value": f"{100 * frac:.1f}% ({b['reindex_s']}s of {b['build_s']}s)" if frac is not None
                     else f"n/a: corpus has {b['docs']} document(s)",
                     "met": None if frac is None else frac <= TARGETS["reindex_fraction"]})
        rows.append({"target": f"{name}: warm hybrid search p50 <= {TARGETS['search_p50_ms']:.0f} ms",
                     "value": f"{q['search']['p50_ms']} ms", "met": q["search"]["p50_ms"] <= TARGETS["search_p50_ms"]})
        ask_target = ASK_P50_MS.get(res["corpus"]["name"], 250.0)
        rows.append({"target": f"{name}: warm extractive ask p50 <= {ask_target:.0f} ms", "value": f"{q['ask']['p50_ms']} ms",
                     "met": q["ask"]["p50_ms"] <= ask_target})
    if "coldstart" in res:
        c = res["coldstart"]
        ask = c["times"]["rag ask"]["median_s"]
        rows.append({"target": f"{c['system']}: cold `rag ask` <= {coldstart.TARGET_S} s"
                               + (f" and <= {coldstart.TARGET_VS_LANGCHAIN}x LangChain's cold search" if "vs_langchain" in c else ""),
                     "value": f"{ask}s" + (f", {c['vs_langchain']:.2f}x ({c['times']['langchain search']['median_s']}s)"
                                           if "vs_langchain" in c else ""), "met": c["met"]})
    return rows


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        v = f"{v:.3f}" if unit == "q" else f"{v:,.2f}" if v < 100 else f"{v:,.0f}"
    return f"{v}{unit if unit != 'q' else ''}"


def table(res: dict) -> str:
    names = list(res["systems"])
    S = res["systems"]
    label = {"ours": "ours (chunks only)", "ours-sent": "ours (+sentence vectors, default)",
             "ours-fp32": "ours (chunks only, fp32)",
             "langchain": "LangChain tutorial"}

    def row(title, get, unit=""):
        cells = []
        for n in names:
            try:
                cells.append(_fmt(get(S[n]), unit))
            except (KeyError, TypeError):
                cells.append("–")
        return f"| {title} | " + " | ".join(cells) + " |"

    c = res["corpus"]
    lines = [f"### {c['name']}: {c['docs']} documents, {c['queries']} queries",
             "| | " + " | ".join(label.get(n, n) for n in names) + " |",
             "| --- |" + " ---: |" * len(names),
             row("chunks", lambda s: s["build"]["chunks"]),
             row("texts embedded (chunks + sentences)", lambda s: s["build"]["embedded"]),
             row("model load (s, not in build)", lambda s: s["build"]["model_load_s"]),
             row("full build (s)", lambda s: s["build"]["build_s"]),
             row("build CPU time, user+sys (s)", lambda s: s["build"]["build_cpu_s"]),
             row("docs/s", lambda s: s["build"]["docs_per_s"]),
             row("chunks/s", lambda s: s["build"]["chunks_per_s"]),
             row("re-index 1 changed doc (s)", lambda s: s["build"]["reindex_s"]),
             row("re-index / full build", lambda s: f"{100 * s['build']['reindex_s'] / s['build']['build_s']:.1f}%"),
             row("index on disk (MB)", lambda s: s["build"]["index_mb"]),
             row("peak RSS build (MB)", lambda s: s["build"]["build_peak_rss_mb"]),
             row("peak RSS build + re-index, same process (MB)", lambda s: s["build"]["reindex_peak_rss_mb"]),
             row("peak RSS serve+eval (MB)", lambda s: s["query"]["serve_peak_rss_mb"]),
             row("warm search p50 / p95 (ms)", lambda s: f"{s['query']['search']['p50_ms']} / {s['query']['search']['p95_ms']}"),
             row("warm ask p50 / p95 (ms)", lambda s: f"{s['query']['ask']['p50_ms']} / {s['query']['ask']['p95_ms']}"),
             row("search p50 by stage: embed / faiss / bm25 / sentences (ms)",
                 lambda s: " / ".join(str(v) for v in s["query"]["search_stages_p50_ms"].values())),
             row("bfloat16 batches", lambda s: ({True: "yes", False: "no"}[s["build"]["bf16"]]
                                                + (f" ({s['build']['runtime']})" if s["build"].get("runtime") else "")))]
    if c.get("scored"):
        lines += [row("nDCG@10 hybrid (product mode)", lambda s: s["query"]["quality_hybrid"]["ndcg@10"], "q"),
                  row("nDCG@10 dense", lambda s: s["query"]["quality_dense"]["ndcg@10"], "q"),
                  row("recall@100 (product mode)", lambda s: (s["query"].get("quality_hybrid") or s["query"]["quality_dense"])["recall@100"], "q")]
    if "coldstart" in res:
        t = res["coldstart"]["times"]
        lines.append("")
        lines.append(f"cold start (fresh process, median of {res['coldstart']['runs']}): "
                     + ", ".join(f"{k} {v['median_s']}s" for k, v in t.items()))
    lines += ["", "| target | measured | met |", "| --- | --- | --- |"]
    lines += [f"| {r['target']} | {r['value']} | {'–' if r['met'] is None else 'yes' if r['met'] else 'NO'} |"
              for r in res["targets"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", choices=["scifact", "bundled", "both"], default="both")
    p.add_argument("--limit", type=int, default=None, help="only N documents (SciFact: with the relevant ones)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, from {', '.join(SYSTEMS)}")
    p.add_argument("--max-queries", type=int, default=100, help="queries timed for latency (nDCG uses all)")
    p.add_argument("--cold-runs", type=int, default=5, help="fresh-process runs per cold-start command (0: skip)")
    p.add_argument("--out", default="bench/results/compare.json")
    p.add_argument("--render", metavar="JSON", help="only print the tables of an earlier run's JSON")
    a = p.parse_args(argv)
    if a.render:
        res = json.loads(Path(a.render).read_text())
        for v in res["corpora"].values():
            v["targets"] = targets(v)
            print(table(v) + "\n")
        m = res["machine"]
        print(f"machine: {m['nproc']} x {m['cpu']}, load average at start {m['loadavg_at_start']}; command: {res['command']}")
        return 0
    systems = [s for s in a.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"unknown system(s) {', '.join(sorted(unknown))}; use {', '.join(SYSTEMS)}")
    corpora = ["scifact", "bundled"] if a.corpus == "both" else [a.corpus]
    res = {"machine": machine(), "command": "python bench/compare.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "corpora": {}}
    started = time.perf_counter()
    for name in corpora:
        res["corpora"][name] = run_corpus(name, a.limit, systems, a.max_queries, a.cold_runs)
        print(table(res["corpora"][name]) + "\n", flush=True)
    res["seconds"] = round(time.perf_counter() - started, 1)
    m = res["machine"]
    print(f"machine: {m['nproc']} x {m['cpu']}, load average at start {m['loadavg_at_start']}; "
          f"run took {res['seconds']:.0f}s")
    out = ROOT / a.out
    out.parent.mkdir(parents=True, exist_ok=True)
    res["tables"] = {k: table(v) for k, v in res["corpora"].items()}
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
