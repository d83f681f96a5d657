"""Small frozen records that flow through the pipeline.

Data flow (one module per stage):

    corpus/ files --load--> Document
    Document --chunk--> Chunk (+ sentence spans)         text[start:end] == chunk.text
    Chunk --embed--> vectors --index--> index/ (FAISS + BM25 + manifest)
    question --retrieve--> Hit (Chunk + scores)
    Hits --answer--> Answer (text with [n] markers + Citation per marker)
    Answer --> cli / ui / evaluate
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple


def content_hash(*parts: str) -> str:
    """Stable short hash of text parts, used for ids and change detection."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Document:
    """One source file: id is its path relative to corpus/."""

    id: str
    title: str
    text: str
    metadata: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def hash(self) -> str:
        # the file's modification day is recorded for filters but is no change of the document
        return content_hash(self.title, self.text, repr(sorted(i for i in self.metadata.items() if i[0] != "modified")))


@dataclass(frozen=True)
class Chunk:
    """A span of a document; `document.text[start:end] == text`."""

    doc_id: str
    start: int
    end: int
    text: str
    title: str = ""
    section: str = ""
    page: int | None = None

    @property
    def id(self) -> str:
        return content_hash(self.doc_id, str(self.start), self.text)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its scores (higher is better)."""

    chunk: Chunk
    score: float
    rank: int
    dense: float | None = None
    bm25: float | None = None
    collection: str = ""  # the collection it came from (rag.collections)


@dataclass(frozen=True)
class Citation:
    """An exact quote backing one `[n]` marker."""

    n: int
    doc_id: str
    title: str
    start: int
    end: int
    quote: str
    score: float
    support: float = 1.0
    page: int | None = None
    collection: str = ""  # the collection of the cited document

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Answer:
    """Answer text with `[n]` markers, the citations behind them, and status."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...] = ()
    refused: bool = False
    backend: str = "extractive"
    flagged: tuple[str, ...] = ()  # sentences without verified support
    notice: str = ""
    standalone_question: str = ""
    short_answer: str = ""  # the answer phrase, an exact span of a cited sentence ("" for why/how)
    short_answer_span: tuple[str, int, int] | None = None  # (doc_id, start, end) of short_answer
    confidence: str = ""  # "strong" or "partial" support (extractive)
    mode: str = ""  # the retrieval mode that found the passages

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question or self.question,
            "answer": self.text,
            "refused": self.refused,
            "backend": self.backend,
            "notice": self.notice,
            "flagged": list(self.flagged),
            "citations": [c.to_dict() for c in self.citations],
            "short_answer": self.short_answer,
            "short_answer_span": (dict(zip(("doc_id", "start", "end"), self.short_answer_span))
                                  if self.short_answer_span else None),
            "confidence": self.confidence,
            "mode": self.mode,
            "passages": [hit_to_dict(h) for h in self.hits],
        }


def hit_to_dict(hit: Hit) -> dict:
    c = hit.chunk
    return {
        "rank": hit.rank,
        "score": round(hit.score, 6),
        "dense": None if hit.dense is None else round(hit.dense, 6),
        "bm25": None if hit.bm25 is None else round(hit.bm25, 6),
        "doc_id": c.doc_id,
        "title": c.title,
        "start": c.start,
        "end": c.end,
        "page": c.page,
        "text": c.text,
        "collection": hit.collection,
    }


class Ranked(NamedTuple):
    """A candidate unit of the reader (rag.answer.ranked), best first: sentence rows `first`..`last` of
    the index, the hit it came from, its score and vector, the entity of the expected answer type in its
    text (a (start, end) span, None if none), its spaCy tags, its text, the parts of its score, and the
    rows of the unit it stands in for (rag.lead: a sentence that a quotation continues), if any."""

    first: int
    last: int
    hit: Any
    score: float
    vector: Any
    typed: tuple[int, int] | None
    tags: Any
    text: str
    parts: dict
    continues: tuple[int, int] | None = None
