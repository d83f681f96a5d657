"""Shared fixtures. Fakes live here: a deterministic hashed bag-of-words embedder and a tiny corpus."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

try:  # torch before faiss in one process (two OpenMP runtimes otherwise)
    import torch  # noqa: F401
except ImportError:
    pass

ROOT = Path(__file__).resolve().parents[1]


class FakeEmbedder:
    """Hashed bag of words: texts that share words get similar vectors, deterministically."""

    model_id = "fake"

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.calls: list[str] = []

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype="float32")
        for w in re.findall(r"\w+", text.lower()):
            h = int(hashlib.md5(w.encode()).hexdigest(), 16)
            v[h % self.dim] += 1.0 if (h >> 64) & 1 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_documents(self, texts):
        self.calls.extend(texts)
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), "float32")

    def embed_query(self, text):
        return self._vec(text)


TINY = {
    "solar.md": "# Solar power\n\nSolar panels convert sunlight into electricity. Photovoltaic cells are made of silicon.\n\nThe largest solar farm is in the desert.",
    "bees.txt": "Honey bees live in colonies. A colony has one queen bee that lays eggs.\n\nWorker bees collect nectar from flowers and make honey.",
    "rome.html": "<html><head><title>Ancient Rome</title><style>.x{color:red}</style></head><body><h1>Ancient Rome</h1><p>Rome was founded in 753 BC according to legend.</p><script>var hidden = 'secret script text';</script><p>Julius Caesar crossed the Rubicon in 49 BC.</p></body></html>",
    "tea.txt": "---\ntitle: A Short History of Tea\nauthor: Test Author\n---\nTea originated in southwest China. It was drunk as a medicinal beverage.\n\nGreen tea and black tea come from the same plant, Camellia sinensis.",
}


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in TINY.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return corpus


@pytest.fixture
def tiny_settings(tmp_path, tiny_corpus):
    from rag.config import load_settings

    return load_settings(env={}, corpus_dir=tiny_corpus, index_dir=tmp_path / "index",
                         refusal_threshold="0.2")


@pytest.fixture
def tiny_rag(tiny_settings, fake_embedder):
    from rag.pipeline import Rag

    rag = Rag(tiny_settings, embedder=fake_embedder)
    rag.build(log=lambda *_: None)
    return rag
