"""Prompt files (system, answer, condense), rendering, and fencing sources as untrusted data.

Passages reach the model as quoted data inside `<source id="n">…</source>`; fence-like tags in a
document are defused, and placeholders are filled in one pass, so text inserted for one is never
expanded again: nothing written inside a document can act as an instruction of ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

from .errors import RagError
from .types import Hit

HISTORY_TURNS, HISTORY_ANSWER_CHARS = 3, 300
_FENCE = re.compile(r"<(\s*/?\s*source)", re.I)


@dataclass(frozen=True)
class Prompts:
    system: str
    answer: str
    condense: str


_NEEDS = {"system": (), "answer": ("sources", "question"), "condense": ("history", "question")}


def load_prompts(prompts_dir) -> Prompts:
    """Read system.txt, answer.txt and condense.txt; a relative dir is also looked up beside rag/."""
    d = Path(prompts_dir)
    if not d.is_absolute() and not d.is_dir():
        d = Path(__file__).resolve().parents[1] / d
    texts = {}
    for name, needs in _NEEDS.items():
        path = d / f"{name}.txt"
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except OSError:
            raise RagError(f"prompt file {path} is missing; set RAG_PROMPTS_DIR to the directory holding "
                           "system.txt, answer.txt and condense.txt") from None
        missing = [k for k in needs if "{" + k + "}" not in texts[name]]
        if missing:
            raise RagError(f"prompt file {path} lacks {', '.join('{' + k + '}' for k in missing)}; add it")
    return Prompts(**texts)


def render(template: str, **values: str) -> str:
    """Fill {name} placeholders in one pass, so text inserted for one is never expanded again."""
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def fence(hits: list[Hit]) -> str:
    """Numbered passages as quoted data; fence-like tags inside them are defused."""
    blocks = []
    for n, hit in enumerate(hits, start=1):
        text = _FENCE.sub(lambda m: "\u2039" + m.group(1), hit.chunk.text.strip())
        blocks.append(f'<source id="{n}" title="{escape(hit.chunk.title, quote=True)}">\n{text}\n</source>')
    return "\n\n".join(blocks)


def answer_messages(prompts: Prompts, question: str, hits: list[Hit]) -> list[dict]:
    return [{"role": "system", "content": prompts.system.strip()},
            {"role": "user", "content": render(prompts.answer, sources=fence(hits), question=question).strip()}]


def condense_messages(prompts: Prompts, question: str, history) -> list[dict]:
    lines = []
    for q, a in list(history)[-HISTORY_TURNS:]:
        a = " ".join(str(getattr(a, "text", a) or "").split())
        lines.append(f"User: {' '.join(str(q).split())}")
        lines.append(f"Assistant: {a[:HISTORY_ANSWER_CHARS] + ('…' if len(a) > HISTORY_ANSWER_CHARS else '')}")
    return [{"role": "user", "content": render(prompts.condense, history="\n".join(lines), question=question).strip()}]


def standalone_from_reply(reply: str) -> str:
    """The first line of a condensing reply, without a "Question:" label or quotes."""
    line = next((x for x in reply.strip().splitlines() if x.strip()), "")
    line = re.sub(r"^\s*(?:standalone question|question|rewritten question)\s*:\s*", "", line, flags=re.I)
    return " ".join(line.strip().strip("\"'\u201c\u201d`").split())
