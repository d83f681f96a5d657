"""`rag bench scifact`: BEIR SciFact, the `rag bench beir` run (rag/beir.py) on the SciFact folder.

`rag bench scifact --rationales [--split test|dev]` instead asks each claim of rationales.jsonl
over the whole corpus (an index with sentence vectors) and reports the share of answers citing a
rationale sentence of an evidence abstract, the share citing an evidence abstract at all, the
refusal share and the p50 time per claim.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .beir import bench_beir, cached_index, file_stem, read_beir, write_corpus  # noqa: F401 (write_corpus: public)
from .config import Settings
from .errors import RagError


def bench_scifact(args, settings: Settings) -> int:
    if getattr(args, "rationales", False):
        return bench_rationales(args, settings)
    return bench_beir(args, settings)


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
    by_stem = {Path(d).stem: doc for d, doc in documents.items()}  # keyed, like citations, by file stem
    spans, missing = {}, 0
    for cid, c in claims.items():
        spans[cid] = {}
        for doc_id, sentences in c["evidence"].items():
            doc_id = file_stem(doc_id)
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
    data = Path(args.data)
    split = getattr(args, "split", None) or "test"
    claims = read_rationales(data, split, args.limit)
    corpus, _, _ = read_beir(data)
    rag, report = cached_index(settings, data, corpus, sentences=True)
    settings = rag.settings
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
