"""What a question asks for: its expected answer type, its content and specific terms, and, for a
follow-up, the standalone question it stands for.

The answer type comes from the question's wording (who -> person, when / how often -> date, how
many -> number, where / which country -> place, which company -> organisation, why / how -> reason,
which economist / which chairman -> person (rag.nouns), anything else -> thing); the reader prefers
sentences holding an entity of that type that the question does not already name, and quotes that
entity as the short answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .entities import nlp, tag
from .lexical import tokenize
from .nouns import names_person

# spaCy entity labels that can answer each type (thing and reason questions take a phrase or a sentence)
LABELS = {"person": {"PERSON", "ORG", "NORP"}, "date": {"DATE", "TIME"},
          "number": {"CARDINAL", "QUANTITY", "PERCENT", "MONEY"},
          "place": {"GPE", "LOC", "FAC", "NORP"}, "org": {"ORG"}}
# "which Chinese tech company": up to three words before the noun, none of them a verb ("what can a state do")
_GAP = r"(?:(?!(?:can|does|did|do|is|was|are|were|has|have|had|will|would|could|should|may|might)\b)[\w-]+ ){0,3}"
_WHO = r"\bwho(?:m|se)?\b"
_TYPES = [  # the match that starts first in the question wins ("Who headed X when ..." asks for a person)
    ("date", r"\bwhen\b|\b(?:what|which) (?:year|month|date|day|decade|century|season)s?\b|\bby when\b"
             r"|\bhow (?:often|frequently)\b"),  # a frequency ("twice a month") answers as a date does
    ("number", r"\bhow (?:many|much)\b|\bwhat (?:percentage|percent|share|proportion|number|amount|sum)\b"
               r"|\bhow (?:large|big|high)\b"),
    ("person", _WHO),
    ("place", r"\bwhere\b|\b(?:which|what) " + _GAP + r"(?:country|countries|city|cities|province|provinces|region"
              r"|regions|nation|nations|state|place|places)\b"),
    ("org", r"\b(?:which|what) " + _GAP + r"(?:company|companies|firm|firms|organi[sz]ations?|agency|agencies"
            r"|ministry|ministries|think tank|university|universities|institution|department|unit|maker|makers)\b"),
    ("reason", r"^\W*(?:and\s+)?(?:why\b|how\b(?! (?:many|much|large|big|high|long|often|frequently)\b)"
               r"|for what reason\b)"),
]
SPECIFIC_POS = {"PROPN", "NUM"}
CONTENT_POS = {"NOUN", "PROPN", "VERB", "ADJ", "NUM", "X"}


@dataclass(frozen=True)
class Question:
    text: str
    kind: str  # person | date | number | place | org | reason | thing
    terms: frozenset[str]  # stemmed content words
    specific: frozenset[str]  # stemmed names and numbers
    nouns: frozenset[str]  # stemmed nouns and names: what the question is about
    wh: str = ""  # the stemmed noun a "which X" / "what kind of X" question asks about (wh_noun)
    relation: frozenset[str] = frozenset()  # words (lowercase, unstemmed) that say what is asked (relation_words)
    subject: bool = False  # the wh-phrase is the subject ("Which unit's plans inspired X?"): its answer precedes the verb

    @property
    def labels(self) -> set[str]:
        return LABELS.get(self.kind, set())

    @property
    def by_noun(self) -> bool:
        """Whether it asks for a person by a noun ("Which biologist ...?", rag.nouns), not by "who": a person's
        name answers it before a firm's (a noun's form may mislead: "Which protist ...?" is answered by a name
        the tagger calls a firm)."""
        return self.kind == "person" and not re.search(_WHO, self.text, re.I)


# a wh-word ahead of a "when" makes it a conjunction: "What do leaders use *when* they discuss X?" asks for a thing
_WH_BEFORE = re.compile(r"\b(?:what|which|who|whom|whose|where|why|how)\b")


def answer_kind(question: str) -> str:
    low = question.lower()
    found = [(m.start(), i, kind) for i, (kind, pattern) in enumerate(_TYPES) if (m := re.search(pattern, low))
             and not (kind in ("place", "org") and _modifier(question, m.end()))
             and not (m.group() == "when" and _WH_BEFORE.search(low, 0, m.start()))]
    kind = min(found)[2] if found else "person" if names_person(_wh_word(question)) else "thing"
    return "thing" if kind == "reason" and asks_degree(question) else kind


def asks_degree(question: str) -> bool:
    """Whether a how-question asks for a degree ("How lasting is X?", "How likely is X?"): its answer
    is a word or phrase ("ephemeral"), not a sentence of reasons like "How does X work?"."""
    tokens = tag([question])[0].tokens
    words = [(question[s:e].lower(), pos) for s, e, pos in tokens if pos != "PUNCT"]
    return (len(words) > 2 and words[0][0] == "how" and words[1][1] in ("ADJ", "ADV")
            and words[2][1] == "AUX")


def _modifier(question: str, end: int) -> bool:
    """Whether the word ending at `end` modifies a noun after it ("what kind of *state* research
    institutions" asks for institutions, not a place)."""
    nxt = [pos for s, _e, pos in tag([question])[0].tokens if s >= end]
    return bool(nxt) and nxt[0] in ("NOUN", "PROPN")


# markup pasted into a question ("<script>alert(1)</script>", "<b>"): text for a browser, not words asked about
_MARKUP = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>|</?[A-Za-z][^<>]{0,200}>", re.I | re.S)


def analyse(question: str) -> Question:
    """The question's type and terms; content words by their part of speech, so "which", "did" or
    "how many" never count as words the evidence must hold. Markup is blanked out first (same offsets)."""
    plain = _MARKUP.sub(lambda m: " " * len(m.group()), question)
    question = plain if plain.strip() else question
    tagged = tag([question])[0]
    terms, specific, nouns = set(), set(), set()
    for s, e, pos in tagged.tokens:
        words = tokenize(question[s:e])
        if pos in CONTENT_POS:
            terms.update(words)
        if pos in SPECIFIC_POS or any(ch.isdigit() for ch in question[s:e]):  # "14th" too
            specific.update(words)
        if pos in ("NOUN", "PROPN"):
            nouns.update(words)
    return Question(question, answer_kind(question), frozenset(terms or tokenize(question)), frozenset(specific),
                    frozenset(nouns), wh_noun(question), relation_words(question), asks_subject(question))


# "what is the budget of X": the attribute (its last word) a question asks for
ATTRIBUTE = re.compile(r"\b(?:what|which)\s+(?:is|was|are|were)\s+(?:the|its|their)\s+((?:\w+\s+){0,2}?\w+)"
                       r"\s+(?:of|in|for)\b", re.I)
# verbs that say little by themselves ("did", "have", "say"): English function verbs, never a relation
LIGHT_VERBS = frozenset(tokenize("be is was are were been being have has had do does did done say says said tell told "
                                 "get gets got make makes made give gave given take took taken set go goes went "
                                 "come came use used seem seemed become became happen happened mean let"))
# the main verb says what is asked ("Who *headed* X when it released ...?", "Where is X *headquartered*?");
# verbs of other clauses ("that Xi identified", "when it released") describe the question's subject
_PREDICATE_DEPS = {"ROOT", "acomp"}


@lru_cache(maxsize=1024)
def _parse(question: str):
    return nlp()(question)


@lru_cache(maxsize=4096)
def asks_subject(question: str) -> bool:
    """Whether the question's wh-phrase is the subject of its verb ("Who declared X?", "Which report
    documented X?"), not its object ("What did X declare?"): a sentence states such an answer before the verb."""
    wh = next((t for t in _parse(question) if t.lower_ in ("who", "which", "what")), None)
    head = wh.head if wh is not None and wh.dep_ == "det" else wh
    while head is not None and head.dep_ in ("poss", "compound") and head.head is not head:
        head = head.head  # "which unit's roadmaps", "which think tank"
    if head is None or head.head.pos_ != "VERB":
        return False
    # a phrase left unattached ("dep") before a verb that has no subject is that subject
    # ("Which leader before Xi's set out X?" parses so)
    return head.dep_ in ("nsubj", "nsubjpass") or (head.dep_ == "dep" and head.i < head.head.i and not any(
        t.dep_ in ("nsubj", "nsubjpass") and t.head.i == head.head.i for t in head.doc))


@lru_cache(maxsize=4096)
def relation_words(question: str) -> frozenset[str]:
    """The words (lowercase, as written) that say what a question asks about its subject: the attribute
    of "what is the *budget* of X" and the question's own verbs ("Who *founded* X?", "Where is X
    *headquartered*?", "How much did X *invest*?"); light verbs and the verbs of other clauses left out."""
    m = ATTRIBUTE.search(question)
    words = {m.group(1).split()[-1].lower()} if m else set()
    for tok in _parse(question):
        # a verb is a word: markup or code in a question ("alert(1)</script") is never a relation asked for
        if tok.is_alpha and tok.pos_ == "VERB" and tok.dep_ in _PREDICATE_DEPS and not set(tokenize(tok.text)) <= LIGHT_VERBS:
            words.add(tok.text.lower())
    return frozenset(w for w in words if tokenize(w))


def is_request(question: str) -> bool:
    """Whether a sentence without "?" asks for something: it opens with a verb ("Tell me when ...") or
    "I", "we" or "you" say it ("I want to know when ..."); a claim to check does neither."""
    doc = _parse(question)
    first = next((t for t in doc if t.pos_ not in ("INTJ", "PUNCT", "SPACE")), None)
    asker = any(t.dep_ == "nsubj" and t.head.dep_ == "ROOT" and t.lower_ in ("i", "we", "you") for t in doc)
    return asker or (first is not None and first.tag_ == "VB")


@lru_cache(maxsize=4096)
def rank_words(question: str) -> frozenset[str]:
    """The ordinals and superlatives of a question (lowercase, as written: "the *first* to", "the
    *largest*"): a rank it asks about, which a passage must state to answer it."""
    return frozenset(t.text.lower() for t in _parse(question)
                     if t.is_alpha and (t.tag_ in ("JJS", "RBS") or t.ent_type_ == "ORDINAL") and tokenize(t.text))


@lru_cache(maxsize=4096)
def clause_words(question: str) -> frozenset[str]:
    """The stemmed words of the clause that holds a question's wh-word when that clause is not the
    whole question ("The city planning X works in a field *where China launched which world first*?"):
    what it asks, while the other clauses say what it is about; empty when the wh-word's clause is the main one."""
    wh = next((t for t in _parse(question) if t.lower_ in _WH_WORDS), None)
    verb = wh
    while verb is not None and verb.pos_ not in ("VERB", "AUX") and verb.head.i != verb.i:
        verb = verb.head
    if verb is None or verb.pos_ not in ("VERB", "AUX") or verb.dep_ == "ROOT":
        return frozenset()
    return frozenset(w for t in verb.subtree for w in tokenize(t.text))


_WH_WORDS = ("what", "which", "who", "whom", "whose", "where", "when", "how")
_WH_NOUN = re.compile(r"\b(?:what|which)\s+(?:kinds?|types?|sorts?|forms?)\s+of\s+(\w+)|\b(?:what|which)\s+(\w+)", re.I)


def wh_noun(question: str) -> str:
    """The stemmed noun a "what kind of X" / "which X" question asks about ("" if none: "what did ...")."""
    m = _WH_NOUN.search(question)
    if not m:
        return ""
    if not m.group(1) and (head := _wh_word(question)):  # "which long-running Chinese science *programme*"
        return (tokenize(head) or [""])[0]
    at = m.start(1) if m.group(1) else m.start(2)
    pos = next((p for s, e, p in tag([question])[0].tokens if s == at), "")
    words = tokenize(m.group(1) or m.group(2)) if pos in ("NOUN", "PROPN") else []
    return words[0] if words else ""


def _wh_word(question: str) -> str:
    """The noun a "which X" / "what X" question asks for, as written: the last noun of the adjectives,
    nouns and hyphened words right after its wh-word ("which Chinese venture *capitalist*"; "" if none: "what did ...")."""
    doc = _parse(question)
    wh = next((t for t in doc if t.lower_ in ("which", "what")), None)
    run = []
    for t in doc[wh.i + 1:] if wh is not None else []:
        hyphened = t.text == "-" or (t.i + 1 < len(doc) and doc[t.i + 1].text == "-" and not t.whitespace_)
        if t.pos_ not in ("ADJ", "NOUN", "PROPN") and not hyphened and not (run and run[-1].text == "-"):
            break  # "which long-running Chinese science *programme*": a hyphened word is an adjective too
        run.append(t)
    return run[-1].text if run and run[-1].pos_ == "NOUN" else ""
