"""Whether a common noun names a person, from its form alone (no word list of the corpus or the
questions): an agent noun of an English verb ("leader" of lead, "investor", "regulator", "supplier")
or a word with a person suffix ("scientist", "analyst", "historian", "chairman"). "Which leader ...?"
then asks for a person as "Who ...?" does. The verbs are those of spaCy's English lemmatizer tables,
shipped with the model the reader already loads (rag.entities)."""

from __future__ import annotations

import threading

from .entities import nlp

_verbs: frozenset[str] | None = None
_lock = threading.Lock()
_PERSON_ENDINGS = ("man", "men", "woman", "women", "person", "people")


def english_verbs() -> frozenset[str]:
    """The base forms of English verbs in the model's lemma index (empty if the model ships none)."""
    global _verbs
    with _lock:
        if _verbs is None:
            from spacy.lookups import Lookups

            lookups = Lookups()
            try:
                lookups.from_bytes((nlp().path / "lemmatizer" / "lookups" / "lookups.bin").read_bytes())
                _verbs = frozenset(lookups.get_table("lemma_index")["verb"])
            except (OSError, KeyError, TypeError, ValueError):
                _verbs = frozenset()
        return _verbs


def names_person(word: str) -> bool:
    """Whether a noun (singular or plural) names a person by its form: "leaders", "founder", "economist"."""
    w = word.lower()
    if not w.isalpha() or len(w) < 4:
        return False
    if w.endswith(_PERSON_ENDINGS) and w not in _PERSON_ENDINGS:
        return True
    w = w[:-1] if w.endswith("s") and not w.endswith("ss") else w
    if (w.endswith(("ist", "yst")) and len(w) >= 6) or (w.endswith("ian") and len(w) >= 7):
        return True
    # "policymaker", "lawmaker": a compound whose last part is an agent noun
    return any(_agent(w[i:]) for i in [0, *range(3, len(w) - 4)])


def _agent(w: str) -> bool:
    """An agent noun: a verb and "-er" / "-or" ("leader", "maker", "regulator", "supplier")."""
    if not w.endswith(("er", "or")):
        return False
    stems = {w[:-2], w[:-2] + "e"} | ({w[:-3] + "y"} if w.endswith("ier") else set())
    return any(len(s) >= 3 and s in english_verbs() for s in stems)
