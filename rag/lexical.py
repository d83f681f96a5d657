"""BM25 over the same (title-prefixed) chunk texts that are embedded, via bm25s."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer  # PyStemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # BM25 still works, just without stemming
        return None


@lru_cache(maxsize=1)
def _stopwords() -> frozenset:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens, English stopwords removed, Snowball-stemmed."""
    stop = _stopwords()
    words = [w for w in _TOKEN.findall(text.lower()) if w not in stop]
    stem = _stemmer()
    return stem.stemWords(words) if stem and words else words


def build(texts: list[str], out_dir: Path) -> None:
    import bm25s

    retriever = bm25s.BM25(k1=0.9, b=0.4)  # the Anserini defaults, which bm25s also reports
    corpus = [tokenize(t) or ["\u2205"] for t in texts]
    retriever.index(corpus, show_progress=False)
    retriever.save(str(out_dir), show_progress=False)


class Lexical:
    """A loaded BM25 index: scores every chunk for a query."""

    def __init__(self, path: Path, n: int):
        import bm25s

        self.n = n
        self._bm25 = bm25s.BM25.load(str(path), show_progress=False, verbosity=0)
        self._vocab = self._bm25.vocab_dict

    def scores(self, query: str) -> np.ndarray:
        tokens = [t for t in tokenize(query) if t in self._vocab]
        if not tokens or not self.n:
            return np.zeros(self.n, dtype="float32")
        return np.asarray(self._bm25.get_scores(tokens), dtype="float32")
