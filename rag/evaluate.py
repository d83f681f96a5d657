"""`rag eval`: score retrieval and answers on eval/gold.jsonl and gate them against eval/baseline.json.

Evidence units: each gold quote is located in its document; quotes that touch (only whitespace
between them) form one unit, since two consecutive sentences are one piece of evidence. A
retrieved passage (a chunk, or adjacent chunks the retriever merged) is relevant when it overlaps
a unit no better-ranked passage already covered, so recall@k is "share of the evidence in the
top k" and does not depend on where chunk boundaries fall.
Quotes that no longer occur in their document make the question stale: it is named, not scored.

Follow-ups (kind "followup") carry the earlier turn as `history` and are asked with it,
`rag.ask(question, history=...)`. `Rag.search` takes no history, so their retrieval metrics score
the passages the answer actually used (`answer.hits`, retrieved for the condensed standalone
question) instead of a separate search of the bare follow-up, which would mostly miss.

Answer metrics beyond the gate's originals: `answer/short_answer_match` (the answer's
`short_answer`, when the pipeline provides one, equals or contains the gold short answer),
`followup/contains`, `refusal/false_refusals` (answerable questions refused), and every
answer/refusal metric again per split as `dev/...` (odd ids, for tuning) and `heldout/...` (even ids).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from pathlib import Path

from . import explain
from .errors import RagError
from .gold import KINDS, Gold, contains, evidence, load_gold, normalise, overlaps  # noqa: F401 (public names)
from .eval_gate import TOLERANCE_NOTE, compare, read_baseline

K = 10  # retrieval depth scored
CUTOFFS = (1, 3, 5, 10)
def score_question(rag, g: Gold, spans: list) -> tuple[dict, dict, dict, float]:
    """(record, passage run, document run, ask seconds) for one question.

    A follow-up is asked with its history and its retrieval is scored on the passages the answer
    used (`search` takes no history); any other question on its own `search` to depth K.
    """
    started = time.perf_counter()
    ans = rag.ask(g.question, history=g.history) if g.history else rag.ask(g.question)
    seconds = time.perf_counter() - started
    hits = list(ans.hits)[:K] if g.history else rag.search(g.question, k=K)
    prun, drun, credited = {}, {}, set()
    for h in hits:
        c = h.chunk
        new = [i for i in overlaps(c.doc_id, c.start, c.end, g.doc_id, spans) if i not in credited]
        credited.update(new)
        # A chunk covering two new units takes two consecutive places (rare; only non-touching quotes).
        for item in [f"E{i}" for i in new] or [f"{c.doc_id}:{c.start}"]:
            prun[item] = 1.0 / (len(prun) + 1)  # strictly falling: ranx must keep this order
        drun.setdefault(c.doc_id, 1.0 / (len(drun) + 1))
    hit_rank = next((h.rank for h in hits if overlaps(h.chunk.doc_id, h.chunk.start, h.chunk.end, g.doc_id, spans)),
                    None)
    cites = [[c.doc_id, c.start, c.end, bool(overlaps(c.doc_id, c.start, c.end, g.doc_id, spans))]
             for c in ans.citations]
    rec = {"kind": g.kind, "answerable": g.answerable,
           "hit_rank": hit_rank if g.answerable else None,
           "doc_rank": next((h.rank for h in hits if h.chunk.doc_id == g.doc_id), None) if g.answerable else None,
           "covered": [len(credited), len(spans)] if g.answerable else None,
           "top5": [[h.chunk.doc_id, h.chunk.start, h.chunk.end] for h in hits[:5]],
           "answer_ok": (not ans.refused and contains(ans.text, g.answer)) if g.answerable else None,
           "short_ok": _short_ok(ans, g.short_answer) if g.answerable and g.short_answer else None,
           "refused": ans.refused, "citations": cites,
           "citation_precision": round(sum(c[3] for c in cites) / len(cites), 4) if cites and g.answerable else None}
    return rec, prun, drun, seconds


def _short_ok(ans, gold_short: str) -> bool | None:
    """The answer's short answer equals or contains the gold one; None while Answer has no such field."""
    if not hasattr(ans, "short_answer"):
        return None
    got = getattr(ans, "short_answer", "") or ""
    return not ans.refused and bool(got) and contains(got, gold_short)


def ranx_scores(qrels: dict, run: dict, metrics: list[str], digits: int | None = 4) -> dict[str, float]:
    import warnings

    from ranx import Qrels, Run, evaluate

    if not qrels:
        return {m: None for m in metrics}
    run = {q: (run.get(q) or {"\u2205": 0.0}) for q in qrels}  # ranx rejects empty rankings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's uint64 cast notice inside ranx
        out = evaluate(Qrels(qrels), Run(run), metrics, make_comparable=True)
    return {m: float(out[m]) if digits is None else round(float(out[m]), digits) for m in metrics}


def run_eval(rag, gold: list[Gold]) -> dict:
    """Score every question: metrics, recall@k curves, per-question records and stale questions."""
    import numpy as np

    documents = rag.index.documents
    rag.ask(gold[0].question if gold else "warm up")  # model load is not question latency
    questions, stale, runs, latencies = {}, [], {"passage": ({}, {}), "document": ({}, {})}, []
    for g in gold:
        spans, why = evidence(g, documents) if g.answerable else ([], "")
        if why:
            stale.append({"id": g.id, "question": g.question, "reason": why})
            continue
        rec, prun, drun, seconds = score_question(rag, g, spans)
        latencies.append(1000 * seconds)
        questions[g.id] = dict(rec, latency_ms=round(1000 * seconds, 1))
        if g.answerable:
            runs["passage"][0][g.id], runs["passage"][1][g.id] = {f"E{i}": 1 for i in range(len(spans))}, prun
            runs["document"][0][g.id], runs["document"][1][g.id] = {g.doc_id: 1}, drun
    names = [f"hit_rate@{k}" for k in CUTOFFS] + [f"recall@{k}" for k in range(1, K + 1)] + ["mrr@10", "ndcg@10"]
    metrics, curves = {}, {}
    for level, (qrels, run) in runs.items():
        got = ranx_scores(qrels, run, names)
        curves[level] = [got[f"recall@{k}"] for k in range(1, K + 1)]
        for m in names:
            if not m.startswith("recall@") or int(m.split("@")[1]) in CUTOFFS:
                metrics[f"{level}/{m.replace('hit_rate', 'hit')}"] = got[m]
    metrics.update(answer_metrics(questions.values()))
    followups = [r for r in questions.values() if r["kind"] == "followup" and r["answerable"]]
    metrics["followup/contains"] = _ratio(sum(bool(r["answer_ok"]) for r in followups), len(followups))
    for split in ("dev", "heldout"):
        part = [r for q, r in questions.items() if split_of(q) == split]
        metrics.update({f"{split}/{k}": v for k, v in answer_metrics(part).items()})
    for p in (50, 95):
        metrics[f"latency/p{p}_ms"] = round(float(np.percentile(latencies, p)), 1) if latencies else None
    from .pipeline import Rag

    by_stage = explain.diagnose_failures(rag, gold, questions) if isinstance(rag, Rag) else {}
    return {"k": K, "metrics": metrics, "curves": curves, "stale": stale, "questions": questions,
            "failures_by_stage": by_stage}


def answer_metrics(records) -> dict[str, float | None]:
    """Answer and refusal metrics over per-question records (all questions, or one split)."""
    records = list(records)
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    cites = [c for r in answerable for c in r["citations"]]
    refused_right = sum(r["refused"] for r in unanswerable)
    refused_wrong = sum(r["refused"] for r in answerable)
    shorts = [r.get("short_ok") for r in answerable if "short_ok" in r and r["short_ok"] is not None]
    return {"answer/contains": _ratio(sum(bool(r["answer_ok"]) for r in answerable), len(answerable)),
            "answer/citation_precision": _ratio(sum(c[3] for c in cites), len(cites)),
            "answer/short_answer_match": _ratio(sum(shorts), len(shorts)),
            "refusal/precision": _ratio(refused_right, refused_right + refused_wrong) if unanswerable else None,
            "refusal/recall": _ratio(refused_right, len(unanswerable)),
            "refusal/false_refusals": _ratio(refused_wrong, len(answerable))}


def split_of(qid: str) -> str | None:
    """'dev' for odd-numbered ids, 'heldout' for even ones, None when the id has no number."""
    m = re.search(r"(\d+)$", qid)
    return None if not m else "dev" if int(m.group(1)) % 2 else "heldout"


def _ratio(a: float, b: int) -> float | None:
    return round(a / b, 4) if b else None


def describe(rag, gold_path: Path, gold: list[Gold]) -> dict:
    from .config import tuning

    idx = rag.index
    # every tuning knob, so `--check` can say which setting moved
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "settings": tuning(rag.settings),
            "gold": {"path": str(gold_path), "items": len(gold),
                     "hash": hashlib.sha256(Path(gold_path).read_bytes()).hexdigest()[:16]},
            "corpus": {d["id"]: d["hash"] for d in idx.manifest["documents"]},
            "index": {"built_at": idx.manifest.get("built_at"), "chunks": len(idx.chunks)}}


def check_index_current(settings) -> None:
    """The gate must score the corpus as it is now, not an index built before the edit."""
    from .load import load_corpus
    from .store import open_index

    docs, _ = load_corpus(Path(settings.corpus_dir))
    indexed = {d["id"]: d["hash"] for d in open_index(settings).manifest["documents"]}
    now = {d.id: d.hash for d in docs}
    changed = sorted(k for k in set(now) | set(indexed) if now.get(k) != indexed.get(k))
    if changed:
        raise RagError(f"{settings.corpus_dir}/ changed since {settings.index_dir}/ was built "
                       f"({', '.join(changed[:5])}); run `rag index` first")


def run_cli(args, settings, embedder=None) -> int:
    """`rag eval [--check] [--update-baseline]`: score, write reports, print the table, gate."""
    from .eval_report import dumps, regression_lines, summary_table, write_reports
    from .pipeline import Rag

    gold_path = Path(args.gold)
    gold = load_gold(gold_path)
    check_index_current(settings)
    rag = Rag(settings, embedder=embedder)
    report = dict(describe(rag, gold_path, gold), **run_eval(rag, gold))
    baseline_path = gold_path.with_name("baseline.json")
    stored = read_baseline(baseline_path)
    base = stored.get("modes", {}).get(settings.mode)
    if args.check and base is None:
        raise RagError(f"{baseline_path} has no baseline for mode {settings.mode!r}; "
                       f"run `rag eval --update-baseline --mode {settings.mode}`")
    report["gate"] = compare(report, base)
    paths = write_reports(report, base, gold_path.parent / "reports")
    print(summary_table(report, base))
    if report["failures_by_stage"]:
        print("failures by stage (diagnose at): " + ", ".join(f"{n} {s}" for s, n in report["failures_by_stage"].items()))
    if base:
        moved = {k: (v, report["settings"][k]) for k, v in base["settings"].items() if report["settings"].get(k) != v}
        if moved:
            print("settings differ from the baseline: " + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in moved.items()))
    for x in report["stale"]:
        print(f"stale: {x['id']}: {x['reason']}; fix {gold_path} or restore the text", file=sys.stderr)
    print(f"reports: {', '.join(map(str, paths))}")
    if args.update_baseline:
        if report["stale"]:
            raise RagError(f"{len(report['stale'])} stale gold questions ({report['stale'][0]['id']}, ...); "
                           f"fix {gold_path} before updating the baseline")
        entry = {k: report[k] for k in ("created", "settings", "gold", "corpus", "metrics", "curves")}
        entry["questions"] = {q: {k: v for k, v in r.items() if k != "latency_ms"}
                              for q, r in report["questions"].items()}
        stored = {"note": "written by `rag eval --update-baseline`; one entry per retrieval mode",
                  "tolerance": TOLERANCE_NOTE, "modes": dict(stored.get("modes", {}), **{settings.mode: entry})}
        baseline_path.write_text(dumps(stored) + "\n", encoding="utf-8")
        print(f"baseline for mode {settings.mode} written to {baseline_path}")
    if not args.check:
        return 0
    gate = report["gate"]
    if gate["regressed"] and not gate["passed"]:
        print("\nquestions that regressed (top-5 before / now):")
        print("\n".join(regression_lines(report)))
    elif gate["regressed"]:
        print(f"{len(gate['regressed'])} questions got worse within tolerance: "
              f"{', '.join(r['id'] for r in gate['regressed'])} (details in {paths[1]})")
    for f in gate["failures"]:
        print(f"FAIL {f['metric']}: {f['now']} (baseline {f['baseline']}, limit {f['limit']})", file=sys.stderr)
    print(f"gate: {'PASS' if gate['passed'] else 'FAIL'}. {TOLERANCE_NOTE}")
    return 0 if gate["passed"] else 1
