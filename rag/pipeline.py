"""The pipeline in one place: condense -> retrieve -> answer (cite), for both answer backends,
with lazy, hot-swappable state.

    extractive:  standalone = condense_heuristic(question, history)
                 hits = retrieve(standalone);  answer = extractive_answer(hits)
    llm:         standalone = condense(model, history) or the heuristic
                 hits = retrieve(standalone);  reply = model(fenced hits)
                 answer = check_answer(reply)  (every claim matched to its passage, or flagged)
                 any endpoint failure -> the extractive answer, with a notice
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from . import answer as extractive
from . import entities
from .config import Settings, load_settings
from .errors import RagError
from .lexical import tokenize
from .types import Answer, Hit

log = logging.getLogger(__name__)
NOTICE_TRUNCATED = "Your question was over {n} characters and was truncated."
FAILED = "LLM backend failed ({reason}); showing the extractive answer"
UNVERIFIED = "None of the answer's sentences could be matched to the sources; read it with care."


class Rag:
    """Holds settings, the embedder and the open index; reloads the index when a build swaps it."""

    def __init__(self, settings: Settings | None = None, embedder=None, generator=None, store=None):
        self.settings = settings or load_settings()
        from .collections import names, settings_for

        self.collections = names(self.settings)  # several: searched together (rag.merged)
        # each collection's Settings, worked out once (an unknown name is an error here, not per question)
        self._parts = [settings_for(self.settings, n) for n in self.collections] if len(self.collections) > 1 else []
        if len(self.collections) == 1:
            self.settings = settings_for(self.settings, self.collections[0])
        self._embedder = embedder
        self.generator = generator
        self.store = store  # a rag.vectorstore.VectorStore; None: the one RAG_VECTOR_STORE names
        self._index = None
        self._version = None
        self._lock = threading.Lock()

    @property
    def embedder(self):
        if self._embedder is None:
            from .embed import SentenceTransformerEmbedder

            s = self.settings
            self._embedder = SentenceTransformerEmbedder(s.model, s.batch_size, s.embed_precision, s.query_precision,
                                                         s.cache_dir, runtime=s.embed_runtime)
        return self._embedder

    @property
    def index(self):
        """The current index; a new build is picked up by the next request, in-flight ones keep theirs.
        Several collections: one merged index over theirs (rag.merged), reopened when any is rebuilt."""
        parts = self._parts
        version = tuple(_version(s.index_dir) for s in parts or [self.settings])
        with self._lock:
            if self._index is None or version != self._version:
                from .store import open_index

                if parts:
                    from .merged import open_merged

                    self._index = open_merged(parts, self.store)
                else:
                    self._index = open_index(self.settings, store=self.store)
                self._version = version
            return self._index

    def warm_up(self) -> None:
        """Load the index, the embedding model and the reader's tagger now, so the first question is as
        fast as later ones (the app does this before it says it is serving)."""
        from .embed import import_torch_first
        from .entities import nlp

        if getattr(self.embedder, "vino", None) is None:  # uploads embed with torch: it must come before faiss
            import_torch_first()
        index = self.index
        self.embedder.embed_query("warm up")
        if index.chunks:
            self.embedder.embed_documents([index.chunks[0].text])
        nlp()

    def build(self, rebuild: bool = False, log=print):
        from .index import build

        if len(self.collections) > 1:
            raise RagError(f"index one collection at a time, not {', '.join(self.collections)}")
        embedder = self.embedder
        if self.settings.ray_address:  # documents embedded on a Ray cluster; same records either way
            from .distributed import RayEmbedder

            embedder = RayEmbedder(embedder, self.settings.ray_address)
        result = build(self.settings, embedder, rebuild=rebuild, log=log, store=self.store)
        if hasattr(self.embedder, "prepare_questions"):  # the ONNX question path, exported once while torch is here
            self.embedder.prepare_questions()
        return result

    def search(self, question: str, k: int | None = None, mode: str | None = None, filters=None) -> list[Hit]:
        """Ranked passages; `filters` (rag.filters: "author=...", {"date": ">=2019"}) apply before the cut to k."""
        from .filters import parse, restrict

        question, flt = self.clean(question)[0], parse(filters)  # a bad filter is reported before the index opens
        return self._tag(self.retrieve(restrict(self.index, flt), question, k, mode))

    def _tag(self, result):
        """Hits and citations named by their collection (rag.merged.tag)."""
        from .merged import tag

        return tag(result, None if len(self.collections) > 1 else self.settings.collection or "default")

    def retrieve(self, index, question: str, k: int | None = None, mode: str | None = None, query_vector=None,
                 trace: dict | None = None):
        """`retrieve.search` with this pipeline's settings."""
        from .retrieve import search

        s = self.settings
        return search(index, self.embedder, question, k or s.top_k, mode or s.mode, s.rrf_k, s.dedup_threshold,
                      query_vector=query_vector, bm25_weight=s.bm25_weight, merge_adjacent=s.merge_adjacent,
                      trace=trace)

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
            backend: str | None = None, filters=None) -> Answer:
        """Answer with verified citations (the last event of `ask_stream`)."""
        final = None
        for final in self.ask_stream(question, history, k, mode, backend, filters):
            pass
        return final

    def ask_stream(self, question: str, history=(), k: int | None = None, mode: str | None = None,
                   backend: str | None = None, filters=None) -> Iterator[str | Answer]:
        """Yield text pieces as they are produced, then the finished Answer (`filters` as in `search`)."""
        from .filters import parse, restrict

        question, notice = self.clean(question)
        if (backend or self.settings.backend) != "llm":
            # the extractive reader tags with spaCy and embeds sentences in fp32: load both in the
            # background while the index opens and the question is embedded (cold `rag ask` 1.6 -> 1.4 s)
            entities.preload()
            getattr(self.embedder, "preload_reader", lambda: None)()
        index = restrict(self.index, parse(filters))
        k, mode = k or self.settings.top_k, mode or self.settings.mode
        if (backend or self.settings.backend) == "llm":
            for event in self._llm_stream(index, question, history, k, mode, notice):
                yield event if isinstance(event, str) else self._tag(event)
            return
        result = self._extractive(index, question, history, k, mode)
        result = self._tag(_with_notices(result, notice, result.notice))
        yield result.text
        yield result

    def _extractive(self, index, question: str, history, k: int, mode: str) -> Answer:
        standalone = extractive.condense_heuristic(question, history)
        qv = self.embedder.embed_query(standalone)
        hits = self.retrieve(index, standalone, k, mode, query_vector=qv)
        said = extractive.previous_answer(question, standalone, history)
        result = extractive.extractive_answer(index, standalone, hits, qv, self.settings.refusal_threshold,
                                              self.settings.max_answer_sentences, self.embedder, said)
        return replace(result, question=question, standalone_question=standalone, mode=mode)

    # ---- the LLM backend

    def _llm_stream(self, index, question: str, history, k: int, mode: str, notice: str) -> Iterator[str | Answer]:
        """Yield the model's text pieces as they stream, then one checked Answer (backend "llm")."""
        from .cite import check_answer, refusal, says_not_found
        from .generate import GenerationError, connect
        from .prompt import answer_messages, load_prompts

        prompts = load_prompts(self.settings.prompts_dir)
        if self.generator is None:
            self.generator = connect(self.settings)
        try:
            standalone = self._condense(prompts, question, history)
        except Exception as e:  # the endpoint is external: any failure means "answer without it"
            yield from self._fallback(index, question, history, k, mode, notice, e, streamed=False)
            return
        qv = self.embedder.embed_query(standalone)
        hits = self.retrieve(index, standalone, k, mode, query_vector=qv)
        if not hits:
            yield _llm_final(refusal(question, hits), standalone, notice)
            return
        pieces: list[str] = []
        try:
            for piece in self.generator.stream(answer_messages(prompts, standalone, hits)):
                if not isinstance(piece, str):
                    raise GenerationError(f"the generator yielded {type(piece).__name__}, not text")
                pieces.append(piece)
                yield piece
            if not "".join(pieces).strip():
                raise GenerationError("empty reply from the model")
        except Exception as e:
            yield from self._fallback(index, question, history, k, mode, notice, e, streamed=bool(pieces))
            return
        raw = "".join(pieces)
        text, citations, flagged = check_answer(index, self.embedder, raw, hits)
        if not citations and says_not_found(raw):
            yield _llm_final(refusal(question, hits), standalone, notice)
            return
        yield _llm_final(Answer(question=question, text=text, citations=citations, hits=tuple(hits),
                                flagged=flagged, mode=mode), standalone, notice, "" if citations else UNVERIFIED)

    def _condense(self, prompts, question: str, history) -> str:
        """A standalone question from the model; the extractive heuristic if its reply is unusable."""
        from .prompt import condense_messages, standalone_from_reply

        if not history:
            return question
        reply = "".join(self.generator.stream(condense_messages(prompts, question, history)))
        line = standalone_from_reply(reply)
        # It must keep a content word of the question (of the conversation if the question has none):
        # a tiny model often just repeats the previous question.
        known = set(tokenize(question)) or set().union(*(tokenize(str(q)) for q, _a in history))
        if not line or len(line) > max(300, 3 * len(question)) or not known & set(tokenize(line)):
            return extractive.condense_heuristic(question, history)
        return line

    def _fallback(self, index, question, history, k, mode, notice, error: Exception, streamed: bool):
        from .generate import GenerationError

        reason = str(error) if isinstance(error, GenerationError) else f"{type(error).__name__}: {error}"
        warning = FAILED.format(reason=reason)
        log.warning("%s", warning)
        if streamed:  # the partial model text already shown is not part of the answer
            yield "\n\n"
        result = self._extractive(index, question, history, k, mode)
        yield result.text
        yield _with_notices(result, notice, warning, result.notice)


def _version(index_dir) -> str | None:
    try:
        return os.readlink(Path(index_dir) / "current")
    except OSError:
        return None


def _with_notices(answer: Answer, *notices: str) -> Answer:
    return replace(answer, notice=" ".join(n for n in notices if n))


def _llm_final(answer: Answer, standalone: str, *notices: str) -> Answer:
    return replace(_with_notices(answer, *notices, answer.notice), backend="llm", standalone_question=standalone)
