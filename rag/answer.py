"""Extractive answers: pick the sentences that answer the question and cite their exact spans.

Documents are data: sentences are only ever selected by similarity and quoted verbatim,
so an instruction written inside a document cannot change what this code does.
"""

from __future__ import annotations

import re

import numpy as np

from .cite import make_citation, query_overlap, refusal, sentence_score
from .lexical import tokenize
from .retrieve import heading_mask
from .store import Index
from .types import Answer, Hit

# How REFUSAL works and how its threshold was calibrated:
# a question's evidence score is the best `score_units` score among the candidate sentences.
# `python -m rag.calibrate` runs every question of eval/gold.jsonl through retrieval and
# scoring, then picks the HIGHEST threshold that still answers at least 90% of the
# answerable questions (TARGET_ANSWERED): refusing a question the corpus does answer costs
# an analyst more than a weak answer whose citations they can check. It prints the refusal
# recall reached on the unanswerable questions at that threshold. The chosen value is
# Settings.refusal_threshold; re-run the script after changing scoring or the corpus.
# Sentence vectors are pooled from their chunk's pass, so one chunk's sentences share context and
# their cosines sit close together: the words a sentence shares with the question carry 0.3 of
# its score, and an extra sentence must come within 0.05 of the best (grid on the dev split of
# eval/gold.jsonl, odd ids; the held-out half agreed).
W_COSINE = 0.7
ANSWER_MARGIN = 0.05  # extra sentences must score within this of the best one
RANK_PRIOR = 0.2
PAIR_COST = 0.02  # a two-sentence answer must beat a one-sentence one by this much


def candidates(index: Index, hits: list[Hit]) -> list[tuple[int, Hit]]:
    """Sentence rows inside the hits plus one neighbour either side (evidence can straddle
    a chunk boundary), each with the best hit it came from."""
    seen, out = set(), []
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


def score_units(index: Index, hits: list[Hit], question: str, qv: np.ndarray, embedder=None):
    """Score single sentences and adjacent pairs; returns (first_row, last_row, hit, score, vector),
    best first. Pairs catch answers that continue the matching sentence ("Xi declared: ...")
    and sentences that refer back to their subject ("Since its launch in 2015, ...")."""
    cands = candidates(index, hits)
    if not cands:
        return []
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
    overlap = np.array([query_overlap(qtok, _span_text(index, f, l)) for f, l in units], dtype="float32")
    scores = sentence_score(cos, overlap, W_COSINE)
    # A heading-like line ("The Authors") says little by itself; it is never cited alone.
    # A heading with the sentence under it ("The Authors" + the bio) is a fine unit.
    headings = heading_mask(index)
    scores -= np.array([1.0 if headings[l] else PAIR_COST if f != l else 0.0 for f, l in units], dtype="float32")
    # Retrieval already weighed BM25, passage and sentence similarity: passages it ranks
    # higher lend their sentences a small prior.
    top = max(h.score for h in hits) or 1.0
    scores += RANK_PRIOR * np.array([hit_of[f].score / top for f, _ in units], dtype="float32")
    scores += _author_boost(index, question, units)
    order = np.argsort(-scores, kind="stable")
    return [(units[i][0], units[i][1], hit_of[units[i][0]], float(scores[i]), vecs[i]) for i in order]


_AUTHORSHIP = re.compile(r"\b(who (?:wrote|writes|authored|is the author)|author|written by|writer)\b", re.I)
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
        if author and author.lower() in _span_text(index, first, last).lower():
            boost[i] = AUTHOR_BOOST
    return boost


def extractive_answer(index: Index, question: str, hits: list[Hit], qv: np.ndarray,
                      threshold: float, max_sentences: int = 3, embedder=None) -> Answer:
    """Answer from the best-scoring sentences, or refuse when the evidence is too weak."""
    scored = score_units(index, hits, question, qv, embedder)
    if not scored or scored[0][3] < threshold:
        return refusal(question, hits)
    best = scored[0][3]
    chosen, used = [scored[0]], set(range(scored[0][0], scored[0][1] + 1))
    for item in scored[1:]:
        size = sum(c[1] - c[0] + 1 for c in chosen)
        if item[3] < best - ANSWER_MARGIN or size >= max_sentences:
            break
        rows = set(range(item[0], item[1] + 1))
        if rows & used or size + len(rows) > max_sentences:
            continue
        if all(float(item[4] @ c[4]) <= 0.92 for c in chosen):  # skip near-duplicates
            chosen.append(item)
            used |= rows
    chosen.sort(key=lambda it: (it[2].rank, index.sentences[it[0]][1]))
    parts, citations = [], []
    for n, (first, last, hit, score, _vec) in enumerate(chosen, start=1):
        doc_id, s, _ = index.sentences[first]
        e = index.sentences[last][2]
        citations.append(make_citation(index, n, doc_id, s, e, hit.score, support=score))
        parts.append(f"{' '.join(index.documents[doc_id].text[s:e].split())} [{n}]")
    return Answer(question=question, text=" ".join(parts), citations=tuple(citations), hits=tuple(hits))


def _span_text(index: Index, first: int, last: int) -> str:
    doc_id, s, _ = index.sentences[first]
    return index.documents[doc_id].text[s:index.sentences[last][2]]


# Follow-ups in extractive mode (no LLM to rewrite them): a question that leans on the
# conversation -- a pronoun or demonstrative with no topic of its own, or a very short
# question -- gets the previous user question's content words appended for retrieval.
_ANAPHORA = re.compile(r"\b(it|its|this|that|these|those|they|them|their|he|she|his|her|the same|there"
                      r"|the (?:article|author|document|text|report|paper|piece|story|plan|policy|initiative))\b", re.I)


def condense_heuristic(question: str, history: tuple | list) -> str:
    previous = [q for q, _a in history if q and q.strip()] if history else []
    if not previous:
        return question
    content = tokenize(question)
    if _ANAPHORA.search(question) or len(content) <= 2:
        return f"{question} ({previous[-1].strip()})"
    return question
