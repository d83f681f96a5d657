"""Offline retrieval-augmented Q&A with answers cited to exact source spans.

    import rag
    answer = rag.ask("Which country's program inspired Made in China 2025?")

Importing this package is cheap: torch, faiss and gradio load on first use.
"""

import logging

from .config import Settings, load_settings
from .errors import RagError
from .types import Answer, Chunk, Citation, Document, Hit

__all__ = ["ask", "search", "Answer", "Chunk", "Citation", "Document", "Hit", "RagError", "Settings",
           "load_settings", "default"]

logging.getLogger("rag").addHandler(logging.NullHandler())  # the CLI/UI report problems themselves

_default = None
_by_collections: dict = {}


def default(collections=None):
    """The process-wide pipeline built from the environment's settings (for these collections:
    a name, "a,b" or a list; None: RAG_COLLECTION, else the default collection)."""
    global _default
    from .pipeline import Rag

    if collections is not None:
        key = ",".join([collections] if isinstance(collections, str) else collections)
        if key not in _by_collections:
            _by_collections[key] = Rag(load_settings().replace(collection=key))
        return _by_collections[key]
    if _default is None:
        _default = Rag()
    return _default


def ask(question: str, history=(), filters=None, collections=None) -> Answer:
    """Answer a question from the index, citing exact source spans. `filters`: metadata conditions
    ("author=Elsa Kania", ["date>=2019-01-01"] or {"author": "Elsa Kania", "date": ">=2019"})."""
    return default(collections).ask(question, history, filters=filters)


def search(question: str, k: int | None = None, filters=None, collections=None) -> list[Hit]:
    """Ranked passages for a question (`filters` as in `ask`, applied before the cut to k)."""
    return default(collections).search(question, k, filters=filters)
