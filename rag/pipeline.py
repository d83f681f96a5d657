"""The pipeline in one place: condense -> retrieve -> answer (cite), with lazy, hot-swappable state."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from . import answer as extractive
from .config import Settings, load_settings
from .errors import RagError
from .types import Answer, Hit

NOTICE_TRUNCATED = "Your question was over {n} characters and was truncated."


class Rag:
    """Holds settings, the embedder and the open index; reloads the index when a build swaps it."""

    def __init__(self, settings: Settings | None = None, embedder=None, generator=None):
        self.settings = settings or load_settings()
        self._embedder = embedder
        self.generator = generator
        self._index = None
        self._version = None
        self._lock = threading.Lock()

    @property
    def embedder(self):
        if self._embedder is None:
            from .embed import SentenceTransformerEmbedder

            self._embedder = SentenceTransformerEmbedder(self.settings.model, self.settings.batch_size,
                                                         self.settings.embed_precision, self.settings.query_precision)
        return self._embedder

    @property
    def index(self):
        """The current index; a new build is picked up by the next request, in-flight ones keep theirs."""
        link = Path(self.settings.index_dir) / "current"
        try:
            version = os.readlink(link)
        except OSError:
            version = None
        with self._lock:
            if self._index is None or version != self._version:
                from .store import open_index

                self._index = open_index(self.settings)
                self._version = version
            return self._index

    def build(self, rebuild: bool = False, log=print):
        from .index import build

        embedder = self.embedder
        if self.settings.ray_address:  # documents embedded on a Ray cluster; same records either way
            from .distributed import RayEmbedder

            embedder = RayEmbedder(embedder, self.settings.ray_address)
        report = build(self.settings, embedder, rebuild=rebuild, log=log)
        return report

    def search(self, question: str, k: int | None = None, mode: str | None = None) -> list[Hit]:
        question, _ = self.clean(question)
        return self.retrieve(self.index, question, k, mode)

    def retrieve(self, index, question: str, k: int | None = None, mode: str | None = None, query_vector=None):
        """`retrieve.search` with this pipeline's settings."""
        from .retrieve import search

        s = self.settings
        return search(index, self.embedder, question, k or s.top_k, mode or s.mode, s.rrf_k, s.dedup_threshold,
                      query_vector=query_vector, bm25_weight=s.bm25_weight, merge_adjacent=s.merge_adjacent)

    def clean(self, question: str) -> tuple[str, str]:
        """Validate a question; over-long ones are cut with a notice. Lone surrogates (bytes that
        were not UTF-8 in a command-line argument) become U+FFFD."""
        if not isinstance(question, str) or not question.strip():
            raise RagError("the question is empty; type a question")
        question = " ".join(question.encode("utf-16", "surrogatepass").decode("utf-16", "replace").split())
        if not any(ch.isalnum() for ch in question):  # before truncating: a long one is no better
            raise RagError("the question has no words in it; type a question")
        limit = self.settings.max_question_chars
        if len(question) > limit:
            return question[:limit], NOTICE_TRUNCATED.format(n=limit)
        return question, ""

    def ask(self, question: str, history=(), k: int | None = None, mode: str | None = None,
            backend: str | None = None) -> Answer:
        """Answer with verified citations (the last event of `ask_stream`)."""
        final = None
        for final in self.ask_stream(question, history, k, mode, backend):
            pass
        return final

    def ask_stream(self, question: str, history=(), k: int | None = None, mode: str | None = None,
                   backend: str | None = None) -> Iterator[str | Answer]:
        """Yield text pieces as they are produced, then the finished Answer."""
        s = self.settings
        question, notice = self.clean(question)
        backend = backend or s.backend
        index = self.index
        if backend == "llm":
            from .generate import llm_answer_stream

            yield from llm_answer_stream(self, index, question, history, k or s.top_k, mode or s.mode, notice)
            return
        standalone = extractive.condense_heuristic(question, history)
        qv = self.embedder.embed_query(standalone)
        hits = self.retrieve(index, standalone, k, mode, query_vector=qv)
        result = extractive.extractive_answer(index, standalone, hits, qv, s.refusal_threshold,
                                              s.max_answer_sentences, self.embedder)
        result = _finish(result, question, standalone, notice)
        yield result.text
        yield result


def _finish(result: Answer, question: str, standalone: str, notice: str) -> Answer:
    from dataclasses import replace

    notices = " ".join(n for n in (notice, result.notice) if n)
    return replace(result, question=question, standalone_question=standalone, notice=notices)
