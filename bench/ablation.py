"""Retrieval ablation on both eval sets in one run: dense, BM25, hybrid, + title, + de-duplication.

    .venv/bin/python bench/ablation.py [--limit N] [--out bench/results/ablation.json]

Bundled set: `rag eval` metrics on eval/gold.jsonl (passage level). SciFact: nDCG@10 etc. through
`rag bench scifact`'s code. Indexes are cached under ~/.cache/rag-bench, so only the first run
embeds (the no-title SciFact index is the slow one: ~12k chunks).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS = [  # name, mode, embed_titles, dedup_threshold, merge_adjacent
    ("dense", "dense", False, 1.0, False),
    ("bm25", "bm25", False, 1.0, False),
    ("hybrid", "hybrid", False, 1.0, False),
    ("hybrid + title", "hybrid", True, 1.0, False),
    ("hybrid + title + dedup/merge (default)", "hybrid", True, 0.95, True),
]
BUNDLED = ["passage/hit@1", "passage/hit@5", "passage/mrr@10", "passage/ndcg@10", "answer/contains", "refusal/recall"]


def bundled(settings, rows, cache: Path) -> dict:
    from rag.evaluate import load_gold, run_eval
    from rag.pipeline import Rag

    gold = load_gold(ROOT / "eval" / "gold.jsonl")
    out = {}
    for name, mode, titles, dedup, merge in rows:
        s = settings.replace(corpus_dir=ROOT / "corpus", index_dir=cache / f"bundled-titles{titles}", mode=mode,
                             embed_titles=titles, dedup_threshold=dedup, merge_adjacent=merge)
        rag = Rag(s)
        rag.build(log=lambda *_: None)
        metrics = run_eval(rag, gold)["metrics"]
        out[name] = {m: metrics[m] for m in BUNDLED}
    return out


def scifact(settings, rows, limit) -> dict:
    from rag.pipeline import Rag
    from rag.beir import cache_dir, doc_run, read_beir, score, write_corpus

    data = ROOT.parent / "shared" / "benchmarks" / "scifact"
    corpus, queries, qrels = read_beir(data, limit)
    out = {}
    for name, mode, titles, dedup, merge in rows:
        s = settings.replace(embed_titles=titles)
        work = cache_dir(s, data / "corpus.jsonl")
        write_corpus(corpus, work / "corpus")
        s = s.replace(corpus_dir=work / "corpus", index_dir=work / "index", index_sentences=False, mode=mode,
                      dedup_threshold=dedup, merge_adjacent=merge)
        rag = Rag(s)
        t = time.perf_counter()
        rag.build(log=lambda m: print(m, file=sys.stderr))
        print(f"{name}: index ready in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        out[name] = score(qrels, doc_run(rag, queries, mode))
    return out


def main() -> int:
    import torch  # noqa: F401  (torch before faiss)

    from rag.config import load_settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=None, help="only the first N SciFact queries")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "ablation.json"))
    args = p.parse_args()
    settings = load_settings()
    cache = Path("~/.cache/rag-bench").expanduser()
    result = {"bundled": bundled(settings, ROWS, cache), "scifact": scifact(settings, ROWS, args.limit)}
    print("| configuration | bundled hit@1 | hit@5 | MRR@10 | nDCG@10 | answer contains | refusal recall "
          "| SciFact nDCG@10 | Recall@100 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, *_ in ROWS:
        b, f = result["bundled"][name], result["scifact"][name]
        print(f"| {name} | " + " | ".join(f"{b[m]:.3f}" for m in BUNDLED)
              + f" | {f['ndcg@10']:.3f} | {f['recall@100']:.3f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
