"""Index-time embedding throughput against this CPU's measured matmul ceiling (issue 19).

    python bench/throughput.py                  # SciFact chunk texts, the product's own embed_spans path
    python bench/throughput.py --texts 800 --repeat 5

1. The ceiling: the best GFLOP/s of torch matmuls on every core, in the build's precision (bfloat16
   where the CPU has it natively, else float32), at the model's own shapes (tokens x 384 @ 384 x 1536
   and back, 384 x 384) and at one large square. The best of these is the ceiling.
2. The product: `SentenceTransformerEmbedder.embed_spans` (what `rag index` runs: chunk vectors and
   their sentences' pooled vectors in one pass) over SciFact chunk texts, longest first, as `rag index`
   batches them. Useful FLOPs count real tokens only (padding is waste):
   per token and layer 24 d^2 (QKV, output, 4d feed-forward) + 4 L d (scores and weighted sum).
3. Prints tokens/s, GFLOP/s and the share of the ceiling (target >= 60%).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, SCIFACT, machine  # noqa: E402

TARGET = 0.60


def matmul_gflops(m: int, k: int, n: int, dtype, repeat: int) -> float:
    import torch

    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    with torch.inference_mode():
        for _ in range(3):
            a @ b
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            for _ in range(10):
                a @ b
            best = min(best, (time.perf_counter() - t) / 10)
    return 2 * m * k * n / best / 1e9


def ceiling(dtype, tokens: int, dim: int, repeat: int) -> dict:
    shapes = {f"{tokens}x{dim} @ {dim}x{4 * dim}": (tokens, dim, 4 * dim),
              f"{tokens}x{4 * dim} @ {4 * dim}x{dim}": (tokens, 4 * dim, dim),
              f"{tokens}x{dim} @ {dim}x{dim}": (tokens, dim, dim),
              "2048x2048 @ 2048x2048": (2048, 2048, 2048)}
    return {name: round(matmul_gflops(*s, dtype, repeat), 1) for name, s in shapes.items()}


def chunk_texts(n: int) -> list[str]:
    """The first n SciFact abstracts chunked as `rag index` chunks them (title prefix included)."""
    from rag.chunk import chunk_document, embed_text, load_tokenizer
    from rag.config import load_settings
    from rag.embed import model_dir
    from rag.types import Document

    s = load_settings(env={})
    tok = load_tokenizer(str(model_dir(s.model)))
    texts = []
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            text = row["text"]
            doc = Document(row["_id"], row.get("title") or row["_id"], text)
            for c in chunk_document(doc, tok, s.chunk_size, s.chunk_overlap):
                texts.append(embed_text(c.text, c.title, c.section, tok, s.embed_titles))
            if len(texts) >= n:
                break
    return texts[:n]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", type=int, default=1600, help="chunk texts embedded (SciFact)")
    p.add_argument("--repeat", type=int, default=5, help="timed rounds per matmul shape (best kept)")
    p.add_argument("--out", default="bench/results/throughput.json")
    a = p.parse_args(argv)
    import torch

    from rag.config import load_settings
    from rag.embed import SentenceTransformerEmbedder

    s = load_settings(env={})
    emb = SentenceTransformerEmbedder(s.model, s.batch_size, s.embed_precision, s.query_precision)
    model = emb.model
    dim, layers = emb.dim, model[0].auto_model.config.num_hidden_layers
    runtime = "openvino" if emb.vino is not None else "torch"  # the product's index-time path (rag/embed.py)
    dtype = torch.bfloat16 if emb.vino is not None or emb.bf16 else torch.float32
    texts = sorted(chunk_texts(a.texts), key=len, reverse=True)
    torch.set_num_threads(emb.threads)
    emb.embed_spans(texts[:32], [[] for _ in texts[:32]])  # warm-up
    enc = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
    lengths = [len(ids) for ids in enc]
    flops = sum(layers * (24 * dim * dim * n + 4 * n * n * dim) for n in lengths)
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        for i in range(0, len(texts), 64):  # as rag.index._embed_cached calls it
            emb.embed_spans(texts[i:i + 64], [[] for _ in texts[i:i + 64]])
        best = min(best, time.perf_counter() - t)
    tokens_s, gflops = sum(lengths) / best, flops / best / 1e9
    ceil = ceiling(dtype, emb.batch_size * 128, dim, a.repeat)
    top = max(ceil.values())
    share = gflops / top
    # for scale: the float32 ceiling, what a build without native bfloat16 could at best reach
    bf16 = dtype == torch.bfloat16
    fp32_top = max(ceiling(torch.float32, emb.batch_size * 128, dim, a.repeat).values()) if bf16 else top
    rows = {"precision": str(dtype).replace("torch.", ""), "runtime": runtime, "threads": emb.threads, "batch_size": emb.batch_size,
            "texts": len(texts), "tokens": sum(lengths), "mean_tokens": round(sum(lengths) / len(lengths), 1),
            "seconds": round(best, 2), "tokens_per_s": round(tokens_s), "model_gflops": round(gflops, 1),
            "matmul_gflops": ceil, "ceiling_gflops": top, "share_of_ceiling": round(share, 3),
            "fp32_ceiling_gflops": fp32_top,
            "target": TARGET, "met": share >= TARGET, "machine": machine()}
    lines = [f"Embedding throughput, {rows['precision']} on {runtime}, {emb.threads} threads, batch {emb.batch_size}, "
             f"{len(texts)} SciFact chunk texts ({rows['mean_tokens']} tokens each on average):",
             "| measure | value |", "| --- | ---: |",
             f"| tokens/s (real tokens, product's embed_spans) | {rows['tokens_per_s']:,} |",
             f"| model GFLOP/s (useful work) | {rows['model_gflops']} |"]
    lines += [f"| matmul {name}, GFLOP/s | {v} |" for name, v in ceil.items()]
    lines.append(f"| share of the ceiling ({top} GFLOP/s) | **{100 * share:.0f}%** (target >= {100 * TARGET:.0f}%: "
                 f"{'met' if rows['met'] else 'MISSED'}) |")
    if bf16:
        lines.append(f"| for scale: the float32 matmul ceiling, GFLOP/s | {fp32_top} ({gflops / fp32_top:.2f}x of it) |")
    print("\n".join(lines))
    out = ROOT / a.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(rows, table="\n".join(lines)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
