"""What a question asks for: its expected answer type, its content and specific terms, and, for a
follow-up, the standalone question it stands for.

The answer type comes from the question's wording (who -> person, when -> date, how many ->
number, where / which country -> place, which company -> organisation, why / how -> reason,
anything else -> thing); the reader prefers sentences holding an entity of that type that the
question does not already name, and quotes that entity as the short answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .entities import Tagged, tag
from .lexical import tokenize

# spaCy entity labels that can answer each type (thing and reason questions take a phrase or a sentence)
LABELS = {"person": {"PERSON", "ORG", "NORP"}, "date": {"DATE", "TIME"},
          "number": {"CARDINAL", "QUANTITY", "PERCENT", "MONEY"},
          "place": {"GPE", "LOC", "FAC", "NORP"}, "org": {"ORG"}}
# "which Chinese tech company": up to three words before the noun, none of them a verb ("what can a state do")
_GAP = r"(?:(?!(?:can|does|did|do|is|was|are|were|has|have|had|will|would|could|should|may|might)\b)[\w-]+ ){0,3}"
_TYPES = [  # the match that starts first in the question wins ("Who headed X when ..." asks for a person)
    ("date", r"\bwhen\b|\b(?:what|which) (?:year|month|date|day|decade|century|season)s?\b|\bby when\b"),
    ("number", r"\bhow (?:many|much)\b|\bwhat (?:percentage|percent|share|proportion|number|amount|sum)\b"
               r"|\bhow (?:large|big|high)\b"),
    ("person", r"\bwho(?:m|se)?\b"),
    ("place", r"\bwhere\b|\b(?:which|what) " + _GAP + r"(?:country|countries|city|cities|province|provinces|region"
              r"|regions|nation|nations|state|place|places)\b"),
    ("org", r"\b(?:which|what) " + _GAP + r"(?:company|companies|firm|firms|organi[sz]ations?|agency|agencies"
            r"|ministry|ministries|think tank|university|universities|institution|department|unit|maker|makers)\b"),
    ("reason", r"^\W*(?:and\s+)?(?:why\b|how\b(?! (?:many|much|large|big|high|long)\b)|for what reason\b)"),
]
SPECIFIC_POS = {"PROPN", "NUM"}
MAX_PHRASE_WORDS = 10
CONTENT_POS = {"NOUN", "PROPN", "VERB", "ADJ", "NUM", "X"}


@dataclass(frozen=True)
class Question:
    text: str
    kind: str  # person | date | number | place | org | reason | thing
    terms: frozenset[str]  # stemmed content words
    specific: frozenset[str]  # stemmed names and numbers
    nouns: frozenset[str]  # stemmed nouns and names: what the question is about
    wh: str = ""  # the stemmed noun a "which X" / "what kind of X" question asks about (wh_noun)

    @property
    def labels(self) -> set[str]:
        return LABELS.get(self.kind, set())


def answer_kind(question: str) -> str:
    low = question.lower()
    found = [(m.start(), i, kind) for i, (kind, pattern) in enumerate(_TYPES) if (m := re.search(pattern, low))]
    return min(found)[2] if found else "thing"


def analyse(question: str) -> Question:
    """The question's type and terms; content words by their part of speech, so "which", "did" or
    "how many" never count as words the evidence must hold."""
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
                    frozenset(nouns), wh_noun(question))


# ---- the phrase that answers it

_WH_NOUN = re.compile(r"\b(?:what|which)\s+(?:kinds?|types?|sorts?|forms?)\s+of\s+(\w+)|\b(?:what|which)\s+(\w+)", re.I)


def wh_noun(question: str) -> str:
    """The stemmed noun a "what kind of X" / "which X" question asks about ("" if none: "what did ...")."""
    m = _WH_NOUN.search(question)
    if not m:
        return ""
    at = m.start(1) if m.group(1) else m.start(2)
    pos = next((p for s, e, p in tag([question])[0].tokens if s == at), "")
    words = tokenize(m.group(1) or m.group(2)) if pos in ("NOUN", "PROPN") else []
    return words[0] if words else ""


def _novel(q: Question, text: str) -> bool:
    """Whether a phrase says something the question does not already say (its wh-noun aside)."""
    words = set(tokenize(text)) - {q.wh}
    return bool(words) and len(words & q.terms) / len(words) < 0.5


def _anchors(q: Question, text: str, tagged: Tagged) -> list[tuple[int, int]]:
    return [(s, e) for s, e, _pos in tagged.tokens if set(tokenize(text[s:e])) & (q.terms - {q.wh})]


def _after(anchors: list[tuple[int, int]], s: int, e: int) -> int:
    """How far a phrase starts after the question's last word before it (what the question's verb
    takes as its object); phrases before every anchor come after those that follow one."""
    gaps = [s - ae for _as, ae in anchors if ae <= s]
    return min(gaps) if gaps else 10_000 + min((abs(a - e) for a, _ in anchors), default=0)


def _fits(q: Question, label: str, text: str) -> bool:
    """An entity of the expected type; a bare year ("753", tagged a number) answers "when" too."""
    return label in q.labels or (q.kind == "date" and label == "CARDINAL" and bool(re.fullmatch(r"\d{3,4}", text)))


def typed_entity(q: Question, text: str, tagged: Tagged) -> tuple[int, int] | None:
    """The entity of the expected type nearest after the question's words, that the question does not name."""
    if not q.labels:
        return None
    ents = [(s, e) for s, e, label in tagged.entities if _fits(q, label, text[s:e]) and _novel(q, text[s:e])]
    if not ents:
        return None
    anchors = _anchors(q, text, tagged)
    return min(ents, key=lambda se: (_after(anchors, *se), se[0]))


def _listed(q: Question, text: str, tagged: Tagged, span: tuple[int, int]) -> tuple[int, int]:
    """An entity with the entities listed beside it ("Baidu, Alibaba, Tencent, and iFlytek")."""
    # a list may mix tags, or leave names untagged ("Alibaba"): names among the noun phrases count too
    ents = sorted({(s, e) for s, e, _label in tagged.entities} | {(s, e) for s, e in tagged.phrases if text[s].isupper()})
    i = ents.index(span) if span in ents else -1
    if i < 0:
        return span
    lo, hi = i, i
    while lo > 0 and re.fullmatch(r"\s*(?:,|,?\s*and|,?\s*or)\s*", text[ents[lo - 1][1]:ents[lo][0]]):
        lo -= 1
    while hi + 1 < len(ents) and re.fullmatch(r"\s*(?:,|,?\s*and|,?\s*or)\s*", text[ents[hi][1]:ents[hi + 1][0]]):
        hi += 1
    return ents[lo][0], ents[hi][1]


def answer_phrase(q: Question, text: str, tagged: Tagged) -> tuple[int, int] | None:
    """A short exact span of `text` that answers q, or None (why/how questions, or nothing fits)."""
    if q.kind == "reason":
        return None
    span = typed_entity(q, text, tagged)
    if span is None and q.labels:
        return None
    short = [(s, e) for s, e in tagged.phrases if len(text[s:e].split()) <= MAX_PHRASE_WORDS
             and any(pos in ("NOUN", "PROPN", "NUM") for ts, te, pos in tagged.tokens if s <= ts < e)]
    phrases = [p for p in short if _novel(q, text[p[0]:p[1]])]
    if span is not None:  # the noun phrase around the entity reads better ("10 priority sectors")
        span = _listed(q, text, tagged, span)
        around = [p for p in short if p[0] <= span[0] and span[1] <= p[1]]
        span = max(around, key=lambda p: p[1] - p[0]) if around else span
        era = re.match(r"\s+(?:BCE?|AD|CE)\b", text[span[1]:span[1] + 5])
        span = (span[0], span[1] + era.end()) if era and q.kind == "date" else span
        if re.match(r"[’']s\b", text[span[1]:span[1] + 3]):  # "Germany’s" + the phrase it owns
            owned = [p for p in phrases if 0 <= p[0] - span[1] <= 4]
            span = (span[0], owned[0][1]) if owned else span
        return span
    if not phrases:
        return None
    anchors, wh = _anchors(q, text, tagged), q.wh
    return min(phrases, key=lambda p: (wh not in tokenize(text[p[0]:p[1]]) if wh else 0, _after(anchors, *p), p[0]))


# ---- follow-ups: resolve references to the previous turn

_PRONOUN = re.compile(r"\b(it|its|they|them|their|theirs|he|him|his|she|her|hers|there|this|that|these|those)\b", re.I)
_ELLIPSIS = re.compile(r"^\W*(?:and|what about|how about|what of|and what about)\b", re.I)
_PERSONAL = {"he", "him", "his", "she", "her", "hers"}
_POSSESSIVE = {"its", "his", "her", "their", "theirs", "hers"}
_WH = re.compile(r"^(?:which|what|who|whom|whose|when|where|how|why)\b", re.I)


def needs_context(question: str) -> bool:
    """A pronoun or demonstrative standing for something said before, or an elliptic "And ...?"."""
    return bool(_PRONOUN.search(question) or _ELLIPSIS.search(question) or not tokenize(question))


_NAMED = re.compile(r"[A-Z][\w\u2019'.-]*(?:\s+(?:(?:in|of|for|and|the)\s+)?[A-Z0-9][\w\u2019'.-]*)*")
MAX_REFERENTS = 8


def referents(prev: Question, answer: str) -> list[tuple[str, str]]:
    """(text, entity label or "") of what the previous turn was about, most likely first. When it
    asked for a kind of thing ("which city", "what kind of race", "who", "when") its answer phrase
    comes first: the answer is what "it" means next. Otherwise its own subject does: the names in it
    (capitalised runs such as "Made in China 2025", then entities), its noun phrases, then the answer."""
    question = prev.text
    q_tag, a_tag = tag([question, answer])
    said: list[tuple[str, str]] = []
    phrase = answer_phrase(prev, answer, a_tag)
    if phrase is not None:
        label = next((lb for s, e, lb in a_tag.entities if s >= phrase[0] and e <= phrase[1]), "")
        said.append((answer[phrase[0]:phrase[1]], label))
    asked: list[tuple[str, str]] = []
    for m in sorted(_NAMED.finditer(question), key=lambda m: -len(m.group())):
        name = re.sub(_WH.pattern + r"\s*", "", m.group(), flags=re.I).strip()
        if tokenize(name):
            asked.append((name, next((lb for s, e, lb in q_tag.entities if question[s:e] in name), "")))
    asked += [(question[s:e], label) for s, e, label in q_tag.entities]
    asked += [(question[s:e], "") for s, e in q_tag.phrases if not _WH.match(question[s:e]) and tokenize(question[s:e])]
    first = said + asked if (prev.labels or prev.wh) else asked + said
    return list(dict.fromkeys(first))


def _rewrite(question: str, m, pick: str) -> str:
    word = m.group(1).lower()
    if word in ("this", "that", "these", "those") and re.match(r"\s+[a-z]", question[m.end():m.end() + 20]):
        return f"{question} ({pick})"  # "that plan": keep the noun, name what it is
    return question[:m.start()] + (f"{pick}'s" if word in _POSSESSIVE else pick) + question[m.end():]


def standalone(question: str, history) -> str:
    """The question with its reference to the previous turn resolved, or unchanged when it needs none."""
    previous = [(q, a) for q, a in (history or ()) if q and str(q).strip()]
    if not previous or not needs_context(question):
        return question
    prev_q, prev_a = previous[-1]
    short = str(getattr(prev_a, "short_answer", "") or "")
    prev_a = str(getattr(prev_a, "text", prev_a) or "")
    prev = analyse(str(prev_q))
    found = referents(prev, prev_a)
    if short and (prev.labels or prev.wh):
        found.insert(0, (short, ""))
    if not found:
        return f"{question} ({prev_q})"
    m = _PRONOUN.search(question)
    if m is None:  # "And in 2016?": the question adds to the previous subject
        return f"{question} ({found[0][0]})"
    word = m.group(1).lower()
    wanted = [t for t, label in found if (word in _PERSONAL and label == "PERSON")
              or (word == "there" and label in ("GPE", "LOC"))]
    return _rewrite(question, m, (wanted or [t for t, _ in found])[0])
