"""Which collections the app's chats search, and which index a clicked citation opens in. A choice is
offered only when there is more than one collection to choose from."""

from __future__ import annotations

from .scoped import Scoped


class Chooser:
    """The served `Rag` and one per choice of collections, sharing its embedder and generator."""

    def __init__(self, rag):
        from .collections import every

        self.rag = rag
        self.served = rag.collections or ["default"]
        # a single non-default collection was asked for: serve only that one
        whole = rag.collections in ([], ["default"]) or len(rag.collections) > 1
        self.names = [c.name for c in every(rag.settings)] if whole else list(self.served)
        self.scoped = Scoped(rag)

    @property
    def offered(self) -> bool:
        return len(self.names) > 1

    def pick(self, chosen) -> object:
        """The pipeline for these collections (the served one for no choice or the same choice)."""
        names = [n for n in self.names if n in (chosen or ())]  # unknown names are ignored, order is the list's
        if not names or names == self.served:
            return self.rag
        return self.scoped(names)

    def first(self, chosen) -> str:
        """The collection an upload goes into by default: the first one a chat searches."""
        return next((n for n in self.names if n in (chosen or ())), self.served[0])

    def documents(self, rag, answer, docs: dict) -> dict:
        """doc_id -> Document for rendering an answer's sources: `docs` (the index's documents) as they
        are for one collection; a merged index names them collection:doc_id."""
        if len(rag.collections) < 2:
            return docs
        from .merged import qualify

        found = {c.doc_id: docs.get(qualify(c.collection, c.doc_id)) for c in answer.citations}
        return {k: v for k, v in found.items() if v is not None}

    def owner(self, data: dict):
        """The pipeline whose index holds a clicked citation's document ({doc, start, end, collection})."""
        coll = data.get("collection")
        return self.pick([coll]) if isinstance(coll, str) and coll in self.names else self.rag
