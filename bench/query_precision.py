"""SciFact nDCG@10 with question vectors from each query runtime, over one cached index (the product
default: sentence vectors on), so only the question's embedding differs between rows.

    python bench/query_precision.py                       # ../shared/benchmarks/scifact
    python bench/query_precision.py --data DIR --limit 100

Rows: ONNX fp32 and int8 (the torch-free question path, rag/onnx_embed.py), torch fp32 and torch int8
(the old path: quantize_dynamic of the Linear layers). Issue 19: int8 must stay within 0.003 of fp32.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, machine  # noqa: E402

RUNTIMES = {"onnx fp32": (True, "fp32"), "onnx int8": (True, "int8"), "torch fp32": (False, "fp32"),
            "torch int8": (False, "int8")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "benchmarks" / "scifact"))
    p.add_argument("--limit", type=int, default=None, help="only the first N documents")
    p.add_argument("--out", default="bench/results/query_precision.json")
    a = p.parse_args(argv)
    import torch  # noqa: F401  (torch before faiss: one OpenMP runtime)

    from rag.beir import cached_index, doc_run, file_stem, read_beir, score
    from rag.config import load_settings
    from rag.embed import SentenceTransformerEmbedder

    data = Path(a.data)
    corpus, queries, qrels = read_beir(data, a.limit, "test")
    rag, _ = cached_index(load_settings(), data, corpus, sentences=True)
    s = rag.settings
    ids = {file_stem(d): d for d in corpus}
    rows = {}
    for name, (onnx, precision) in RUNTIMES.items():
        rag._embedder = SentenceTransformerEmbedder(s.model, s.batch_size, s.embed_precision, precision, s.cache_dir,
                                                    onnx=onnx)
        emb = rag.embedder
        for q in list(queries.values())[:5]:
            emb.embed_query(q)  # warm: sessions / quantised copy made
        ms = []
        for q in list(queries.values())[:100]:
            t = time.perf_counter()
            emb.embed_query(q)
            ms.append(1000 * (time.perf_counter() - t))
        metrics = score(qrels, doc_run(rag, queries, s.mode, ids=ids))
        rows[name] = {"ndcg@10": round(metrics["ndcg@10"], 4), "recall@100": round(metrics["recall@100"], 4),
                      "embed_query_p50_ms": round(statistics.median(ms), 2)}
        print(f"{name}: {rows[name]}", file=sys.stderr, flush=True)
    lines = [f"{data.name}: {len(queries)} queries, hybrid, sentence vectors on; question vectors from:",
             "| runtime | nDCG@10 | recall@100 | embed one question p50 ms |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {n} | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} | {r['embed_query_p50_ms']} |" for n, r in rows.items()]
    gap = rows["onnx fp32"]["ndcg@10"] - rows["onnx int8"]["ndcg@10"]
    lines.append(f"onnx int8 vs fp32: {gap:+.4f} nDCG@10 lower (target: within 0.003): {'met' if gap <= 0.003 else 'MISSED'}")
    print("\n".join(lines))
    out = ROOT / a.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "machine": machine(), "table": "\n".join(lines)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
