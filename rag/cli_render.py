"""What the `rag` command prints: answers with their sources, passages, JSON, all made safe to show
in a terminal (bidi controls and unprintable characters of document text are not passed through)."""

from __future__ import annotations

import json
import textwrap


def in_collection(collection: str) -> str:
    """A document's collection before its id, unless it is the default one."""
    return f"{visible(collection)}:" if collection and collection != "default" else ""


def print_json(data) -> None:
    """One JSON document on stdout that is valid UTF-8: a lone surrogate is written as an escape."""
    text = json.dumps(data, ensure_ascii=False, indent=1)
    print(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def visible(name) -> str:
    from .ui_render import visible

    return visible(name)


def plain(text: str) -> str:
    """Body text for the terminal: bidi controls dropped for display (stored text is unchanged)."""
    from .ui_render import BIDI

    return BIDI.sub("", text)


def quoted(text: str) -> str:
    """A quote in curly quotes, without doubling the ones it starts or ends with (“…“superpower.””)."""
    return ("" if text[:1] in "\u201c\"" else "\u201c") + text + ("" if text[-1:] in "\u201d\"" else "\u201d")


def format_sources(answer) -> str:
    lines = []
    if answer.notice:
        lines.append(f"\nnote: {answer.notice}")
    if answer.flagged:
        lines.append("\nunsupported (not verified against the sources):")
        lines += [f"  ! {plain(s)}" for s in answer.flagged]
    if answer.citations:
        lines.append("\nSources:")
        for c in answer.citations:
            where = (f"{in_collection(c.collection)}{visible(c.doc_id)} chars {c.start}-{c.end}"
                     + (f", page {c.page}" if c.page else ""))
            lines.append(f"[{c.n}] {visible(c.title)} ({where}, score {c.score:.3f})")
            lines.append(textwrap.indent(textwrap.fill(quoted(plain(c.quote)), 96), "    "))
    elif answer.hits:
        lines.append("\nClosest passages:")
        for h in answer.hits[:3]:
            lines.append(f"  {h.rank}. {visible(h.chunk.title)} ({visible(h.chunk.doc_id)} chars "
                         f"{h.chunk.start}-{h.chunk.end}): {plain(h.chunk.text[:160])}…")
    return "\n".join(lines)
