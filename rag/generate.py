"""Talking to a chat model: the `Generator` protocol and `OpenAIChat`, a streaming client for any
OpenAI-compatible Chat Completions endpoint (OpenAI, Ollama, vLLM, LM Studio, llama.cpp's server).

The model's words are never trusted: what the pipeline does with them (claim checks, citations,
fallback) lives in `rag.pipeline` and `rag.cite`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Protocol

from .config import require_llm
from .errors import RagError


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
    require_llm(settings)
    url = settings.llm_base_url
    if not url.startswith(("http://", "https://")):
        raise RagError(f"RAG_LLM_BASE_URL={url!r} is not an http(s) URL; use e.g. http://127.0.0.1:8000/v1")
    return OpenAIChat(url, settings.llm_model, settings.llm_api_key, settings.llm_timeout, settings.llm_max_tokens)
