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


def default():
    """The process-wide pipeline built from the environment's settings."""
    global _default
    if _default is None:
        from .pipeline import Rag

        _default = Rag()
    return _default


def ask(question: str, history=()) -> Answer:
    """Answer a question from the index, citing exact source spans."""
    return default().ask(question, history)


def search(question: str, k: int | None = None) -> list[Hit]:
    """Ranked passages for a question."""
    return default().search(question, k)
