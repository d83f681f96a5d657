"""Request and response bodies of the HTTP API (pydantic). The answer is `Answer.to_dict`, field for field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .config import BACKENDS, MODES
from .scoped import DEFAULT_COLLECTION


class Error(BaseModel):
    error: str = Field(description="one line: the bad value and the fix")


class Turn(BaseModel):
    question: str = Field(max_length=100_000)
    answer: str = Field("", max_length=100_000, description="the answer text given to that question")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=100_000, examples=["Which country's program inspired Made in China 2025?"])
    k: int | None = Field(None, ge=1, le=100, description="number of passages (default: the top_k setting)")
    mode: Literal[MODES] | None = Field(None, description="retrieval mode (default: the mode setting)")
    collections: list[str] = Field(default_factory=lambda: [DEFAULT_COLLECTION], max_length=20,
                                   description="collections searched together (rankings fused; citations name their collection)")
    filters: dict[str, str] = Field(default_factory=dict, max_length=20, examples=[{"author": "Elsa Kania"}],
                                    description="metadata filters applied before the cut to k: key -> value or "
                                    "operator and value, e.g. {\"date\": \">=2019-01-01\", \"path\": \"reports/*\"}")


class AskRequest(SearchRequest):
    backend: Literal[BACKENDS] | None = Field(None, description="answer backend (default: the backend setting)")
    history: list[Turn] = Field(default_factory=list, max_length=50,
                                description="earlier turns, oldest first, for a follow-up question")


class Passage(BaseModel):
    model_config = ConfigDict(extra="allow")  # fields added to the record later pass through
    rank: int
    score: float
    dense: float | None
    bm25: float | None
    doc_id: str
    title: str
    start: int
    end: int
    page: int | None
    text: str


class CitationOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # fields added to the record later pass through
    n: int
    doc_id: str
    title: str
    start: int
    end: int
    quote: str = Field(description="document.text[start:end], checked when built")
    score: float
    support: float
    page: int | None


class Span(BaseModel):
    doc_id: str
    start: int
    end: int


class AnswerOut(BaseModel):
    """`Answer.to_dict()`, as `rag ask --json` prints it."""

    model_config = ConfigDict(extra="allow")

    question: str
    standalone_question: str
    answer: str = Field(description="sentences with [n] citation markers")
    refused: bool
    backend: str
    notice: str
    flagged: list[str]
    citations: list[CitationOut]
    short_answer: str
    short_answer_span: Span | None
    confidence: str
    mode: str
    passages: list[Passage]


class SearchOut(BaseModel):
    question: str
    mode: str
    collections: list[str]
    passages: list[Passage]


class Health(BaseModel):
    status: Literal["ok", "no index"]
    model: str
    documents: int
    chunks: int
    detail: str = Field("", description="why there is no usable index, if there is none")


class Collection(BaseModel):
    name: str
    documents: int
    chunks: int


class DocumentOut(BaseModel):
    id: str = Field(description="path relative to the collection's corpus directory")
    title: str
    chunks: int
    indexed_at: str


class Upload(BaseModel):
    added: bool = Field(description="false when the same content was already in the collection")
    document: str = Field(description="the id it was stored under (a cleaned, free file name)")
    status: str


class Deleted(BaseModel):
    deleted: str
    status: str
