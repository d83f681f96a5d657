"""Extractive answers: pick the sentences that answer the question and cite their exact spans.

Documents are data: sentences are only ever selected by similarity and quoted verbatim,
so an instruction written inside a document cannot change what this code does.
"""

from __future__ import annotations

import re

import numpy as np

from .errors import RagError
from .lexical import tokenize
from .store import Index
from .types import Answer, Citation, Hit

# How REFUSAL works and how its threshold was calibrated:
# the evidence score of a question is the best score over candidate sentences of
# `sentence_score` below. On eval/gold.jsonl, `python -m rag.calibrate` (see rag/calibrate.py)
# sorts the scores of the answerable and the unanswerable questions and picks the
# threshold that maximises balanced accuracy (mean of answerable-kept and unanswerable-
# refused rates), preferring the lower threshold on ties so answerable questions are not
# refused. The chosen value is Settings.refusal_threshold.
NOT_IN_CORPUS = "The corpus does not contain an answer to this question."

W_COSINE, W_OVERLAP = 0.8, 0.2
ANSWER_MARGIN = 0.06  # extra sentences must score within this of the best one


def sentence_score(cosine: np.ndarray, overlap: np.ndarray) -> np.ndarray:
    return W_COSINE * cosine + W_OVERLAP * overlap


def query_overlap(question_tokens: set[str], sentence: str) -> float:
    """Share of the question's content words (stemmed) that the sentence contains."""
    if not question_tokens:
        return 0.0
    return len(question_tokens & set(tokenize(sentence))) / len(question_tokens)


def candidates(index: Index, hits: list[Hit]) -> list[tuple[int, Hit]]:
    """Sentence rows inside the hits (and the sentence straddling each edge), best hit first."""
    seen, out = set(), []
    for hit in hits:
        c = hit.chunk
        for row in index.sentences_in(c.doc_id, c.start, c.end):
            if row not in seen:
                seen.add(row)
                out.append((row, hit))
    return out


def score_sentences(index: Index, hits: list[Hit], question: str, qv: np.ndarray, embedder=None):
    """(row, hit, score, vector) for every candidate sentence, best first."""
    cands = candidates(index, hits)
    if not cands:
        return []
    rows = [r for r, _ in cands]
    mat = index.sentence_matrix(rows, embedder)
    cos = mat @ np.asarray(qv, dtype="float32")
    qtok = set(tokenize(question))
    overlap = np.array([query_overlap(qtok, _text(index, r)) for r in rows], dtype="float32")
    scores = sentence_score(cos, overlap)
    # A heading-like line ("The Authors") says little by itself; it is never cited alone.
    scores = np.where([_is_heading(index, r) for r in rows], scores - 1.0, scores)
    order = np.argsort(-scores, kind="stable")
    return [(rows[i], cands[i][1], float(scores[i]), mat[i]) for i in order]


def extractive_answer(index: Index, question: str, hits: list[Hit], qv: np.ndarray,
                      threshold: float, max_sentences: int = 3, embedder=None) -> Answer:
    """Answer from the best-scoring sentences, or refuse when the evidence is too weak."""
    scored = score_sentences(index, hits, question, qv, embedder)
    if not scored or scored[0][2] < threshold:
        return refusal(question, hits)
    best = scored[0][2]
    chosen = [scored[0]]
    for item in scored[1:]:
        if len(chosen) == max_sentences or item[2] < best - ANSWER_MARGIN:
            break
        if all(float(item[3] @ c[3]) <= 0.92 for c in chosen):  # skip near-duplicates
            chosen.append(item)
    chosen.sort(key=lambda it: (it[1].rank, index.sentences[it[0]][1]))
    parts, citations = [], []
    for n, (row, hit, score, _vec) in enumerate(chosen, start=1):
        doc_id, s, e = index.sentences[row]
        citations.append(make_citation(index, n, doc_id, s, e, hit.score, support=score))
        parts.append(f"{index.documents[doc_id].text[s:e]} [{n}]")
    return Answer(question=question, text=" ".join(parts), citations=tuple(citations), hits=tuple(hits))


def _is_heading(index: Index, row: int) -> bool:
    text = _text(index, row).strip()
    if text.lower().startswith("by "):  # a byline answers "who wrote it"
        return False
    return len(text.split()) <= 6 and not text.endswith((".", "?", "!", "\u201d", '"'))


def refusal(question: str, hits: list[Hit], notice: str = "") -> Answer:
    return Answer(question=question, text=NOT_IN_CORPUS, citations=(), hits=tuple(hits),
                  refused=True, notice=notice)


def make_citation(index: Index, n: int, doc_id: str, start: int, end: int, score: float,
                  support: float = 1.0) -> Citation:
    """A citation whose quote is checked against the stored document right now."""
    doc = index.documents.get(doc_id)
    if doc is None or not 0 <= start < end <= len(doc.text):
        raise RagError(f"citation [{n}] points outside {doc_id!r}; run `rag index --rebuild`")
    page = None
    starts = doc.metadata.get("page_starts")
    if starts:
        import bisect

        page = bisect.bisect_right(starts, start)
    return Citation(n=n, doc_id=doc_id, title=doc.title, start=start, end=end,
                    quote=doc.text[start:end], score=round(float(score), 6),
                    support=round(float(support), 4), page=page)


def verify(index: Index, citation: Citation) -> bool:
    doc = index.documents.get(citation.doc_id)
    return doc is not None and doc.text[citation.start:citation.end] == citation.quote


def _text(index: Index, row: int) -> str:
    doc_id, s, e = index.sentences[row]
    return index.documents[doc_id].text[s:e]


# Follow-ups in extractive mode (no LLM to rewrite them): a question that leans on the
# conversation -- a pronoun or demonstrative with no topic of its own, or a very short
# question -- gets the previous user question's content words appended for retrieval.
_ANAPHORA = re.compile(r"\b(it|its|this|that|these|those|they|them|their|he|she|his|her|the same|there)\b", re.I)


def condense_heuristic(question: str, history: tuple | list) -> str:
    previous = [q for q, _a in history if q and q.strip()] if history else []
    if not previous:
        return question
    content = tokenize(question)
    if _ANAPHORA.search(question) or len(content) <= 2:
        return f"{question} ({previous[-1].strip()})"
    return question
