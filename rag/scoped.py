"""The `Rag` answering from a list of collections, shared by the JSON API and the app: the served one,
or one opened on first use (sharing its embedding model and generator) and kept. No heavy imports."""

from __future__ import annotations

import threading

from .errors import RagError

DEFAULT_COLLECTION = "default"


class Scoped:
    """`scoped(names)` -> the `Rag` for those collections; an unknown name is rag.collections.UnknownCollection
    (a NotFound) when that `Rag` is used. The last KEEP choices are kept open."""

    KEEP = 8

    def __init__(self, rag):
        self.rag, self.opened = rag, {}
        self._lock = threading.Lock()

    def __call__(self, names: list[str]):
        if not names:
            raise RagError(f"collections is empty; name at least one (e.g. [\"{DEFAULT_COLLECTION}\"])")
        key = tuple(dict.fromkeys(n.strip() for n in names))
        if list(key) == (self.rag.collections or [DEFAULT_COLLECTION]):
            return self.rag
        with self._lock:
            if key not in self.opened:
                from .pipeline import Rag

                r = Rag(self.rag.settings.replace(collection=",".join(key)), embedder=self.rag.embedder,
                        generator=self.rag.generator)
                while len(self.opened) >= self.KEEP:
                    self.opened.pop(next(iter(self.opened)))
                self.opened[key] = r
            return self.opened[key]
