"""`rag ask --explain`: which stage made an answer what it is.

The question as processed (standalone rewrite, content words, words the corpus never uses, words
too common to count), each ranking's top candidates with their fused rank, what was merged or
collapsed, the reader's best units with the parts of their score, the answer phrase and the
refusal check; then a verdict per stage and one line: `Diagnose at: coverage | retrieval | ranking |
reader | refusal | none`. With a gold item it also says where the gold quote was. The answer itself
is the one `rag ask` gives; explaining never changes it.
"""

from __future__ import annotations

from .answer import previous_answer, ranked, refusal_gap
from .reader import analysed
from .gold import contains, evidence

STAGES = ("coverage", "retrieval", "ranking", "reader", "refusal", "none")
COMMON_SHARE = 0.5  # a word in more than half of the chunks is too common to tell passages apart
SHOWN = 5


def _chunk(index, row: int) -> dict:
    c = index.chunks[row]
    return {"doc_id": c.doc_id, "start": c.start, "end": c.end}


def explain(rag, question: str, history=(), gold=None, k: int | None = None, mode: str | None = None) -> dict:
    """The trace of one question (and the normal answer) as a dict; `gold` is a rag.evaluate.Gold."""
    index, s = rag.index, rag.settings
    k, mode = k or s.top_k, mode or s.mode
    answer = rag.ask(question, history, k, mode)
    standalone = answer.standalone_question or answer.question
    q = analysed(standalone)
    lex, n = index.lexical, max(1, len(index.chunks))
    absent = sorted(t for t in q.terms if not lex.knows(t))
    common = sorted(t for t in q.terms if lex.knows(t) and lex.df(t) > COMMON_SHARE * n)
    trace: dict = {}
    qv = rag.embedder.embed_query(standalone)
    hits = rag.retrieve(index, standalone, k, mode, query_vector=qv, trace=trace)
    fused = {row: r for r, row in enumerate(trace.get("fused", []), start=1)}
    rankings = {}
    for name in ("bm25", "dense", "sentence"):
        scores = trace.get(name) or {}
        top = sorted(scores, key=lambda i: -scores[i])[:SHOWN]
        rankings[name] = [dict(_chunk(index, i), rank=r, score=round(scores[i], 4), fused_rank=fused.get(i))
                          for r, i in enumerate(top, start=1)]
    _, units = ranked(index, hits, standalone, qv, rag.embedder, previous_answer(question, standalone, history))
    reader = [{"text": u.text[:300], "score": round(u.score, 4), "answer_type_entity": u.text[u.typed[0]:u.typed[1]]
               if u.typed else "", **{key: round(v, 4) for key, v in u.parts.items()}} for u in units[:SHOWN]]
    best = units[0].score if units else None
    gap = refusal_gap(index, q, units, s.refusal_threshold, rag.embedder) if units else "no candidate sentences"
    out = {"question": {"asked": answer.question, "standalone": standalone, "answer_type": q.kind,
                        "content_terms": sorted(q.terms), "not_in_corpus": absent, "too_common": common},
           "retrieval": {"rankings": rankings,
                         "hits": [{"rank": h.rank, "doc_id": h.chunk.doc_id, "start": h.chunk.start, "end": h.chunk.end}
                                  for h in hits],
               "collapsed": [_chunk(index, i) for i in trace.get("collapsed", [])],
               "merged": [dict(_chunk(index, i), into=r) for i, r in trace.get("merged", [])]},
           "reader": {"units": reader, "short_answer": answer.short_answer, "phrase_from": _phrase_note(q, answer),
                      "refusal": {"best_score": None if best is None else round(best, 4),
                                  "threshold": s.refusal_threshold, "rule": gap, "refused": answer.refused}},
           "answer": answer.to_dict()}
    gold_where = None
    if gold is not None and gold.answerable:
        spans, _why = evidence(gold, index.documents)
        touch = lambda c: any(c.doc_id == gold.doc_id and c.start < b and a < c.end for a, b in spans)  # noqa: E731
        hit_rank = next((h.rank for h in hits if touch(h.chunk)), None)
        fused_rank = next((r for row, r in fused.items() if touch(index.chunks[row])), None)
        chosen = any(c.doc_id == gold.doc_id and c.start < b and a < c.end for c in answer.citations for a, b in spans)
        gold_where = ("in no passage" if fused_rank is None and hit_rank is None else
                      f"cut by k (fused rank {fused_rank})" if hit_rank is None else
                      f"retrieved at rank {hit_rank}" + ("" if chosen else ", present but not chosen"))
        out["gold"] = {"id": gold.id, "where": gold_where}
    correct = None if gold is None else (
        answer.refused if not gold.answerable else (not answer.refused and contains(answer.text, gold.answer)))
    out["verdicts"], out["diagnose_at"] = _verdicts(answer, absent, gap, best, s.refusal_threshold, gold_where, correct)
    return out


def diagnose_failures(rag, gold: list, questions: dict) -> dict[str, int]:
    """Give each failing question of an eval run its "diagnose_at" stage; failures counted per stage."""
    counts: dict[str, int] = {}
    for g in gold:
        rec = questions.get(g.id)
        if rec is None or (rec["refused"] if not g.answerable else rec["answer_ok"]):
            continue
        rec["diagnose_at"] = stage = explain(rag, g.question, g.history, g)["diagnose_at"]
        counts[stage] = counts.get(stage, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _phrase_note(q, answer) -> str:
    if answer.refused:
        return "refused: no answer phrase"
    if answer.short_answer:
        return (f"the {q.kind} entity nearest after the question's words" if q.labels
                else "the noun phrase nearest after the question's words")
    return "a why/how question: the sentences answer it" if q.kind == "reason" else f"no {q.kind} phrase found"


def _verdicts(answer, absent, gap, best, threshold, gold_where, correct) -> tuple[dict, str]:
    v = {"coverage": f"words the corpus never uses: {', '.join(absent)}" if absent else "ok",
         "retrieval": "ok", "ranking": "ok", "reader": "ok", "refusal": "ok"}
    if gold_where == "in no passage":
        v["retrieval"] = "the gold quote is in no retrieved passage"
    elif gold_where and gold_where.startswith("cut by k"):
        v["ranking"] = f"the gold quote was {gold_where}"
    elif gold_where and "not chosen" in gold_where:
        v["reader"] = f"the gold quote was {gold_where}"
    if answer.refused:
        v["refusal"] = (f"refused: best score {best:.3f} < threshold {threshold}" if best is not None and best < threshold
                        else f"refused: {gap}" if gap else "refused")
    if correct is True or (correct is None and not answer.refused):
        return v, "none"
    if correct is False and not answer.refused and gold_where is None:  # an unanswerable question answered
        return v, "refusal"
    if absent and (answer.refused or gold_where in (None, "in no passage")):
        return v, "coverage"
    if gold_where == "in no passage":
        return v, "retrieval"
    if gold_where and gold_where.startswith("cut by k"):
        return v, "ranking"
    if answer.refused:
        return v, "refusal"
    return v, "reader"


def render(ex: dict) -> str:
    """The trace as plain text lines, printed above the normal answer."""
    q, r, rd = ex["question"], ex["retrieval"], ex["reader"]
    lines = ["== Question", f"  standalone: {q['standalone']}", f"  answer type: {q['answer_type']}",
             f"  content words: {', '.join(q['content_terms']) or '-'}",
             f"  not in the corpus: {', '.join(q['not_in_corpus']) or '-'}",
             f"  too common to count: {', '.join(q['too_common']) or '-'}", "== Retrieval"]
    for name, rows in r["rankings"].items():
        shown = "; ".join(f"{x['rank']}. {x['doc_id']} {x['start']}-{x['end']} ({x['score']}, fused {x['fused_rank']})"
                          for x in rows)
        lines.append(f"  {name}: {shown or '-'}")
    lines.append(f"  merged: {len(r['merged'])}, collapsed as near-duplicates: {len(r['collapsed'])}")
    lines.append("== Reader")
    for u in rd["units"]:
        lines.append(f"  {u['score']:.3f} = alone {u['alone']:.3f}, overlap {u['overlap']:.3f}, pooled {u['pooled']:.3f},"
                     f" prior/cost {u['fixed']:.3f}; type: {u['answer_type_entity'] or '-'} | {u['text'][:90]}")
    ref = rd["refusal"]
    lines.append(f"  answer phrase: {rd['short_answer'] or '-'} ({rd['phrase_from']})")
    lines.append(f"  refusal check: best {ref['best_score']} vs threshold {ref['threshold']}; rule: {ref['rule'] or 'passed'}")
    if "gold" in ex:
        lines.append(f"== Gold {ex['gold']['id']}: {ex['gold']['where']}")
    lines.append("== Verdicts")
    lines += [f"  {stage}: {verdict}" for stage, verdict in ex["verdicts"].items()]
    lines.append(f"Diagnose at: {ex['diagnose_at']}")
    return "\n".join(lines)
