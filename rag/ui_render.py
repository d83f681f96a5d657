"""Pure HTML for the chat app: answers with clickable [n], sources, the document view, corpus and eval.

Documents are untrusted, so every piece of document or user text goes through `esc` before it
reaches the page. Nothing here imports gradio; the functions are plain str -> str and unit-tested.
"""

from __future__ import annotations

import re
import unicodedata
from html import escape

from .errors import RagError
from .load import SUFFIXES as UPLOAD_SUFFIXES
from .types import Answer, Citation, Hit

CONTEXT_CHARS = 260  # surrounding text shown on each side of a quoted span
VIEW_CHARS = 120_000  # a document view shows at most this much text around the span
_MARKER = re.compile(r"\[(\d{1,3})\]")


# Bidi controls reorder what follows them ("invoice\u202etxt.exe" shows as "invoiceexe.txt"):
# dropped from what is displayed, never from stored text or offsets.
BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def esc(text) -> str:
    return escape(BIDI.sub("", str(text)), quote=True)


def visible(name) -> str:
    """A name or title for one line of terminal output: control, bidi and lone surrogate
    characters become escapes such as \\n or \\u202e."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(name))


# ---------------------------------------------------------------- chat


def _link(c: Citation, label: str, cls: str = "cite") -> str:
    return (f'<a class="{cls}" href="#" role="button" data-doc="{esc(c.doc_id)}" data-start="{c.start}" '
            f'data-end="{c.end}" data-n="{c.n}" title="{esc(c.title)}: open the passage in its document">'
            f"{label}</a>")


def _inline(text: str, by_n: dict[int, Citation]) -> str:
    """Escape text and turn each `[n]` that has a citation into a link."""
    out, pos = [], 0
    for m in _MARKER.finditer(text):
        c = by_n.get(int(m.group(1)))
        if c is None:
            continue
        out.append(esc(text[pos:m.start()]))
        out.append(_link(c, f"[{c.n}]"))
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def answer_body(answer: Answer) -> str:
    """The answer text with linked markers; sentences without verified support are marked."""
    by_n = {c.n: c for c in answer.citations}
    text, spans, missing = answer.text, [], []
    for sentence in dict.fromkeys(s for s in answer.flagged if s and s.strip()):
        i = text.find(sentence)
        if i < 0 or any(a < i + len(sentence) and i < b for a, b in spans):
            missing.append(sentence)
        else:
            spans.append((i, i + len(sentence)))
    phrase = " ".join(answer.short_answer.split())
    at = text.find(phrase) if phrase and not spans else -1
    if at >= 0:  # the answer phrase, highlighted where it stands in its sentence
        spans, marked = [], (at, at + len(phrase))
    out, pos = [], 0
    if at >= 0:
        out += [_inline(text[:marked[0]], by_n), f'<mark class="phrase">{esc(phrase)}</mark>']
        pos = marked[1]
    for a, b in sorted(spans):
        out.append(_inline(text[pos:a], by_n))
        out.append('<span class="flagged" title="Not verified against the sources">'
                   f'<span class="flag-icon" aria-hidden="true">\u26a0</span>{_inline(text[a:b], by_n)}</span>')
        pos = b
    out.append(_inline(text[pos:], by_n))
    html = f'<div class="answer-text">{"".join(out)}</div>'
    if phrase:
        html = (f'<div class="short-answer"><span class="short-label">Answer</span> '
                f'<strong>{esc(phrase)}</strong></div>') + html
    if answer.confidence or answer.backend:
        words = {"strong": "Strong support", "partial": "Partial support"}.get(answer.confidence, "")
        shown = " \u00b7 ".join(w for w in (words, answer.backend, answer.mode) if w)
        html += f'<div class="support">{esc(shown)}</div>'
    if answer.flagged:
        html += ('<div class="flag-note">\u26a0 Marked sentences were written by the language model '
                 "without verified support in the sources; check them before relying on them.")
        if missing:
            html += "<ul>" + "".join(f"<li>{esc(s)}</li>" for s in missing) + "</ul>"
        html += "</div>"
    return html


def render_turn(question: str, answer: Answer | None = None, partial: str | None = None,
                error: str | None = None) -> str:
    """One exchange: the user's question and the assistant's (partial, final or error) reply."""
    user = f'<div class="msg user"><div class="bubble">{esc(question)}</div></div>' if question else ""
    if error is not None:
        body, cls = f'<div class="error-text">\u26a0 {esc(error)}</div>', "error"
    elif answer is not None and answer.refused:
        body = ('<div class="badge refused-badge">Not in the corpus</div>'
                f'<div class="answer-text">{esc(answer.text)}</div>'
                '<div class="hint">The closest passages are listed under Sources; none of them answers the '
                "question.</div>")
        cls = "refused"
    elif answer is not None:
        body, cls = answer_body(answer), "answer"
    else:
        body = f'<div class="answer-text">{esc(partial or "")}<span class="cursor">\u258d</span></div>'
        cls = "streaming"
    notice = f'<div class="notice">{esc(answer.notice)}</div>' if answer is not None and answer.notice else ""
    return f'{user}<div class="msg bot {cls}"><div class="bubble">{body}{notice}</div></div>'


def render_chat(turns: list[dict]) -> str:
    """The whole conversation; `turns` are dicts with question and answer/partial/error."""
    if not turns:
        return ('<div class="chat-empty"><p><b>Ask a question about the indexed documents.</b></p>'
                "<p>Answers quote the documents; click a marker like <b>[1]</b> to read the passage "
                "in its document.</p></div>")
    return '<div class="chat">' + "".join(
        render_turn(t["question"], t.get("answer"), t.get("partial"), t.get("error")) for t in turns) + "</div>"


# ---------------------------------------------------------------- sources


def context_window(text: str, start: int, end: int, chars: int = CONTEXT_CHARS) -> tuple[int, int]:
    """A window around [start, end) widened by about `chars` and snapped to word boundaries."""
    a, b = max(0, start - chars), min(len(text), end + chars)
    if a > 0:
        sp = text.find(" ", a, start)
        a = sp + 1 if sp >= 0 else a
    if b < len(text):
        sp = text.rfind(" ", end, b)
        b = sp if sp >= 0 else b
    return a, b


def highlighted(text: str, start: int, end: int, a: int, b: int, mark_id: str = "") -> str:
    """Escaped text[a:b] with text[start:end] wrapped in <mark>, ellipses where cut."""
    ident = f' id="{esc(mark_id)}"' if mark_id else ""
    return ("\u2026" if a > 0 else "") + esc(text[a:start]) + f'<mark class="span"{ident}>' + \
        esc(text[start:end]) + "</mark>" + esc(text[end:b]) + ("\u2026" if b < len(text) else "")


def render_sources(answer: Answer | None, documents: dict) -> str:
    """Every cited passage (title, score, quote highlighted in context) or the closest passages."""
    if answer is None:
        return '<div class="panel-empty">Sources for the latest answer appear here.</div>'
    if answer.citations:
        cards = [_citation_card(c, documents) for c in answer.citations]
        return f'<div class="sources"><div class="panel-title">Sources ({len(cards)})</div>{"".join(cards)}</div>'
    if not answer.hits:
        return '<div class="panel-empty">No passages were retrieved.</div>'
    head = ("Closest passages \u2014 none answers the question" if answer.refused else "Retrieved passages")
    cards = [_hit_card(h) for h in answer.hits]
    return f'<div class="sources closest"><div class="panel-title">{head}</div>{"".join(cards)}</div>'


def _citation_card(c: Citation, documents: dict) -> str:
    doc = documents.get(c.doc_id)
    text = doc.text if doc is not None and doc.text[c.start:c.end] == c.quote else None
    if text is None:  # index changed since the answer: show the stored quote alone
        body = f'<mark class="span">{esc(c.quote)}</mark>'
    else:
        body = highlighted(text, c.start, c.end, *context_window(text, c.start, c.end))
    page = f" \u00b7 page {c.page}" if c.page else ""
    return (f'<div class="src" id="src-{c.n}"><div class="src-head">{_link(c, f"[{c.n}]", "cite src-n")} '
            f'<span class="src-title">{esc(c.title)}</span></div>'
            f'<div class="src-meta">{esc(c.doc_id)}{page} \u00b7 score {c.score:.3f} \u00b7 support {c.support:.2f}'
            f' \u00b7 {_link(c, "open in document", "cite open")}</div>'
            f'<div class="src-text">{body}</div></div>')


def _hit_card(h: Hit) -> str:
    ch = h.chunk
    fake = Citation(n=h.rank, doc_id=ch.doc_id, title=ch.title, start=ch.start, end=ch.end, quote="", score=h.score)
    page = f" \u00b7 page {ch.page}" if ch.page else ""
    return (f'<div class="src"><div class="src-head"><span class="rank">{h.rank}.</span> '
            f'<span class="src-title">{esc(ch.title)}</span></div>'
            f'<div class="src-meta">{esc(ch.doc_id)}{page} \u00b7 score {h.score:.3f} \u00b7 '
            f'{_link(fake, "open in document", "cite open")}</div>'
            f'<div class="src-text">{esc(ch.text)}</div></div>')


# ---------------------------------------------------------------- document view


def render_document(doc, start: int, end: int, limit: int = VIEW_CHARS) -> str:
    """A document's text with [start, end) highlighted as `#focus`; very long texts are windowed."""
    text = doc.text
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    if end < start:
        start, end = end, start
    if len(text) <= limit:
        a, b = 0, len(text)
    else:
        a = max(0, min(start - limit // 2, len(text) - limit))
        b = min(len(text), a + limit)
    note = "" if (a, b) == (0, len(text)) else \
        f'<div class="hint">Showing characters {a:,}\u2013{b:,} of {len(text):,}.</div>'
    return (f'<div class="doc-view"><div class="doc-head"><span class="src-title">{esc(doc.title)}</span>'
            f'<span class="src-meta"> \u00b7 {esc(doc.id)} \u00b7 characters {start:,}\u2013{end:,}</span></div>'
            f'{note}<div class="doc-text" tabindex="0" role="region" aria-label="Document text">{highlighted(text, start, end, a, b, "focus")}</div></div>')


def document_placeholder(message: str = "Click a citation to read the passage in its document.") -> str:
    return f'<div class="panel-empty">{esc(message)}</div>'


# ---------------------------------------------------------------- corpus


def _stamp(value: str) -> str:
    """'20261128T132442' or an ISO time -> '2026-11-28 13:24:42 UTC'."""
    m = re.fullmatch(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)", value or "")
    if m:
        return "{}-{}-{} {}:{}:{} UTC".format(*m.groups())
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)Z?", value or "")
    return f"{m.group(1)} {m.group(2)} UTC" if m else (value or "unknown")


def render_corpus(manifest: dict | None, error: str = "") -> str:
    """The indexed documents with chunk counts and index times."""
    if manifest is None:
        return f'<div class="panel-empty">\u26a0 {esc(error or "no index yet")}</div>'
    docs = manifest.get("documents", [])
    rows = "".join(
        f'<tr><td>{esc(d.get("title", ""))}</td><td class="mono">{esc(d.get("id", ""))}</td>'
        f'<td class="num">{int(d.get("chunks", 0))}</td><td>{esc(_stamp(d.get("indexed_at", "")))}</td></tr>'
        for d in docs)
    total = sum(int(d.get("chunks", 0)) for d in docs)
    when = esc(_stamp(manifest.get("built_at", "")))
    return (f'<div class="corpus"><div class="panel-title">{counted(len(docs), "document")}, {counted(total, "chunk")} '
            f"\u00b7 last indexed {when}</div>"
            '<table class="table"><thead><tr><th>Title</th><th>File</th><th class="num">Chunks</th>'
            f"<th>Indexed at</th></tr></thead><tbody>{rows}</tbody></table></div>")


def counted(count: int, noun: str) -> str:
    """"1 document", "2 documents"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


_RESERVED = re.compile('[<>:"/\\\\|?*\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069'
                       '\ud800-\udfff]+')
NAME_BYTES = 200  # of the stem: room for " (99)" and the suffix under the usual 255-byte limit


def safe_upload_name(name: str) -> str:
    """A plain file name for corpus/: no directories, no hidden files, only the allowed types.
    Letters of every script are kept (NFC); path separators, control, bidi and reserved
    characters (<>:"/\\|?*) become "_"."""
    base = unicodedata.normalize("NFC", re.split(r"[\\/]", str(name or ""))[-1]).strip()
    stem, dot, suffix = base.rpartition(".")
    suffix = "." + suffix.lower() if dot else ""
    if suffix not in UPLOAD_SUFFIXES:
        raise RagError(f"cannot add {base!r}: file type {suffix or '(none)'} is not supported; "
                       f"upload one of {' '.join(UPLOAD_SUFFIXES)}")
    if base.startswith(".") or not stem.strip(". "):
        raise RagError(f"cannot add {base!r}: hidden or unnamed files are not indexed; rename it, e.g. notes{suffix}")
    clean = re.sub(r"\s+", " ", _RESERVED.sub("_", stem)).lstrip(" .").rstrip(" .") or "upload"
    while len(clean.encode("utf-8")) > NAME_BYTES:
        clean = clean[:-1]
    return clean + suffix
