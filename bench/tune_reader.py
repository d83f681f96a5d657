"""Choose the extractive reader's weights on the dev split of eval/gold.jsonl (odd ids) and report
both halves: `python bench/tune_reader.py [--gold eval/gold.jsonl]` (needs `rag index` first).

Every question runs through retrieval and the reader's feature step once; the grid then only
recombines cached numbers: unit score = a*pooled cosine + b*word overlap + w*cosine embedded alone
+ t*[entity of the expected type] + the fixed part (rank prior, heading/pair cost). For each weight
setting the refusal threshold is the highest one that still answers 95% of the dev answerable
questions; evidence rules (missing names and numbers, coverage, answer type) apply as in rag.reader.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from rag import answer, reader
from rag.entities import tag
from rag.evaluate import contains, evidence, load_gold
from rag.lexical import tokenize
from rag.pipeline import Rag
from rag.followup import standalone
from rag.phrase import answer_phrase, typed_phrase
from rag.question import analyse

GRID = {"a": (0.35, 0.0), "b": (0.3, 0.15), "w": (0.5, 1.0), "t": (0.0, 0.1, 0.2),
        "cov": (0.0, 0.34), "typed": (0, 1, 3), "margin": (0.1, 0.15), "new": (-1.0, 0.0, 0.1),
        "nouns": (1, 2, 99), "spec": (1, 2, 99), "maxs": (2, 3)}
ANSWERED = 0.95


def features(rag: Rag, g) -> dict:
    q_text = standalone(g.question, g.history) if g.history else g.question
    index = rag.index
    qv = rag.embedder.embed_query(q_text)
    hits = rag.retrieve(index, q_text, query_vector=qv)
    units, unit_hits, vecs, cos, overlap, fixed = answer.unit_features(index, hits, q_text, qv, rag.embedder)
    stage1 = answer.sentence_score(cos, overlap, answer.W_COSINE) + fixed
    top = np.argsort(-stage1, kind="stable")[:reader.RESCORE]
    q = analyse(q_text)
    texts = [answer.span_text(index, *units[i]) for i in top]
    alone = reader.embed_alone(rag.embedder, texts) @ qv if texts else np.zeros(0)
    tags = tag(texts) if texts else []
    spans, _ = evidence(g, index.documents) if g.answerable else ([], "")
    out = []
    for j, i in enumerate(top):
        f, l = units[i]
        doc_id, s, _ = index.sentences[f]
        e = index.sentences[l][2]
        typed = typed_phrase(q, texts[j], tags[j]) is not None
        phrase = answer_phrase(q, texts[j], tags[j])
        ev = f"{unit_hits[i].chunk.title}\n{unit_hits[i].chunk.text}\n{texts[j]}"
        words = set(tokenize(ev))
        out.append({"pooled": float(cos[i]), "overlap": float(overlap[i]), "fixed": float(fixed[i]),
                    "alone": float(alone[j]), "typed": typed, "rows": (f, l), "vec": vecs[i],
                    "text": texts[j], "phrase": texts[j][phrase[0]:phrase[1]] if phrase else "",
                    "missing": bool(q.specific - words),
                    "coverage": len(q.terms & words) / len(q.terms) if q.terms else 1.0,
                    "gold": any(doc_id == g.doc_id and s < b and a < e for a, b in spans)})
    knows = index.lexical.knows
    return {"id": g.id, "dev": int(g.id.lstrip("q")) % 2 == 1, "answerable": g.answerable, "answer": g.answer,
            "short": g.short_answer, "labels": bool(q.labels), "units": out, "q": q,
            "idf": {t: index.lexical.idf(t) for t in q.terms},
            "unknown_specific": sum(not knows(t) for t in q.specific),
            "unknown_nouns": sum(not knows(t) for t in q.nouns - q.specific)}


def decide(item: dict, p: dict, threshold: float | None):
    units = item["units"]
    if not units:
        return None, None
    score = [p["a"] * u["pooled"] + p["b"] * u["overlap"] + p["w"] * u["alone"] + u["fixed"] for u in units]
    order = sorted(range(len(units)), key=lambda i: -(score[i] + p["t"] * units[i]["typed"]))
    best = units[order[0]]
    refused = (threshold is not None and score[order[0]] < threshold) or item["unknown_specific"] >= p["spec"] \
        or item["unknown_nouns"] >= p["nouns"] \
        or (len(analyse_terms(item)) >= 3 and best["coverage"] < p["cov"]) \
        or (p["typed"] and item["labels"] and not any(units[i]["typed"] for i in order[:p["typed"]]))
    chosen, used = [best], set(range(best["rows"][0], best["rows"][1] + 1))
    for i in order[1:] if not best["typed"] else []:  # as rag.answer.choose: a typed answer stands alone
        u = units[i]
        size = sum(c["rows"][1] - c["rows"][0] + 1 for c in chosen)
        if score[i] < score[order[0]] - p["margin"] or size >= p["maxs"]:
            break
        rows = set(range(u["rows"][0], u["rows"][1] + 1))
        if rows & used or size + len(rows) > p["maxs"] or any(float(u["vec"] @ c["vec"]) > 0.92 for c in chosen):
            continue
        # as rag.answer.choose: a question's extra unit must hold words of it the best one lacks
        if reader.is_question(item["q"]) and answer.adds(item["q"], u["text"], best["text"],
                                                         lambda t: item["idf"].get(t, 0.0)) <= p["new"]:
            continue
        chosen.append(u)
        used |= rows
    return score[order[0]], (refused, chosen)


def analyse_terms(item):  # the coverage rule applies to questions of 3+ content words (see rag.reader)
    return item.get("terms", [0, 0, 0])


def metrics(items: list[dict], p: dict, threshold: float) -> dict:
    ans = [i for i in items if i["answerable"]]
    una = [i for i in items if not i["answerable"]]
    ok = short = short_n = false_ref = cites = cites_ok = 0
    for i in ans:
        _, res = decide(i, p, threshold)
        if res is None or res[0]:
            false_ref += 1
            continue
        text = " ".join(u["text"] for u in res[1])
        ok += contains(text, i["answer"])
        cites += len(res[1])
        cites_ok += sum(u["gold"] for u in res[1])
        if i["short"]:
            short_n += 1
            short += bool(res[1][0]["phrase"]) and contains(res[1][0]["phrase"], i["short"])
    refused = sum(1 for i in una if (r := decide(i, p, threshold)[1]) is None or r[0])
    return {"contains": ok / len(ans), "short": short / max(1, sum(1 for i in ans if i["short"])),
            "citation_precision": cites_ok / max(1, cites), "refusal_recall": refused / max(1, len(una)),
            "false_refusals": false_ref / len(ans)}


def calibrate(items: list[dict], p: dict) -> float:
    best = sorted(decide(i, p, None)[0] or 0.0 for i in items if i["answerable"] and not decide(i, p, None)[1][0])
    return best[int(len(best) * (1 - ANSWERED))] - 1e-3 if best else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gold", default="eval/gold.jsonl")
    args = ap.parse_args()
    rag = Rag()
    gold = load_gold(Path(args.gold))
    items = []
    for g in gold:
        item = features(rag, g)
        item["terms"] = sorted(analyse(standalone(g.question, g.history) if g.history else g.question).terms)
        items.append(item)
    dev = [i for i in items if i["dev"]]
    held = [i for i in items if not i["dev"]]
    results = []
    for values in itertools.product(*GRID.values()):
        p = dict(zip(GRID, values))
        th = calibrate(dev, p)
        m = metrics(dev, p, th)
        objective = m["contains"] + m["refusal_recall"] + 0.5 * m["short"] + 0.5 * m["citation_precision"]
        results.append((objective - 4 * max(0.0, m["false_refusals"] - 0.05), p, th, m))
    results.sort(key=lambda r: -r[0])
    for objective, p, th, m in results[:8]:
        print(json.dumps({"objective": round(objective, 4), "params": p, "threshold": round(th, 3),
                          "dev": {k: round(v, 3) for k, v in m.items()},
                          "heldout": {k: round(v, 3) for k, v in metrics(held, p, th).items()}}))


if __name__ == "__main__":
    main()
