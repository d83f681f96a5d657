"""Which collections the app's chats search and where an upload goes, and the document views that
depend on it. A choice is offered only when there is more than one collection to choose from."""

from __future__ import annotations

import threading

from .errors import RagError
from .ui_render import document_placeholder, render_corpus, render_document


class Chooser:
    """The served `Rag` and one per choice of collections, sharing its embedder and generator."""

    def __init__(self, rag):
        from .collections import every

        self.rag = rag
        self.served = rag.collections or ["default"]
        # a single non-default collection was asked for: serve only that one
        whole = rag.collections in ([], ["default"]) or len(rag.collections) > 1
        self.names = [c.name for c in every(rag.settings)] if whole else list(self.served)
        self._rags: dict[str, object] = {}
        self._lock = threading.Lock()

    @property
    def offered(self) -> bool:
        return len(self.names) > 1

    def pick(self, chosen) -> object:
        """The pipeline for these collections (the served one for no choice or the same choice)."""
        names = [n for n in self.names if n in (chosen or ())]  # unknown names are ignored, order is the list's
        if not names or names == self.served:
            return self.rag
        key = ",".join(names)
        with self._lock:
            if key not in self._rags:
                from .pipeline import Rag

                self._rags[key] = Rag(self.rag.settings.replace(collection=key), embedder=self.rag.embedder,
                                      generator=self.rag.generator)
            return self._rags[key]

    def documents(self, rag, answer) -> dict:
        """doc_id -> Document for rendering an answer's sources (a merged index names them collection:id)."""
        if len(rag.collections) < 2:
            return documents(rag)
        from .merged import qualify

        docs = documents(rag)
        found = {c.doc_id: docs.get(qualify(c.collection, c.doc_id)) for c in answer.citations}
        return {k: v for k, v in found.items() if v is not None}

    def open(self, data: dict) -> str:
        """The document view for a clicked citation ({doc, start, end, collection})."""
        coll = data.get("collection")
        rag = self.pick([coll]) if isinstance(coll, str) and coll in self.names else self.rag  # its own index
        return open_document(rag, data.get("doc"), data.get("start"), data.get("end"))


def open_document(rag, doc_id, start, end) -> str:
    """The document view for an indexed document only (looked up by id, never by path)."""
    try:
        start, end = int(start), int(end)
        docs = rag.index.documents
    except (TypeError, ValueError):
        return document_placeholder("That citation has no valid position; ask the question again.")
    except RagError as e:
        return document_placeholder(str(e))
    doc = docs.get(doc_id) if isinstance(doc_id, str) else None
    if doc is None:
        return document_placeholder(f"{str(doc_id)[:200]!r} is not in the index; ask the question again.")
    return render_document(doc, start, end)


def corpus_html(rag) -> str:
    try:
        return render_corpus(rag.index.manifest)
    except RagError as e:
        return render_corpus(None, str(e))


def documents(rag) -> dict:
    try:
        return rag.index.documents
    except RagError:
        return {}
