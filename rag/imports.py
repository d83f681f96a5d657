"""Import a library without the heavy optional packages it only probes for.

thinc (under spaCy) imports torch (~2.5 s) and bm25s imports numba and scipy (~0.4 s) just to see
whether they are there; the parts we use need none of them. While `hidden(...)` is active, those
names read as not installed, in the calling thread only: another thread that imports one of them
meanwhile gets it as usual. A package that is already imported is left alone.
"""

from __future__ import annotations

import importlib
import sys
import threading
from contextlib import contextmanager


class _Hide:
    """A meta path finder under which importing the given top-level names fails, in one thread."""

    def __init__(self, names: set[str]):
        self.names = names
        self.thread = threading.current_thread()

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names and threading.current_thread() is self.thread:
            raise ModuleNotFoundError(f"{name} is not needed here (rag.imports.hidden)", name=name)
        return None


@contextmanager
def hidden(*names: str):
    missing = {n for n in names if n not in sys.modules}
    if not missing:
        yield
        return
    finder = _Hide(missing)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def import_without(module: str, *names: str):
    """importlib.import_module(module) with `names` hidden while it (first) loads."""
    if module in sys.modules:
        return sys.modules[module]
    with hidden(*names):
        return importlib.import_module(module)
