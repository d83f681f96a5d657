"""LLM answers: condense -> retrieve -> prompt with fenced sources -> stream -> check every sentence.

The model's words are never trusted. Each sentence that cites [n] is matched against the
sentences of passage n and cited at the best one's exact span only if the match is strong
enough; every other sentence is listed in `Answer.flagged`. Any endpoint failure (timeout,
HTTP error, malformed stream) falls back to the extractive answer with a notice.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import Protocol

import numpy as np

from .answer import make_citation, query_overlap, refusal, sentence_score
from .chunk import split_sentences
from .errors import RagError
from .lexical import tokenize
from .types import Answer, Citation, Hit

log = logging.getLogger(__name__)

# SUPPORT: a sentence's support is `sentence_score` (0.8 cosine of the two embedded alone + 0.2
# share of the sentence's content words found in the source sentence) against the best sentence
# of the passage it cites.
# Calibrated with all-MiniLM-L6-v2 on eval/gold.jsonl (56 answerable items): a claim written as
# "question + gold answer" scores median 0.61 against its gold quote (positives) and median 0.41
# against the best sentence of the top passage that lacks the answer (hard negatives from the
# same article). 0.47 maximises balanced accuracy (0.848: keeps 89% of positives, rejects 80% of
# negatives); 0.50 (0.839: 80% / 88%) is used because a false "verified" costs more than a false
# flag. Cosine cannot see a wrong number or a negation: "verified" means "close to its quote",
# and the quote is shown so the reader can check.
SUPPORT_THRESHOLD, SUPPORT_W_COSINE = 0.5, 0.8
FAILED = "LLM backend failed ({reason}); showing the extractive answer"
UNVERIFIED = "None of the answer's sentences could be matched to the sources; read it with care."
HISTORY_TURNS, HISTORY_ANSWER_CHARS = 3, 300

# [1], [1, 2], [1][2], [Source 1]; a marker group is replaced or removed with the space before it.
_MARKER = re.compile(r"\s*\[\s*(?:sources?\s*:?\s*)?(\d{1,3}(?:\s*[,;]\s*(?:sources?\s*)?\d{1,3})*)\s*\]", re.I)
_REFUSAL = re.compile(
    r"\b(?:sources?|passages?|documents?|context|text|information)\b[^.]{0,60}?"
    r"\b(?:do(?:es)?\s*n[o']t|not|never)\s+(?:contain|include|mention|say|provide|answer|specify|state)"
    r"|\b(?:cannot|can't|can not|unable to)\s+(?:answer|find|determine|tell)"
    r"|\bno (?:information|answer|mention)\b|\bnot (?:mentioned|stated|specified|provided)\b", re.I)
_FENCE = re.compile(r"<(\s*/?\s*source)", re.I)


class Generator(Protocol):
    def stream(self, messages: list[dict]) -> Iterator[str]:
        """Yield the reply to chat `messages` in pieces as they are produced."""


class GenerationError(Exception):
    """The endpoint failed; the message says how and where, for the user's notice."""


class OpenAIChat:
    """Any OpenAI-compatible Chat Completions endpoint, streamed over SSE with httpx."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 60.0,
                 max_tokens: int = 300, temperature: float = 0.0, transport=None):
        base = base_url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model, self.api_key, self.timeout = model, api_key, timeout
        self.max_tokens, self.temperature = max_tokens, temperature
        self._transport, self._client = transport, None

    def stream(self, messages: list[dict]) -> Iterator[str]:
        import httpx

        if self._client is None:  # the timeout bounds connecting and each wait for the next piece
            self._client = httpx.Client(timeout=httpx.Timeout(self.timeout), transport=self._transport)
        body = {"model": self.model, "messages": messages, "stream": True,
                "temperature": self.temperature, "max_tokens": self.max_tokens}
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            with self._client.stream("POST", self.url, json=body, headers=headers) as r:
                if r.status_code >= 400:
                    r.read()
                    hint = " (does RAG_LLM_BASE_URL end in /v1?)" if r.status_code == 404 else ""
                    raise GenerationError(f"HTTP {r.status_code} from {self.url}{hint}: {_snippet(r.text)}")
                if "json" in r.headers.get("content-type", ""):  # a server that ignores stream=true
                    r.read()
                    yield _message_text(_json(r.text, self.url), self.url)
                    return
                for line in r.iter_lines():
                    line = line.strip()
                    if not line.startswith("data:"):
                        continue  # blank keep-alives, ": comments", event: and id: fields
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    yield from _delta_text(_json(data, self.url), self.url)
        except httpx.TimeoutException:
            raise GenerationError(f"timeout after {self.timeout:g}s at {self.url}") from None
        except httpx.ConnectError as e:
            raise GenerationError(f"cannot connect to {self.url}: {e}") from None
        except httpx.HTTPError as e:
            raise GenerationError(f"{type(e).__name__} at {self.url}: {e}") from None


def _json(data: str, url: str):
    try:
        return json.loads(data)
    except ValueError:
        raise GenerationError(f"malformed reply from {url}: {_snippet(data)} is not JSON") from None


def _delta_text(chunk, url: str) -> Iterator[str]:
    if isinstance(chunk, dict) and chunk.get("error"):
        err = chunk["error"]
        raise GenerationError(f"{url} reported an error: {_snippet(err.get('message', err) if isinstance(err, dict) else err)}")
    if not isinstance(chunk, dict) or not isinstance(chunk.get("choices"), list):
        raise GenerationError(f"malformed reply from {url}: no 'choices' in {_snippet(json.dumps(chunk))}")
    for choice in chunk["choices"]:  # an empty list is the usage-only chunk some servers send last
        piece = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
        if isinstance(piece, str) and piece:
            yield piece


def _message_text(reply, url: str) -> str:
    try:
        return str(reply["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        raise GenerationError(f"malformed reply from {url}: {_snippet(json.dumps(reply))}") from None


def _snippet(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return repr(text[:n] + ("…" if len(text) > n else ""))


def connect(settings) -> OpenAIChat:
    """The endpoint named by RAG_LLM_BASE_URL / RAG_LLM_MODEL / RAG_LLM_API_KEY."""
    url = settings.llm_base_url
    if not (url and settings.llm_model):
        raise RagError("backend 'llm' needs RAG_LLM_BASE_URL and RAG_LLM_MODEL (or --llm-base-url/--llm-model)")
    if not url.startswith(("http://", "https://")):
        raise RagError(f"RAG_LLM_BASE_URL={url!r} is not an http(s) URL; use e.g. http://127.0.0.1:8000/v1")
    return OpenAIChat(url, settings.llm_model, settings.llm_api_key, settings.llm_timeout, settings.llm_max_tokens)


# ---- prompts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prompts:
    system: str
    answer: str
    condense: str


_NEEDS = {"system": (), "answer": ("sources", "question"), "condense": ("history", "question")}


def load_prompts(prompts_dir) -> Prompts:
    """Read system.txt, answer.txt and condense.txt; a relative dir is also looked up beside rag/."""
    d = Path(prompts_dir)
    if not d.is_absolute() and not d.is_dir():
        d = Path(__file__).resolve().parents[1] / d
    texts = {}
    for name, needs in _NEEDS.items():
        path = d / f"{name}.txt"
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except OSError:
            raise RagError(f"prompt file {path} is missing; set RAG_PROMPTS_DIR to the directory holding "
                           "system.txt, answer.txt and condense.txt") from None
        missing = [k for k in needs if "{" + k + "}" not in texts[name]]
        if missing:
            raise RagError(f"prompt file {path} lacks {', '.join('{' + k + '}' for k in missing)}; add it")
    return Prompts(**texts)


def render(template: str, **values: str) -> str:
    """Fill {name} placeholders in one pass, so text inserted for one is never expanded again."""
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def fence(hits: list[Hit]) -> str:
    """Numbered passages as quoted data; fence-like tags inside them are defused."""
    blocks = []
    for n, hit in enumerate(hits, start=1):
        text = _FENCE.sub(lambda m: "\u2039" + m.group(1), hit.chunk.text.strip())
        blocks.append(f'<source id="{n}" title="{escape(hit.chunk.title, quote=True)}">\n{text}\n</source>')
    return "\n\n".join(blocks)


def answer_messages(prompts: Prompts, question: str, hits: list[Hit]) -> list[dict]:
    return [{"role": "system", "content": prompts.system.strip()},
            {"role": "user", "content": render(prompts.answer, sources=fence(hits), question=question).strip()}]


def condense_messages(prompts: Prompts, question: str, history) -> list[dict]:
    lines = []
    for q, a in list(history)[-HISTORY_TURNS:]:
        a = " ".join(str(getattr(a, "text", a) or "").split())
        lines.append(f"User: {' '.join(str(q).split())}")
        lines.append(f"Assistant: {a[:HISTORY_ANSWER_CHARS] + ('…' if len(a) > HISTORY_ANSWER_CHARS else '')}")
    return [{"role": "user", "content": render(prompts.condense, history="\n".join(lines), question=question).strip()}]


def condense(generator: Generator, prompts: Prompts, question: str, history) -> str:
    """A standalone question from the model; the extractive heuristic if its reply is unusable."""
    from .answer import condense_heuristic

    if not history:
        return question
    reply = "".join(generator.stream(condense_messages(prompts, question, history)))
    line = next((x for x in reply.strip().splitlines() if x.strip()), "")
    line = re.sub(r"^\s*(?:standalone question|question|rewritten question)\s*:\s*", "", line, flags=re.I)
    line = " ".join(line.strip().strip("\"'\u201c\u201d`").split())
    # It must keep a content word of the question (of the conversation if the question has none):
    # a tiny model often just repeats the previous question.
    known = set(tokenize(question)) or set().union(*(tokenize(str(q)) for q, _a in history))
    if not line or len(line) > max(300, 3 * len(question)) or not known & set(tokenize(line)):
        return condense_heuristic(question, history)
    return line


# ---- the answer ----------------------------------------------------------------------------

def llm_answer_stream(rag, index, question: str, history=(), k: int = 5, mode: str = "hybrid",
                      notice: str = "") -> Iterator[str | Answer]:
    """Yield the model's text pieces as they stream, then one checked Answer (backend "llm")."""

    s = rag.settings
    prompts = load_prompts(s.prompts_dir)
    if rag.generator is None:
        rag.generator = connect(s)
    generator = rag.generator
    try:
        standalone = condense(generator, prompts, question, history)
    except Exception as e:  # the endpoint is external: any failure means "answer without it"
        yield from _fallback(rag, question, history, k, mode, notice, e, streamed=False)
        return
    qv = rag.embedder.embed_query(standalone)
    hits = rag.retrieve(index, standalone, k, mode, query_vector=qv)
    if not hits:
        yield from _final(refusal(question, hits), standalone, notice)
        return
    pieces: list[str] = []
    try:
        for piece in generator.stream(answer_messages(prompts, standalone, hits)):
            if not isinstance(piece, str):
                raise GenerationError(f"the generator yielded {type(piece).__name__}, not text")
            pieces.append(piece)
            yield piece
        if not "".join(pieces).strip():
            raise GenerationError("empty reply from the model")
    except Exception as e:
        yield from _fallback(rag, question, history, k, mode, notice, e, streamed=bool(pieces))
        return
    raw = "".join(pieces)
    text, citations, flagged = check_answer(index, rag.embedder, raw, hits)
    if not citations and _REFUSAL.search(raw):
        yield from _final(refusal(question, hits), standalone, notice)
        return
    notes = (notice, "" if citations else UNVERIFIED)
    yield from _final(Answer(question=question, text=text, citations=citations, hits=tuple(hits),
                             flagged=flagged), standalone, *notes)


def _final(answer: Answer, standalone: str, *notices: str) -> Iterator[Answer]:
    yield replace(answer, backend="llm", standalone_question=standalone,
                  notice=" ".join(n for n in (*notices, answer.notice) if n))


def _fallback(rag, question, history, k, mode, notice, error: Exception, streamed: bool):
    reason = str(error) if isinstance(error, GenerationError) else f"{type(error).__name__}: {error}"
    warning = FAILED.format(reason=reason)
    log.warning("%s", warning)
    if streamed:  # the partial model text already shown is not part of the answer
        yield "\n\n"
    for event in rag.ask_stream(question, history, k, mode, backend="extractive"):
        if isinstance(event, Answer):
            event = replace(event, notice=" ".join(n for n in (notice, warning, event.notice) if n))
        yield event


def check_answer(index, embedder, raw: str, hits: list[Hit]) -> tuple[str, tuple[Citation, ...], tuple[str, ...]]:
    """Cite each sentence at the best-matching sentence of the passage it names, or flag it.

    Returns the rewritten text (markers renumbered densely in order of use, markers pointing at
    nothing or not supported removed), the citations, and the flagged sentences, each an exact
    substring of the text.
    """
    spans = _claims(raw)
    claims = [_MARKER.sub("", raw[s:e]).strip() for s, e in spans]
    wanted = [[n for m in _MARKER.finditer(raw, s, e) for n in map(int, re.findall(r"\d+", m.group(1)))
               if 1 <= n <= len(hits)] for s, e in spans]  # markers pointing at nothing are dropped
    todo = [i for i, c in enumerate(claims) if wanted[i] and any(ch.isalnum() for ch in c)]
    vectors = dict(zip(todo, embedder.embed_documents([claims[i] for i in todo]))) if todo else {}
    cited: dict[tuple, Citation] = {}
    passages: dict[int, tuple[list[int], np.ndarray]] = {}
    out, flagged, pos = [], [], 0
    for i, ((s, e), claim) in enumerate(zip(spans, claims)):
        out.append(raw[pos:s])
        pos = e
        if not any(ch.isalnum() for ch in claim):
            continue  # only markers or punctuation
        kept, words = [], set(tokenize(claim))
        for n in dict.fromkeys(wanted[i]):
            if n not in passages:
                c = hits[n - 1].chunk
                rows = index.sentences_in(c.doc_id, c.start, c.end)
                # The claim is embedded alone, so it is matched against each sentence embedded
                # alone too (not the stored vectors, which carry their chunk's context).
                passages[n] = (rows, embedder.embed_documents([_sentence(index, r) for r in rows]) if rows else None)
            rows, mat = passages[n]
            if not rows:
                continue
            overlap = np.array([query_overlap(words, _sentence(index, r)) for r in rows])
            scores = sentence_score(mat @ np.asarray(vectors[i], dtype="float32"), overlap, SUPPORT_W_COSINE)
            best = int(np.argmax(scores))
            if scores[best] < SUPPORT_THRESHOLD:
                continue
            key = index.sentences[rows[best]]
            if key not in cited:
                cited[key] = make_citation(index, len(cited) + 1, *key, hits[n - 1].score, support=scores[best])
            kept.append(cited[key].n)
        if kept:
            out.append(claim + " " + "".join(f"[{n}]" for n in dict.fromkeys(kept)))
        else:
            out.append(claim)
            flagged.append(claim)
    out.append(raw[pos:])
    text = "\n\n".join(p.strip() for p in re.split(r"\n\s*\n", "".join(out)) if p.strip())
    return text, tuple(cited.values()), tuple(dict.fromkeys(flagged))


def _claims(raw: str) -> list[tuple[int, int]]:
    """Sentence spans of the reply; a span holding only markers joins the sentence before it."""
    spans: list[tuple[int, int]] = []
    for s, e in split_sentences(raw):
        if spans and not any(ch.isalnum() for ch in _MARKER.sub("", raw[s:e])) and raw[spans[-1][1]:s].strip() == "":
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    return spans


def _sentence(index, row: int) -> str:
    doc_id, s, e = index.sentences[row]
    return index.documents[doc_id].text[s:e]
