"""Calibrate the refusal threshold on the gold set: `python -m rag.calibrate [gold.jsonl]`.

See the REFUSAL note in rag/answer.py for the rule.
"""

from __future__ import annotations

import json
import sys

from .answer import ranked
from .followup import standalone
from .pipeline import Rag

TARGET_ANSWERED = 0.95


def evidence_scores(rag: Rag, gold: list[dict]) -> list[tuple[bool, float]]:
    out = []
    for item in gold:
        question = standalone(item["question"], item.get("history") or ())
        qv = rag.embedder.embed_query(question)
        hits = rag.retrieve(rag.index, question, query_vector=qv)
        _, units = ranked(rag.index, hits, question, qv, rag.embedder)
        out.append((bool(item["answerable"]), units[0][3] if units else 0.0))
    return out


def choose_threshold(scores: list[tuple[bool, float]], target: float = TARGET_ANSWERED) -> tuple[float, float, float]:
    """(threshold, share of answerable answered, share of unanswerable refused)."""
    answerable = sorted(x for a, x in scores if a)
    unanswerable = [x for a, x in scores if not a]
    keep = answerable[int(len(answerable) * (1 - target))] if answerable else 0.0
    answered = sum(x >= keep for x in answerable) / max(1, len(answerable))
    refused = sum(x < keep for x in unanswerable) / max(1, len(unanswerable))
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
