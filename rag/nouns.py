"""Whether a common noun names a person, from its form alone (no word list of the corpus or the
questions): a word with a person suffix ("scientist", "analyst", "historian", "chairman", "spokeswoman").
"Which economist ...?" then asks for a person as "Who ...?" does.

An agent noun of a verb ("leader", "regulator") was typed too, with the verbs of spaCy's English lemma
tables: it raised dev short answers by one and left held-out unchanged, but typed machines as people
("computer", "processor", "container", "layer", and "number" of numb), so it is not used."""

from __future__ import annotations

import threading

from .entities import nlp

_verbs: frozenset[str] | None = None
_lock = threading.Lock()
_PERSONS = ("man", "men", "woman", "women", "person", "persons")
_PERSON_ENDINGS = ("man", "woman", "women", "person", "people")  # not "men": "specimen", "regimen"


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
    """Whether a noun (singular or plural) names a person by its form: "economists", "historian",
    "chairman"; not a compound of "list" ("checklist": a verb and "list")."""
    w = word.lower()
    if w in _PERSONS:  # "Which woman founded X?" ("people" may name a nation: "Which people settled X?")
        return True
    if not w.isalpha() or len(w) < 4:
        return False
    if w.endswith(_PERSON_ENDINGS) and w not in _PERSON_ENDINGS:
        return True
    w = w[:-1] if w.endswith("s") and not w.endswith("ss") else w
    if w.endswith("list") and w[:-4] in english_verbs():
        return False
    return (w.endswith(("ist", "yst")) and len(w) >= 6) or (w.endswith("ian") and len(w) >= 7)
