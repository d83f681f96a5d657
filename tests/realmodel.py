"""The packaged model, loaded at most once per test session (a load costs seconds)."""

from functools import lru_cache


@lru_cache(maxsize=1)
def real_embedder():
    from rag.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    embedder.model  # load now: torch must be imported before faiss
    return embedder
