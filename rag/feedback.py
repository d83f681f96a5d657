"""Feedback becomes eval material: candidates in eval/candidates.jsonl, merged into the gold set
only by an explicit `rag eval --accept IDS`.

    👍 answer  -> a ready candidate: the question (and history), the expected answer (the short answer,
                 else the first cited sentence), quotes = the cited spans that still match the documents
    👍 refusal -> a ready "unanswerable" candidate
    👎 answer  -> "needs_review": what was retrieved and said, for a person to write the right quote

Candidates are appended (ids c0001, c0002 ...), one per feedback id, never twice. Accepting checks
each one again (not under review, quotes still in the document, a valid gold line) and gives it
the next free qNNN id.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .chat_export import mark_stale
from .errors import RagError

CANDIDATES = Path("eval/candidates.jsonl")
THUMBS = {1: "\U0001f44d", -1: "\U0001f44e"}


def candidate(fb: dict, documents: dict) -> dict:
    """The candidate gold item for one feedback record (`ChatStore.feedback()`), without its id."""
    answer = mark_stale(fb["answer"], documents)
    history = [list(p) for p in fb.get("history") or []]
    item = {"feedback_id": fb["id"], "question": fb["question"]}
    if history:
        item["history"] = history
    kind = "followup" if history else "factoid"
    source = {"conversation": fb["conversation"], "turn": fb["turn"], "rating": fb["rating"],
              "comment": fb.get("comment", ""), "standalone_question": fb.get("standalone", ""),
              "model": fb.get("model", ""), "index_version": fb.get("index_version", ""),
              "settings": fb.get("settings", {}), "created": fb.get("created", "")}
    valid = [c for c in answer["citations"] if not c["stale"]]
    if fb["rating"] == 1 and answer.get("refused"):
        return dict(item, answer=None, doc_id=None, quotes=[], answerable=False,
                    kind=kind if history else "unanswerable", source=source)
    if fb["rating"] == 1 and valid:
        doc_id = valid[0]["doc_id"]
        quotes = list(dict.fromkeys(c["quote"] for c in valid if c["doc_id"] == doc_id))
        short = answer.get("short_answer") or ""
        item.update(answer=short or valid[0]["quote"], doc_id=doc_id, quotes=quotes, answerable=True, kind=kind)
        if short and any(short in q for q in quotes):
            item["short_answer"] = short
        return dict(item, source=source)
    review = ("rated \U0001f44e" if fb["rating"] == -1 else "rated \U0001f44d but no cited quote still matches "
              "the documents") + ": write answer, doc_id, quotes and answerable, then delete needs_review"
    return dict(item, needs_review=True, review=review, answer=None, doc_id=None, quotes=[], answerable=None,
                kind=kind, given_answer=answer.get("answer", ""), given_short_answer=answer.get("short_answer", ""),
                given_citations=answer["citations"], passages=answer.get("passages", []), source=source)


def read_jsonl(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except ValueError as e:
                raise RagError(f"{path}:{n} is not JSON ({e}); fix or delete that line") from None
    return items


def _number(item_id, prefix: str) -> int:
    m = re.fullmatch(prefix + r"(\d+)", str(item_id))
    return int(m[1]) if m else 0


def add_candidates(feedback: list[dict], documents: dict, path: Path = CANDIDATES) -> list[dict]:
    """Append a candidate for each feedback not yet in `path`; returns the new ones."""
    existing = read_jsonl(path)
    done = {c.get("feedback_id") for c in existing}
    n = max((_number(c.get("id"), "c") for c in existing), default=0)
    new = []
    for fb in feedback:
        if fb["id"] in done:
            continue
        n += 1
        new.append(dict({"id": f"c{n:04d}"}, **candidate(fb, documents)))
    if new:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.writelines(json.dumps(c, ensure_ascii=False) + "\n" for c in new)
        except OSError as e:
            raise RagError(f"cannot write {path} ({e.strerror or e}); pass a writable --candidates") from None
    return new


GOLD_KEYS = ("history", "question", "answer", "short_answer", "doc_id", "quotes", "answerable", "kind")


def _refusal(c: dict, merged: dict, documents: dict) -> str:
    """Why candidate c cannot be merged ("" when it can)."""
    from .evaluate import Gold, evidence

    if c["id"] in merged:
        return f"{c['id']} is already in the gold set as {merged[c['id']]}"
    if c.get("needs_review"):
        return f"{c['id']} needs review ({c.get('review') or 'marked needs_review'}) before it can be accepted"
    if not isinstance(c.get("answerable"), bool):
        return f"{c['id']} has no answerable true/false; set it, then accept it"
    if c["answerable"]:
        g = Gold(c["id"], c.get("question", ""), c.get("answer"), c.get("doc_id"), tuple(c.get("quotes") or ()),
                 True, c.get("kind", ""))
        _spans, stale = evidence(g, documents)
        if stale or not g.quotes:
            return f"{c['id']}: {stale or 'it has no quotes'}; its quotes must be exact text of the current document"
    return ""


def accept(ids: list[str], gold_path: Path, candidates_path: Path, documents: dict) -> tuple[list, list[str]]:
    """Merge the named candidates into the gold file: ([(candidate id, new gold id)], [refusal lines])."""
    from .evaluate import load_gold

    gold_path, candidates_path = Path(gold_path), Path(candidates_path)
    load_gold(gold_path)  # a broken gold file is named before anything is added to it
    by_id = {c.get("id"): c for c in read_jsonl(candidates_path)}
    gold = read_jsonl(gold_path)
    merged = {g["candidate"]: g["id"] for g in gold if g.get("candidate")}
    n = max((_number(g.get("id"), "q") for g in gold), default=0)
    lines, done, refused = [], [], []
    for cid in dict.fromkeys(ids):
        c = by_id.get(cid)
        why = (f"{cid} is not in {candidates_path}; see `rag feedback to-gold`" if c is None
               else _refusal(c, merged, documents))
        if why:
            refused.append(why)
            continue
        n += 1
        item = {"id": f"q{n:03d}", **{k: c[k] for k in GOLD_KEYS if c.get(k) is not None or k == "answer"},
                "candidate": cid}
        if item.get("doc_id") is None:
            item.update(doc_id=None, quotes=[])
        lines.append(json.dumps(item, ensure_ascii=False) + "\n")
        merged[cid] = item["id"]
        done.append((cid, item["id"]))
    if lines:
        text = gold_path.read_text(encoding="utf-8")
        tmp = gold_path.with_name(f".{gold_path.name}.accept-{os.getpid()}")
        tmp.write_text(text + ("" if text.endswith("\n") or not text else "\n") + "".join(lines), encoding="utf-8")
        try:
            load_gold(tmp)  # the merged file must still be a valid gold set
            os.replace(tmp, gold_path)
        finally:
            tmp.unlink(missing_ok=True)
    return done, refused
