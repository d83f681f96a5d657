"""The eval gate: a report against the committed baseline. A quality metric may fall TOLERANCE
(absolute) below it (false refusals may rise that far above it), latency up to LATENCY_FACTOR x
baseline + LATENCY_SLACK_MS; questions whose outcome got worse are named with the passages they
retrieved before and now; stale gold quotes fail."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import RagError

TOLERANCE = 0.03  # absolute: a quality metric may fall this far below the baseline
LATENCY_FACTOR, LATENCY_SLACK_MS = 3.0, 50.0  # loose, machines differ: p <= 3 x baseline + 50 ms
LOWER_IS_BETTER = ("/false_refusals",)  # these fail when they RISE more than TOLERANCE above the baseline
TOLERANCE_NOTE = (f"A quality metric fails the gate when it falls more than {TOLERANCE} (absolute) below "
                  f"the baseline (false refusals: when they rise more than that above it); latency p50/p95 "
                  f"fail above {LATENCY_FACTOR:g} x baseline + "
                  f"{LATENCY_SLACK_MS:g} ms. Stale gold quotes also fail the gate.")


def compare(report: dict, base: dict | None) -> dict:
    """Failed metrics (beyond tolerance) and questions whose outcome got worse than the baseline."""
    failures, regressed = [], []
    if base:
        for name, was in base["metrics"].items():
            now = report["metrics"].get(name)
            if was is None or now is None:
                continue
            rises = name.startswith("latency/") or name.endswith(LOWER_IS_BETTER)  # lower is better
            limit = (LATENCY_FACTOR * was + LATENCY_SLACK_MS if name.startswith("latency/")
                     else was + TOLERANCE if rises else was - TOLERANCE)
            if (now > limit) if rises else (now < limit):
                failures.append({"metric": name, "baseline": was, "now": now, "limit": round(limit, 4)})
        for qid, now in report["questions"].items():
            was = base["questions"].get(qid)
            why = _worse(was, now, report.get("k", 10)) if was and was["answerable"] == now["answerable"] else []
            if why:
                regressed.append({"id": qid, "why": why, "before": was["top5"], "now": now["top5"]})
    failures += [{"metric": f"stale:{s['id']}", "baseline": None, "now": s["reason"], "limit": None}
                 for s in report["stale"]]
    return {"failures": failures, "regressed": regressed, "tolerance": TOLERANCE_NOTE,
            "baseline": bool(base), "passed": not failures}


def _worse(was: dict, now: dict, k: int) -> list[str]:
    why = []
    inf = k + 1
    if now["answerable"]:
        if (now["hit_rank"] or inf) > (was["hit_rank"] or inf):
            why.append(f"hit rank {was['hit_rank'] or 'miss'} -> {now['hit_rank'] or 'miss'}")
        if now["covered"][0] < was["covered"][0]:
            why.append(f"evidence in top {k} {was['covered'][0]}/{was['covered'][1]} -> {now['covered'][0]}")
        if now["refused"] and not was["refused"]:
            why.append("now refused")
        elif was["answer_ok"] and not now["answer_ok"]:
            why.append("answer no longer contains the expected answer")
        if None not in (was["citation_precision"], now["citation_precision"]) \
                and now["citation_precision"] < was["citation_precision"]:
            why.append(f"citation precision {was['citation_precision']} -> {now['citation_precision']}")
    elif was["refused"] and not now["refused"]:
        why.append("unanswerable question no longer refused")
    return why


def read_baseline(path: Path) -> dict:
    if not path.is_file():
        return {"modes": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise RagError(f"{path} is not valid JSON ({e}); run `rag eval --update-baseline`") from None
