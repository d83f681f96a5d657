"""Calibrate the refusal threshold on the gold set: `python -m rag.calibrate [gold.jsonl]`.

See the REFUSAL note in rag/answer.py for the rule.
"""

from __future__ import annotations

import json
import sys

from .answer import previous_answer, ranked, refusal_gap
from .followup import standalone
from .pipeline import Rag

TARGET_ANSWERED = 0.95


def evidence_scores(rag: Rag, gold: list[dict]) -> list[tuple[bool, float, bool]]:
    """(answerable, evidence score, refused by a written rule) per item, as `Rag.ask` sees them: a
    follow-up is rewritten and its previous answer ranks lower (the gold history holds that answer)."""
    out = []
    for item in gold:
        history = [tuple(turn) for turn in item.get("history") or ()]
        question = standalone(item["question"], history)
        qv = rag.embedder.embed_query(question)
        hits = rag.retrieve(rag.index, question, query_vector=qv)
        q, units = ranked(rag.index, hits, question, qv, rag.embedder,
                          previous_answer(item["question"], question, history))
        ruled = bool(units) and bool(refusal_gap(rag.index, q, units, rag.settings.refusal_threshold, rag.embedder))
        out.append((bool(item["answerable"]), units[0].score if units else 0.0, ruled))
    return out


def choose_threshold(scores: list[tuple], target: float = TARGET_ANSWERED) -> tuple[float, float, float]:
    """(threshold, share of answerable answered, share of unanswerable refused): the highest threshold
    that still answers `target` of the answerable questions, counting those the written rules refuse
    anyway (a score without its rule flag counts as not refused by one)."""
    rows = [(a, x, bool(r[0]) if r else False) for a, x, *r in scores]
    answerable = [x for a, x, ruled in rows if a]
    free = sorted(x for a, x, ruled in rows if a and not ruled)
    budget = int(len(answerable) * (1 - target)) - (len(answerable) - len(free))
    keep = free[max(budget, 0)] if free else 0.0
    answered = sum(x >= keep for x in free) / max(1, len(answerable))
    refused = sum(x < keep or ruled for a, x, ruled in rows if not a) / max(1, len(rows) - len(answerable))
    return round(keep - 1e-3, 3), answered, refused


def main(argv: list[str]) -> int:
    path = argv[0] if argv else "eval/gold.jsonl"
    gold = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    gold = [g for g in gold if int(str(g["id"]).lstrip("q") or 0) % 2 == 1]  # the dev split (odd ids) only
    rag = Rag()
    threshold, answered, refused = choose_threshold(evidence_scores(rag, gold))
    print(f"refusal_threshold={threshold}: answers {answered:.0%} of answerable, "
          f"refuses {refused:.0%} of unanswerable (current setting {rag.settings.refusal_threshold})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
