"""Extractive answers: pick the sentences that answer the question and cite their exact spans.

Documents are data: sentences are only ever selected by similarity and quoted verbatim,
so an instruction written inside a document cannot change what this code does.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from . import reader
from .cite import make_citation, query_overlap, refusal, sentence_score
from .entities import tag
from .lead import bridge, lead
from .lexical import tokenize
from .followup import standalone
from .phrase import answer_phrase, phrase_unit
from .question import LIGHT_VERBS, rank_words
from .retrieve import heading_mask
from .store import Index
from .types import Answer, Hit, Ranked

# How REFUSAL works and how its threshold was calibrated:
# a question's evidence score is the best unit's score after `rag.reader.rescore`. `python -m
# rag.calibrate` runs the dev split (odd ids) of eval/gold.jsonl through retrieval and scoring as
# `Rag.ask` does and picks the HIGHEST threshold that still answers at least 95% of its answerable
# questions, counting those the written rules refuse: refusing a question the corpus does answer
# costs an analyst more than a weak answer whose citations they can check. The rule written in
# `rag.reader.evidence_gap` refuses besides: a question naming what the corpus never names while its
# passage holds most of its other words, a question asking for a person, date, number, place or
# organisation when no such entity (one the question does not name itself) stands in the best units
# (in a two-sentence unit, in the sentence about the question's words; or in the sentence the best unit
# continues, or a unit about the subject it names, see rag.lead), a question whose relation
# ("Who *founded* X?", "the *budget* of X"; "Which X was the *first* to ...?" when its passage lacks the
# rank) the corpus never states while its passage holds its other words, and a very long question whose
# words the answer barely holds.
# Re-run the script after changing scoring or the corpus; Settings.refusal_threshold holds the value.

# Stage one ranks every candidate unit by its pooled (late-chunked) cosine and its idf-weighted
# overlap with the question; the RESCORE best go on to `rag.reader`. Weights below were chosen on
# the dev split with bench/tune_reader.py.
W_COSINE = 0.7
RANK_PRIOR = 0.2
PAIR_COST = 0.02  # a two-sentence answer must beat a one-sentence one by this much
STRONG_MARGIN = 0.1  # "strong support": this far above the refusal threshold, with the expected answer type
REPEAT_COST = 0.2  # a follow-up's candidate that the previous answer already said (chosen on the dev split)


def candidates(index: Index, hits: list[Hit], question: str = "") -> list[tuple[int, Hit]]:
    """Sentence rows inside the hits plus one neighbour either side (evidence can straddle
    a chunk boundary), each with the best hit it came from; for a question about authorship, also
    the sentences of the hits' documents that name the author their metadata records (the byline)."""
    seen, out = set(), []
    if _AUTHORSHIP.search(question):
        for hit in hits:
            doc = index.documents[hit.chunk.doc_id]
            author = str(doc.metadata.get("author", "")).strip()
            at = doc.text.find(author) if author else -1
            for row in index.sentences_in(doc.id, at, at + len(author)) if at >= 0 else []:
                if row not in seen:
                    seen.add(row)
                    out.append((row, hit))
    for hit in hits:
        c = hit.chunk
        rows = index.sentences_in(c.doc_id, c.start, c.end)
        if rows:
            rows = [rows[0] - 1, *rows, rows[-1] + 1]
        for row in rows:
            if 0 <= row < len(index.sentences) and row not in seen and index.sentences[row][0] == c.doc_id:
                seen.add(row)
                out.append((row, hit))
    return out


def unit_features(index: Index, hits: list[Hit], question: str, qv: np.ndarray, embedder=None):
    """Single sentences and adjacent pairs of the candidates with what scores them:
    (units [(first_row, last_row)], hit per unit, unit vectors, pooled cosine, word overlap,
    fixed part: heading/pair cost + rank prior + authorship boost)."""
    cands = candidates(index, hits, question)
    if not cands:
        return [], [], np.zeros((0, 0), "float32"), *(np.zeros(0, "float32"),) * 3
    rows = [r for r, _ in cands]
    hit_of = dict(cands)
    mat = np.asarray(index.sentence_matrix(rows, embedder), dtype="float32")
    vec_of = dict(zip(rows, mat))
    units = [(r, r) for r in rows] + [(r, r + 1) for r in rows if r + 1 in vec_of
                                       and index.sentences[r + 1][0] == index.sentences[r][0]]
    vecs = []
    for first, last in units:
        v = vec_of[first] if first == last else vec_of[first] + vec_of[last]
        vecs.append(v / (np.linalg.norm(v) or 1.0))
    vecs = np.stack(vecs)
    cos = vecs @ np.asarray(qv, dtype="float32")
    qtok = set(tokenize(question))
    # question words shared with a sentence count by their rarity in the corpus (idf)
    overlap = np.array([query_overlap(qtok, span_text(index, f, l), index.lexical.idf) for f, l in units],
                       dtype="float32")
    # A heading-like line ("The Authors") says little by itself; it is never cited alone.
    # A heading with the sentence under it ("The Authors" + the bio) is a fine unit.
    headings = heading_mask(index, [l for _, l in units])
    fixed = -np.array([1.0 if head else PAIR_COST if f != l else 0.0 for (f, l), head in zip(units, headings)],
                      dtype="float32")
    # Retrieval already weighed BM25, passage and sentence similarity: passages it ranks
    # higher lend their sentences a small prior.
    top = max(h.score for h in hits) or 1.0
    fixed += RANK_PRIOR * np.array([hit_of[f].score / top for f, _ in units], dtype="float32")
    fixed += _author_boost(index, question, units)
    return units, [hit_of[f] for f, _ in units], vecs, cos, overlap, fixed


def score_units(index: Index, hits: list[Hit], question: str, qv: np.ndarray, embedder=None):
    """Score single sentences and adjacent pairs; returns (first_row, last_row, hit, score, vector),
    best first. Pairs catch answers that continue the matching sentence ("Xi declared: ...")
    and sentences that refer back to their subject ("Since its launch in 2015, ...")."""
    units, unit_hits, vecs, cos, overlap, fixed = unit_features(index, hits, question, qv, embedder)
    scores = sentence_score(cos, overlap, W_COSINE) + fixed
    order = np.argsort(-scores, kind="stable")
    return [(units[i][0], units[i][1], unit_hits[i], float(scores[i]), vecs[i]) for i in order]


# a question about who wrote the document ("Who wrote this?", "Who is the author?", "the name of the
# author"), not any question that mentions its author ("What does the author say about X?")
_AUTHORSHIP = re.compile(r"\bwho (?:wrote|writes|authored|is the (?:author|writer))\b|\bwritten by\b"
                         r"|\b(?:name of the|which|what) (?:author|writer)\b|\b(?:author|writer) of (?:this|the)\b", re.I)
AUTHOR_BOOST = 0.5


def _author_boost(index: Index, question: str, units: list[tuple[int, int]]) -> np.ndarray:
    """"Who wrote it?" is answered by the byline: for authorship questions, sentences that
    contain the author recorded in the document's metadata (front matter) are boosted."""
    boost = np.zeros(len(units), dtype="float32")
    if not _AUTHORSHIP.search(question):
        return boost
    for i, (first, last) in enumerate(units):
        doc = index.documents[index.sentences[first][0]]
        author = str(doc.metadata.get("author", "")).strip()
        if author and author.lower() in span_text(index, first, last).lower():
            boost[i] = AUTHOR_BOOST
    return boost


def ranked(index: Index, hits: list[Hit], question: str, qv: np.ndarray, embedder=None, said: str = ""):
    """(the analysed question, units best first as `rag.types.Ranked`): the RESCORE best by pooled
    score, scored again by `rag.reader.rescore`. `said`: the previous answer of a follow-up, whose
    sentences rank lower unless they hold an entity of the expected type the question does not name
    (a follow-up asks for something new; "When was that?" may be answered by the date in the sentence
    just quoted)."""
    units, unit_hits, vecs, cos, overlap, fixed = unit_features(index, hits, question, qv, embedder)
    q = reader.analysed(question)
    if not units:
        return q, []
    top = np.argsort(-(sentence_score(cos, overlap, W_COSINE) + fixed), kind="stable")[:reader.RESCORE]
    texts = [span_text(index, *units[i]) for i in top]
    # a claim cites up to max_sentences sentences: a pair spends two on one place (reader.CLAIM_PAIR_COST)
    fixed = fixed[top] - (reader.CLAIM_PAIR_COST if reader.is_claim(q) else 0.0) * np.array(
        [units[i][0] != units[i][1] for i in top])
    final, typed, tags, alone = reader.rescore(q, texts, cos[top], overlap[top], fixed, qv, embedder)
    # the expected answer type orders the units; the refusal threshold sees the score without it
    said = " ".join(said.split())
    repeated = np.array([e is None and bool(said) and " ".join(t.split()) in said for e, t in zip(typed, texts)])
    # a unit without the expected entity may continue a sentence that holds it ("She added in that same
    # address, ..."): that sentence stands in for it, with the unit's score, and the unit is cited after it
    # (no cost for the step: 0.0 and 0.05 measured the same on dev, 0.09 loses one; a cost lets another
    # typed sentence that merely shares the quotation's words outrank the one that introduced it)
    spans = [units[i] for i in top]
    leads = [lead(index, q, spans[j][0], texts[j]) if q.labels and typed[j] is None else None for j in range(len(top))]
    for j, found in enumerate(leads):
        if found is not None:
            spans[j], typed[j], tags[j], texts[j] = (found[0], found[0]), found[1], found[2], found[3]
    order = np.argsort(-(final + reader.TYPE_BONUS * np.array([e is not None for e in typed])
                         - REPEAT_COST * repeated), kind="stable")
    parts = [{"pooled": float(cos[i]), "overlap": float(overlap[i]), "alone": float(a), "fixed": float(f)}
             for i, a, f in zip(top, alone, fixed)]
    out = [Ranked(*spans[j], unit_hits[top[j]], float(final[j]), vecs[top[j]], typed[j], tags[j], texts[j], parts[j],
                  units[top[j]] if leads[j] is not None else None) for j in order]
    found = bridge(index, q, out)
    if found is not None:  # it answers for the best unit, with its score, and is cited before it
        b, best = found[0], out[0]
        out = [b._replace(score=best.score, vector=best.vector, parts=best.parts, continues=(best.first, best.last)),
               *out[1:]]
    return q, out


def refusal_gap(index: Index, q, scored: list, threshold: float, embedder=None) -> str:
    """`rag.reader.evidence_gap` for the ranked units of `ranked` ("" when they may answer q); with an
    embedder, a relation word the passage lacks may be said there in other words (reader.close_words)."""
    best = scored[0]
    hit = best.hit
    passage = f"{hit.chunk.title}\n{hit.chunk.text}"
    dotted = reader.dotted(q.text, index.documents[hit.chunk.doc_id].text)
    unknown = [t for t in q.specific | {reader.attribute(q)[1]} - {""} if not index.lexical.knows(t) and t not in dotted]
    unheard = {w for w in q.relation if not any(index.lexical.knows(t) for t in tokenize(w))}
    # a rank the question asks about ("the first to ...") is asked like a relation; the corpus may use
    # the word elsewhere ("the world's first satellite"), so it is unheard when the passage lacks it
    here = set(tokenize(f"{passage}\n{best.text}"))
    ranks = {w for w in rank_words(q.text) if not set(tokenize(w)) & here}
    q = replace(q, relation=q.relation | ranks)
    unheard |= ranks
    # the relation rule is for questions only (rag.reader.evidence_gap): no words are embedded for a claim
    lacking = reader.unsaid(q, best.text, passage, unheard) if reader.is_question(q) else []
    near = reader.close_words(embedder, lacking, best.text) if lacking else set()
    typed = [it.typed for it in scored]
    about = (reader.aside(q, unit_sentences(index, best.first, best.last), typed[0][0], index.lexical.idf)
             if typed[0] else "")
    if about:  # the entity is in the unit's other sentence, not the one about the question's words
        typed[0] = None
    return reader.evidence_gap(q, best.text, typed, unknown,
                               best.score >= threshold + STRONG_MARGIN, passage, unheard, near, about)


def extractive_answer(index: Index, question: str, hits: list[Hit], qv: np.ndarray,
                      threshold: float, max_sentences: int = 3, embedder=None, said: str = "") -> Answer:
    """Answer from the best-scoring sentences with a short answer phrase first, or refuse when the
    evidence is too weak or lacks what the question asks about (`said`: as in `ranked`)."""
    q, scored = ranked(index, hits, question, qv, embedder, said)
    if not scored:
        return refusal(question, hits)
    best = scored[0]
    gap = refusal_gap(index, q, scored, threshold, embedder)
    if best.score < threshold or gap:
        return refusal(question, hits, notice="" if best.score < threshold else f"Not answered: {gap}.")
    chosen = choose(q, scored, max_sentences, index.lexical.idf)
    source = chosen[phrase_unit(q, [it.text for it in chosen])]  # the unit holding the short answer
    phrase = answer_phrase(q, source.text, source.tags or tag([source.text])[0])
    chosen[1:] = sorted(chosen[1:], key=lambda it: (it.hit.rank, index.sentences[it.first][1]))  # the answer first
    parts, citations = [], []
    for n, (first, last, hit, score, *_rest) in enumerate(chosen, start=1):
        doc_id, s, _ = index.sentences[first]
        e = index.sentences[last][2]
        citations.append(make_citation(index, n, doc_id, s, e, hit.score, support=score))
        parts.append(f"{' '.join(index.documents[doc_id].text[s:e].split())} [{n}]")
    short, span = "", None
    if phrase is not None:
        doc_id, s, _ = index.sentences[source.first]
        span = (doc_id, s + phrase[0], s + phrase[1])
        short = index.documents[doc_id].text[span[1]:span[2]]
    strong = best.score >= threshold + STRONG_MARGIN and (best.typed is not None or not q.labels)
    return Answer(question=question, text=" ".join(parts), citations=tuple(citations), hits=tuple(hits),
                  short_answer=short, short_answer_span=span, confidence="strong" if strong else "partial")


def unit_sentences(index: Index, first: int, last: int) -> list[str]:
    """The sentences of a unit as consecutive slices of its `span_text` (each up to the next one's start)."""
    doc_id, base, _ = index.sentences[first]
    cuts = [index.sentences[r][1] - base for r in range(first + 1, last + 1)]
    text = span_text(index, first, last)
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def choose(q, scored: list, max_sentences: int, idf) -> list:
    """The units an answer cites, from `ranked`'s units best first: the best one, then the next ones within
    reader.ANSWER_MARGIN of it, up to max_sentences sentences, no near-duplicates; answering a question (not
    checking a claim, whose evidence is every close sentence), only those that hold words of it the best one
    lacks: a sentence that repeats what the best one matched is rarely the answer, and cited it is noise.
    A question whose expected entity (a person, date, number ...) the best unit holds is answered by that
    unit alone (dev citation precision 0.724 -> 0.759, answer contains unchanged)."""
    best = scored[0]
    if best.typed is not None:  # the entity of the expected type stands in the best unit: it answers alone
        return [best, *_continued(best)]
    chosen, used = [best], set(range(best.first, best.last + 1))
    asks = reader.is_question(q)
    for item in scored[1:]:
        size = sum(c.last - c.first + 1 for c in chosen)
        if item.score < best.score - (reader.ANSWER_MARGIN if asks else reader.CLAIM_MARGIN) or size >= max_sentences:
            break
        rows = set(range(item.first, item.last + 1))
        if rows & used or size + len(rows) > max_sentences:
            continue
        if asks and adds(q, item.text, best.text, idf) <= reader.NEW_WORDS:
            continue
        if all(float(item.vector @ c.vector) <= 0.92 for c in chosen):  # skip near-duplicates
            chosen.append(item)
            used |= rows
    return chosen


def _continued(item: Ranked) -> list[Ranked]:
    """The unit a sentence found by `rag.lead.lead` stands in for, as an item to cite after it ([] if none)."""
    if item.continues is None:
        return []
    first, last = item.continues
    return [item._replace(first=first, last=last, typed=None, tags=None, text="", continues=None)]


def adds(q, text: str, best: str, idf) -> float:
    """The idf-weighted share of q's content words (not its wh-noun or light verbs) that `text` holds
    and `best` does not: what an extra sentence adds to the answer (idf: term -> weight). Names and
    numbers do not count as added: they say whom the question is about (a follow-up's rewriting adds
    the previous turn's), not what it asks about them."""
    words = q.terms - {q.wh} - LIGHT_VERBS
    new = set(tokenize(text)) & words - set(tokenize(best)) - q.specific
    return sum(map(idf, new)) / (sum(map(idf, words)) or 1.0)


def span_text(index: Index, first: int, last: int) -> str:
    doc_id, s, _ = index.sentences[first]
    return index.documents[doc_id].text[s:index.sentences[last][2]]


def previous_answer(question: str, standalone: str, history) -> str:
    """The last answer's text when `question` was read as a follow-up of it (else ""), for `ranked`;
    a question asked again word for word is no follow-up: it gets the same answer."""
    if not history or standalone == question or " ".join(str(history[-1][0]).split()) == " ".join(question.split()):
        return ""
    return str(getattr(history[-1][1], "text", history[-1][1]) or "")


def condense_heuristic(question: str, history: tuple | list) -> str:
    """A follow-up rewritten as a standalone question from the previous turn (rag.followup.standalone)."""
    return standalone(question, history)
