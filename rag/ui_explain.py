"""The app's "Explain" panel: the `rag ask --explain` trace of the latest answer, as HTML.

The same dict `rag.explain.explain` gives the CLI, laid out as headed tables. Passage text and
document ids are untrusted, so every value goes through `esc`.
"""

from __future__ import annotations

from .errors import RagError
from .ui_render import esc

EMPTY = '<div class="panel-empty">Ask a question, then open this panel to see what each stage did with it.</div>'


def _table(caption: str, head: list[str], rows: list[list]) -> str:
    if not rows:
        return f'<p class="ex-none">{esc(caption)}: none</p>'
    th = "".join(f'<th scope="col">{esc(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{esc('-' if v is None or v == '' else v)}</td>" for v in r) + "</tr>"
                   for r in rows)
    return f'<table class="table ex-table"><caption>{esc(caption)}</caption><thead><tr>{th}</tr></thead>' \
           f"<tbody>{body}</tbody></table>"


def render_explain(ex: dict) -> str:
    """The trace of one question: the diagnosis first, then question, retrieval, reader and verdicts."""
    q, r, rd = ex["question"], ex["retrieval"], ex["reader"]
    ref = rd["refusal"]
    parts = [f'<div class="ex-diagnose"><span class="short-label">Diagnose at</span> '
             f'<strong>{esc(ex["diagnose_at"])}</strong></div>',
             f'<div class="ex-q">Explaining: <q>{esc(q["asked"])}</q></div>',
             '<h3 class="ex-h">Question as processed</h3>',
             _table("The question", ["", ""], [
                 ["standalone", q["standalone"]], ["answer type", q["answer_type"]],
                 ["content words", ", ".join(q["content_terms"])],
                 ["not in the corpus", ", ".join(q["not_in_corpus"])],
                 ["too common to count", ", ".join(q["too_common"])]]),
             '<h3 class="ex-h">Retrieval</h3>']
    for name, rows in r["rankings"].items():
        parts.append(_table(f"{name} ranking, top {len(rows)}", ["rank", "document", "chars", "score", "fused rank"],
                            [[x["rank"], x["doc_id"], f"{x['start']}\u2013{x['end']}", x["score"], x["fused_rank"]]
                             for x in rows]))
    parts.append(f'<p>merged: {len(r["merged"])}, collapsed as near-duplicates: {len(r["collapsed"])}</p>')
    parts.append('<h3 class="ex-h">Reader</h3>')
    parts.append(_table("Best sentences and the parts of their score",
                        ["score", "alone", "overlap", "pooled", "prior/cost", "answer-type entity", "sentence"],
                        [[f"{u['score']:.3f}", f"{u['alone']:.3f}", f"{u['overlap']:.3f}", f"{u['pooled']:.3f}",
                          f"{u['fixed']:.3f}", u["answer_type_entity"], u["text"]] for u in rd["units"]]))
    parts.append(f'<p>answer phrase: <strong>{esc(rd["short_answer"] or "-")}</strong> ({esc(rd["phrase_from"])})</p>')
    parts.append(f'<p>refusal check: best {esc(ref["best_score"])} vs threshold {esc(ref["threshold"])}; '
                 f'rule: {esc(ref["rule"] or "passed")}</p>')
    if "gold" in ex:
        parts.append(f'<p>gold {esc(ex["gold"]["id"])}: {esc(ex["gold"]["where"])}</p>')
    parts.append('<h3 class="ex-h">Verdicts</h3>')
    parts.append(_table("Verdict per stage", ["stage", "verdict"], [[k, v] for k, v in ex["verdicts"].items()]))
    return f'<div class="explain">{"".join(parts)}</div>'


def answered(turns) -> list[dict]:
    return [t for t in (turns or []) if t.get("answer") is not None]


def choices(turns) -> list[tuple[str, int]]:
    """The Explain panel's choice of answers: (a numbered, shortened question, its index among the answers)."""
    return [(f"{i + 1}. {' '.join(t['question'].split())[:80]}", i) for i, t in enumerate(answered(turns))]


def explain_turn(rag, turns, which=None, k=None, mode=None) -> str:
    """The Explain panel for answer number `which` (0-based among the answered turns; the newest when
    None or out of range), asked again with the history before it, the same k and mode."""
    from .explain import explain

    done = answered(turns)
    if not done:
        return EMPTY
    try:
        i = int(which)
    except (TypeError, ValueError):
        i = -1
    i = i if 0 <= i < len(done) else len(done) - 1
    history = [(t["question"], t["answer"]) for t in done[:i]]
    try:
        return render_explain(explain(rag, done[i]["question"], history, k=int(k) if k else None, mode=mode or None))
    except RagError as e:
        return f'<div class="error-text" role="alert">\u26a0 {esc(e)}</div>'


def explain_latest(rag, turns, k=None, mode=None) -> str:
    """The Explain panel for the newest answered turn."""
    return explain_turn(rag, turns, None, k, mode)


CSS = """
.explain {font-size: 14px}
.explain .ex-diagnose {font-size: 17px; margin-bottom: 4px}
.explain .ex-h {font-size: 15px; font-weight: 600; margin: 14px 0 4px}
.explain caption {text-align: left; font-size: 13px; color: var(--body-text-color-subdued); padding: 6px 0 2px}
.explain .ex-table td:last-child {overflow-wrap: anywhere}
.explain p {margin: 4px 0}
"""


def explain_panel(gr, rag, turns, k, mode, chooser=None, chosen=None):
    """The "Explain an answer" accordion: a choice of the chat's answers (the newest by default) and its
    trace, over the collections the chat searches (`chosen`, picked by the ui_collections.Chooser).
    Opening it explains the newest answer, and while it is open each new answer is explained too.
    Returns `follow(*events)` to chain after the ask events."""
    with gr.Accordion("Explain an answer", open=False, elem_id="explain") as box:
        pick = gr.Dropdown([], value=None, label="Answer to explain", elem_id="explain-pick", interactive=True)
        view = gr.HTML(EMPTY, elem_id="explain-view")
    shown = gr.State(False)
    extra = [chosen] if chosen is not None else []

    def over(c):  # the pipeline of the chat's collections
        return chooser.pick(c[0]) if c and chooser is not None else rag

    def refresh(turns, k, mode, open_=True, *c):  # the choices follow the chat; the newest answer is chosen
        options = choices(turns)
        return (gr.Dropdown(choices=options, value=options[-1][1] if options else None),
                explain_turn(over(c), turns, None, k, mode) if open_ else gr.skip())

    box.expand(lambda t, k, m, *c: (*refresh(t, k, m, True, *c), True), [turns, k, mode, *extra], [pick, view, shown],
               api_visibility="undocumented", show_progress="hidden")
    box.collapse(lambda: False, None, shown, api_visibility="undocumented")
    pick.input(lambda t, w, k, m, *c: explain_turn(over(c), t, w, k, m), [turns, pick, k, mode, *extra], view,
               api_visibility="undocumented", show_progress="hidden")

    def follow(*events):
        for event in events:
            event.then(refresh, [turns, k, mode, shown, *extra], [pick, view], api_visibility="undocumented",
                       show_progress="hidden")
    return follow
