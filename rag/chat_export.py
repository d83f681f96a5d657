"""Stored conversations reopened against the documents as they are now, and exported.

A citation was exact when it was given; the document may have changed since. On reopening, each
citation whose quote is no longer `doc.text[start:end]` gets `stale: true` and is never shown as a
valid quote. Exports: Markdown (each answer with numbered footnotes holding the quoted spans) and
JSON (the `Answer.to_dict()` of every turn, citations marked).
"""

from __future__ import annotations

import json
import re

STALE_NOTE = "stale: the document changed since this answer, the quote is no longer at this place"


def mark_stale(answer: dict, documents: dict) -> dict:
    """A copy of an answer dict whose citations each carry `stale` (True when the quote no longer
    matches the current document text, or the document is gone)."""
    def check(c: dict) -> dict:
        doc = documents.get(c.get("doc_id"))
        try:
            ok = doc is not None and doc.text[int(c["start"]):int(c["end"])] == c.get("quote")
        except (KeyError, TypeError, ValueError):
            ok = False
        return dict(c, stale=not ok)

    return dict(answer, citations=[check(c) for c in answer.get("citations") or []])


def reopen(conversation: dict, documents: dict) -> dict:
    """A stored conversation (`ChatStore.get`) with every turn's citations checked."""
    return dict(conversation, turns=[dict(t, answer=mark_stale(t["answer"], documents))
                                     for t in conversation["turns"]])


def to_json(conversation: dict) -> str:
    """The answers of a (reopened) conversation as a JSON list, one `Answer.to_dict()` per turn."""
    return json.dumps([t["answer"] for t in conversation["turns"]], ensure_ascii=False, indent=1)


def _line(text) -> str:
    return " ".join(str(text or "").split())


def to_markdown(conversation: dict) -> str:
    """Questions and answers; each `[n]` becomes a footnote `[^k]` quoting its span:
    `[^k]: “quote” — title, doc_id chars s–e` (numbered through the whole conversation)."""
    out = [f"# {_line(conversation['title'])}", "",
           f"_Conversation {conversation['id']}, {conversation['created'][:19].replace('T', ' ')} UTC, "
           f"{len(conversation['turns'])} turn{'' if len(conversation['turns']) == 1 else 's'}_", ""]
    counter = 0
    for turn in conversation["turns"]:
        answer = turn["answer"]
        labels = {}
        for c in answer.get("citations") or []:
            counter += 1
            labels[c["n"]] = counter
        text = re.sub(r"\[(\d+)\]", lambda m: f"[^{labels[int(m[1])]}]" if int(m[1]) in labels else m[0],
                      answer.get("answer", ""))
        out += [f"## {turn['n']}. {_line(turn['question'])}", ""]
        if answer.get("short_answer"):
            out += [f"**Answer:** {_line(answer['short_answer'])}", ""]
        out += [text.strip() or "_(no answer)_", ""]
        if answer.get("refused"):
            out += ["_Not in the corpus._", ""]
        for c in answer.get("citations") or []:
            where = f"{_line(c.get('title'))}, {c.get('doc_id')} chars {c.get('start')}\u2013{c.get('end')}"
            if c.get("page"):
                where += f", page {c['page']}"
            warn = f"\u26a0 {STALE_NOTE}: " if c.get("stale") else ""
            out.append(f"[^{labels[c['n']]}]: {warn}\u201c{_line(c.get('quote'))}\u201d \u2014 {where}")
        if answer.get("citations"):
            out.append("")
    return "\n".join(out).rstrip() + "\n"
