"""The gold set: eval/gold.jsonl items, where their quotes are in the documents, and how an answer is
compared with the expected one."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import RagError

KINDS = ("factoid", "paraphrase", "multi", "unanswerable", "followup")

@dataclass(frozen=True)
class Gold:
    id: str
    question: str
    answer: str | None
    doc_id: str | None
    quotes: tuple[str, ...]
    answerable: bool
    kind: str
    short_answer: str | None = None
    history: tuple[tuple[str, str], ...] = ()


def load_gold(path: Path) -> list[Gold]:
    """Parse and validate the gold JSONL; a bad line is one RagError naming it."""
    path = Path(path)
    if not path.is_file():
        raise RagError(f"gold set {path} not found; pass --gold pointing at a JSONL file")
    items, seen = [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            g = Gold(str(d["id"]), d["question"], d.get("answer"), d.get("doc_id"),
                     tuple(d.get("quotes") or ()), bool(d["answerable"]), d["kind"], d.get("short_answer"),
                     _history(d.get("history")))
        except (ValueError, KeyError, TypeError) as e:
            raise RagError(f"{path}:{n} is not a gold item ({type(e).__name__}: {e}); "
                           f"each line needs id, question, answerable, kind") from None
        problem = ("duplicate id" if g.id in seen else f"kind {g.kind!r} not in {KINDS}" if g.kind not in KINDS
                   else "answerable item needs answer, doc_id and quotes"
                   if g.answerable and not (g.answer and g.doc_id and g.quotes)
                   else "short_answer must be a non-empty string found in one of the quotes"
                   if g.short_answer is not None and not (isinstance(g.short_answer, str) and g.short_answer
                                                          and any(g.short_answer in q for q in g.quotes))
                   else "")
        if problem:
            raise RagError(f"{path}:{n} ({g.id}): {problem}; fix that line")
        seen.add(g.id)
        items.append(g)
    return items


def _history(raw) -> tuple[tuple[str, str], ...]:
    """`history` as (question, answer) pairs; anything but a list of [str, str] is a ValueError."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, list) and len(p) == 2
                                            and all(isinstance(x, str) for x in p) for p in raw):
        raise ValueError("history must be a list of [question, answer] string pairs")
    return tuple((q, a) for q, a in raw)


def evidence(g: Gold, documents: dict) -> tuple[list[tuple[int, int]], str]:
    """(merged evidence spans, reason the question is stale or '')."""
    doc = documents.get(g.doc_id)
    if doc is None:
        return [], f"document {g.doc_id!r} is not in the index"
    spans = []
    for n, q in enumerate(g.quotes, start=1):
        hits = [m.start() for m in re.finditer(re.escape(q), doc.text)]
        if not hits:
            return [], f"quote {n} is no longer in {g.doc_id}: \u201c{q[:80]}\u201d"
        spans += [(s, s + len(q)) for s in hits]
    merged = []
    for s, e in sorted(spans):
        if merged and not doc.text[merged[-1][1]:s].strip():
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged, ""


def overlaps(doc_a: str, s: int, e: int, doc_b: str, spans) -> list[int]:
    return [i for i, (a, b) in enumerate(spans) if doc_a == doc_b and s < b and a < e]


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = re.sub(r"\[\d+\]", " ", text)  # citation markers must not match numeric answers
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def contains(answer: str, expected: str) -> bool:
    return f" {normalise(expected)} " in f" {normalise(answer)} "
