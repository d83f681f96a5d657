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
    return frozenset(_bm25s().stopwords.STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens, English stopwords removed, Snowball-stemmed."""
    stop = _stopwords()
    words = [w for w in _TOKEN.findall(text.lower()) if w not in stop]
    stem = _stemmer()
    return stem.stemWords(words) if stem and words else words


EMPTY = "\u2205"  # the token of a chunk with no words: bm25s needs one per document
TOKENS = "tokens.txt"  # each chunk's tokens, one line per chunk: a re-index tokenizes only new chunks


def _tag() -> str:
    return f"#tokens v1 stem={'snowball' if _stemmer() else 'none'}"


def _bm25s():
    """bm25s without numba and scipy (~0.4 s of a cold start): its numpy backend needs neither."""
    from .imports import import_without

    return import_without("bm25s", "numba", "scipy")


def build(texts: list[str], out_dir: Path, keys: list[str] | None = None, known: dict | None = None) -> None:
    """BM25 over texts; `known` maps a chunk key to tokens a previous build saved (`saved_tokens`)."""
    bm25s = _bm25s()

    known = known or {}
    corpus = [known.get(k) or tokenize(t) or [EMPTY] for k, t in zip(keys or [None] * len(texts), texts)]
    retriever = bm25s.BM25(k1=0.9, b=0.4)  # the Anserini defaults, which bm25s also reports
    retriever.index(corpus, show_progress=False)
    retriever.save(str(out_dir), show_progress=False)
    with open(out_dir / TOKENS, "w", encoding="utf-8") as f:
        f.write(_tag() + "\n")
        f.writelines(" ".join(tokens) + "\n" for tokens in corpus)


def saved_tokens(path: Path, keys: list[str]) -> dict[str, list[str]]:
    """key -> tokens of a previous build's chunks, in chunk order; empty when the file is
    missing, from another tokenizer or out of step (then everything is tokenized again)."""
    try:
        lines = (Path(path) / TOKENS).read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        return {}
    if lines[0] != _tag() or len(lines) != len(keys) + 2:
        return {}
    return {k: line.split(" ") for k, line in zip(keys, lines[1:])}


class Lexical:
    """A loaded BM25 index: scores every chunk for a query."""

    def __init__(self, path: Path, n: int):
        bm25s = _bm25s()

        self.n = n
        self._bm25 = bm25s.BM25.load(str(path), show_progress=False, verbosity=0)
        self._vocab = self._bm25.vocab_dict

    def df(self, term: str) -> int:
        """How many chunks hold the (stemmed) term."""
        if not hasattr(self, "_df"):
            self._df = np.diff(np.asarray(self._bm25.scores["indptr"]))
        i = self._vocab.get(term)
        return int(self._df[i]) if i is not None and i < len(self._df) else 0

    def idf(self, term: str) -> float:
        """log(1 + N / chunks holding the term): rare words weigh more (an unknown word the most)."""
        return float(np.log1p(max(1, self.n) / max(self.df(term), 0.5)))

    def knows(self, term: str) -> bool:
        """Whether a (stemmed) term occurs anywhere in the indexed text."""
        return term in self._vocab

    def scores(self, query: str) -> np.ndarray:
        tokens = [t for t in tokenize(query) if t in self._vocab]
        if not tokens or not self.n:
            return np.zeros(self.n, dtype="float32")
        return np.asarray(self._bm25.get_scores(tokens), dtype="float32")
