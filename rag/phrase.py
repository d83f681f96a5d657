"""The short answer: one exact span of the best sentence that answers the question ("2015",
"Germany’s “Industry 4.0” initiative", "their own local specialty and advantage").

A question asking for a person, date, number, place or organisation is answered by the entity of
that type nearest after the question's own words (nearest before them when the question asks for
its verb's subject: "Which unit's roadmaps inspired X?"), with the names listed beside it and an
abbreviation spelled out. Any other question ("what ...", "which plan ...") is answered by the
candidate phrase (rag.spans) that scores best on signals that hold for any text, weighed on the dev
split with bench/tune_reader.py: it holds the noun the question asks about ("which *plan*"), it is
quoted in the text, it is a name, it follows the question's words closely, and it stands where the
question's "what part of X" does ("the medium-high end of X"). When the best unit is a sentence pair,
the phrase comes from the sentence holding more of the question's words, and a fragment grows to the
noun phrase it is part of. Why/how questions get no phrase: their answer is a sentence; "how lasting"
and "how likely" ask for an adjective.
"""

from __future__ import annotations

import re
from bisect import bisect_left

from .chunk import split_sentences
from .entities import Tagged
from .lexical import tokenize
from .question import Question, asks_degree, clause_words, rank_words
from .spans import AND_OR, MAX_PHRASE_WORDS, candidates, noun_phrases, novel, qualified, quotations

# a person may be answered by a common noun ("one queen bee") when no name fits; an organisation ("which firm") needs a name
COMMON_NOUN_KINDS = ("person",)
# weights of the phrase signals (see phrase_signals), chosen on the dev split (odd ids) of eval/gold.jsonl
WEIGHTS = {"wh": 0.5, "quoted": 1.0, "name": 0.0, "near": 1.0, "words": 0.05, "inner": -0.5, "joined": 0.3, "slot": 0.5}


def _anchors(q: Question, text: str, tagged: Tagged) -> list[tuple[int, int]]:
    return [(s, e) for s, e, _pos in tagged.tokens if set(tokenize(text[s:e])) & (q.terms - {q.wh})]


def _after(anchors: list[tuple[int, int]], s: int, e: int, subject: bool = False) -> int:
    """How far a phrase starts after the question's last word before it (what the question's verb
    takes as its object); phrases before every anchor come after those that follow one. When the
    question asks for the subject ("Which unit's roadmaps inspired X?"), the other way round: how
    far the phrase ends before the question's next word."""
    gaps = [a - e for a, _ae in anchors if a >= e] if subject else [s - ae for _as, ae in anchors if ae <= s]
    return min(gaps) if gaps else 10_000 + min((abs(a - e) for a, _ in anchors), default=0)


def _fits(q: Question, label: str, text: str) -> bool:
    """An entity of the expected type; a bare year ("753", tagged a number) answers "when" too."""
    return label in q.labels or (q.kind == "date" and label == "CARDINAL" and bool(re.fullmatch(r"\d{3,4}", text)))


_NUMERIC = {"DATE", "CARDINAL", "ORDINAL", "QUANTITY"}


def _in_name(text: str, tagged: Tagged, start: int) -> bool:
    """A number that ends a name ("Made in China *2025*", "Industry *4.0*") names, it does not answer: it
    follows a proper noun, or a capitalised noun (the tagger reads a quoted "“Industry" as a noun)."""
    prev = [(s, e, pos) for s, e, pos in tagged.tokens if e <= start]
    return (bool(prev) and prev[-1][1] == start - 1 and text[start - 1] == " "
            and (prev[-1][2] == "PROPN" or (prev[-1][2] == "NOUN" and text[prev[-1][0]].isupper())))


# how often something happens answers "when" ("twice a month", "every year", "three times a day")
_FREQUENCY = re.compile(r"\b(?:once|twice|thrice|(?:\w+|\d+) times|every(?: other)?|each)\s+(?:an?\s+|per\s+)?"
                        r"(?:day|week|fortnight|month|quarter|year|decade|century|season|spring|summer|autumn|winter)s?\b",
                        re.I)


def _typed(q: Question, text: str, tagged: Tagged) -> list[tuple[int, int]]:
    """Entities of the expected type that the question does not name, nearest after its words first."""
    if not q.labels:
        return []
    ents = [(s, e) for s, e, label in tagged.entities if _fits(q, label, text[s:e]) and novel(q, text[s:e])
            and not (label in _NUMERIC and _in_name(text, tagged, s))]
    if q.kind == "date":  # "When do spring tides happen?" -> "twice a month" (the tagger knows no frequency)
        ents += [m.span() for m in _FREQUENCY.finditer(text) if not any(a < m.end() and m.start() < b for a, b in ents)]
    anchors = _anchors(q, text, tagged)
    person = {(s, e) for s, e, label in tagged.entities if label == "PERSON"} if q.by_noun else set()
    return sorted(ents, key=lambda se: (bool(person) and se not in person, _after(anchors, *se, q.subject), se[0]))


def typed_phrase(q: Question, text: str, tagged: Tagged,
                 within: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """The first typed entity (inside `within`, if given) whose phrase does not restate one of the
    question's names or numbers: "Baidu, Alibaba, Tencent, and iFlytek" does not answer "Who founded Alibaba?"."""
    short = noun_phrases(text, tagged)
    # amounts and nationalities answer as modifiers too ("17.85 billion Chinese renminbi", "Canadian citizens")
    qualifying = {(s, e) for s, e, label in tagged.entities if label in _NUMERIC | {"MONEY", "PERCENT", "NORP"}}
    for span in _typed(q, text, tagged):
        if within and not (within[0] <= span[0] and span[1] <= within[1]):
            continue
        if span not in qualifying and _modifies(text, tagged, span):
            continue
        grown = _typed_phrase(q, text, tagged, _spelled_out(text, tagged, span), short)
        if not (set(tokenize(text[grown[0]:grown[1]])) & q.specific):
            return grown
    return None


def _spelled_out(text: str, tagged: Tagged, span: tuple[int, int]) -> tuple[int, int]:
    """An abbreviation in brackets right after the name it stands for ("Office of Science and
    Technology Policy (OSTP)") answers with that name: the name with its abbreviation."""
    s, e = span
    if not (text[s - 1:s] == "(" and text[e:e + 1] == ")"):
        return span
    before = [(a, b) for a, b, _label in tagged.entities if re.fullmatch(r"\s*", text[b:s - 1])]
    return (before[0][0], e + 1) if before else span


def _modifies(text: str, tagged: Tagged, span: tuple[int, int]) -> bool:
    """A name inside a noun phrase that it does not end ("*AI* development", "the *U.S.* Office of ..."):
    it qualifies the phrase's noun, it is not what the phrase names (a possessive owns: "Germany’s ...")."""
    s, e = span
    return any(ps <= s and e < pe for ps, pe in tagged.phrases) and not re.match(r"[’']s\b", text[e:e + 3])


def _listed(text: str, tagged: Tagged, span: tuple[int, int]) -> tuple[int, int]:
    """An entity with the entities of its kind listed beside it ("Baidu, Alibaba, Tencent, and iFlytek")."""
    # a list may leave names untagged ("Alibaba"): capitalised noun phrases count as names of any kind
    label = {(s, e): lb for s, e, lb in tagged.entities}
    names = {(s, e) for s, e in tagged.phrases if text[s].isupper() and (s, e) not in label}
    kind = label.get(span)
    ents = sorted(p for p in set(label) | names if label.get(p) == kind or (p in names and kind not in _NUMERIC))
    i = ents.index(span) if span in ents else -1
    if i < 0:
        return span
    lo, hi = i, i
    while lo > 0 and re.fullmatch(r"\s*(?:,|,?\s*and|,?\s*or)\s*", text[ents[lo - 1][1]:ents[lo][0]]):
        lo -= 1
    while hi + 1 < len(ents) and re.fullmatch(r"\s*(?:,|,?\s*and|,?\s*or)\s*", text[ents[hi][1]:ents[hi + 1][0]]):
        hi += 1
    # a list ends in "and" / "or"; a name after a bare comma is in apposition ("2049, the year by which ...")
    while hi > i and not AND_OR.search(text[ents[hi - 1][1]:ents[hi][0]]):
        hi -= 1
    if not any(AND_OR.search(text[ents[k][1]:ents[k + 1][0]]) for k in range(lo, hi)):
        lo = i
    return ents[lo][0], ents[hi][1]


def _typed_phrase(q: Question, text: str, tagged: Tagged, span: tuple[int, int], short: list) -> tuple[int, int]:
    """The typed entity grown to what reads as the answer: its list, the noun phrase around it
    ("10 priority sectors"), an era ("753 BC"), what a possessive owns ("Germany’s “Industry 4.0” initiative")."""
    span = _listed(text, tagged, span)
    around = [p for p in short if p[0] <= span[0] and span[1] <= p[1]]
    span = max(around, key=lambda p: p[1] - p[0]) if around else qualified(text, span)
    era = re.match(r"\s+(?:BCE?|AD|CE)\b", text[span[1]:span[1] + 5])
    span = (span[0], span[1] + era.end()) if era and q.kind == "date" else span
    if re.match(r"[’']s\b", text[span[1]:span[1] + 3]):
        owned = [p for p in short if 0 <= p[0] - span[1] <= 4 and novel(q, text[p[0]:p[1]])]
        span = (span[0], owned[0][1]) if owned else span
    return _housed(q, text, tagged, span) if q.kind == "org" else span


def _housed(q: Question, text: str, tagged: Tagged, span: tuple[int, int]) -> tuple[int, int]:
    """An organisation with the one it belongs to ("the X Program at the Center for Y (CNAS)"): the
    question may ask for either, unless it names that one itself."""
    m = re.match(r"\s+(?:at|of|within)\s+", text[span[1]:span[1] + 12])
    host = [e for s, e, label in tagged.entities if m and s == span[1] + m.end() and label in ("ORG", "FAC")
            and novel(q, text[s:e])]
    if not host:
        return span
    abbr = re.match(r"\s*\([A-Z][\w.&-]{1,12}\)", text[host[0]:host[0] + 16])
    return span[0], host[0] + (abbr.end() if abbr else 0)


_YES_NO = re.compile(r"^\W*(?:and\s+)?(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|may"
                     r"|might|must)\b", re.I)
# "what part of X", "which side of X": the answer is the phrase said "of X" ("kind of" asks for X's kind)
_PART_OF = re.compile(r"\b(?:what|which)\s+(?!(?:kinds?|types?|sorts?|forms?)\b)\w+\s+of\b", re.I)
_SLOT = re.compile(r"\s+of\s+(?:the\s+|an?\s+|its\s+|their\s+)?")


def phrase_signals(q: Question, text: str, tagged: Tagged, span: tuple[int, int], anchors, quoted) -> dict:
    """What speaks for a candidate phrase: it holds the noun a "which X" question asks about, it is
    quoted, it has a name, how closely it follows the question's words, its length in words, it is
    part of a larger phrase that repeats the question (a fragment), it joins phrases ("X of Y", lists),
    it stands where "what part of X" does (followed by "of X")."""
    s, e = span
    starts = [ts for ts, _te, _p in tagged.tokens]
    gaps = [bisect_left(starts, s) - bisect_left(starts, ae) for _as, ae in anchors if ae <= s]
    slot = _PART_OF.search(q.text) and _SLOT.match(text, e)  # "what part of X": "the medium-high end of X"
    return {"wh": float(bool(q.wh) and any(_same_noun([w], q.wh) for w in tokenize(text[s:e]))),
            "quoted": float(any(qs <= s and e <= qe for qs, qe in quoted)),
            "name": float(any(p == "PROPN" for ts, _te, p in tagged.tokens if s <= ts < e)),
            "near": 1.0 / (1 + min(gaps)) if gaps else 0.0,
            "words": float(len(text[s:e].split())),
            "inner": float(any(a <= s and e <= b and (a, b) != span and not novel(q, text[a:b]) for a, b in tagged.phrases)),
            "joined": float("," in text[s:e] or " of " in text[s:e]),
            "slot": float(bool(slot) and any(a == slot.end() for a, _ae in anchors))}


def _holds(q: Question, text: str) -> tuple[int, ...]:
    """How much of the question a piece of text holds, compared in order: the ranks it asks about
    ("the *third* area"), the words of the clause holding its wh-word (clause_words), its own words,
    then also the words a follow-up's rewriting adds in brackets ("What weakness stands in the way of
    that goal? (a superpower)"): those name what the question is about, not what it asks."""
    words = q.terms - {q.wh}
    added = re.match(r"(.*\S)\s+\(([^()]*)\)\W*$", q.text, re.S)
    own = set(tokenize(added.group(1))) & words if added else words
    ranks = {t for w in rank_words(q.text) for t in tokenize(w)}
    held = set(tokenize(text))
    # "Which plan ...?": a name that ends in the noun asked about ("the New Generation AI Development *Plan*")
    pairs = zip(re.findall(r"\S+", text), re.findall(r"\S+", text)[1:])
    named = bool(q.wh) and any(a[:1].isupper() and b[:1].isupper() and _same_noun(tokenize(b), q.wh) for a, b in pairs)
    return (len(held & ranks), len(held & clause_words(q.text) & words), int(named), len(held & own),
            len(held & words))


def _same_noun(stems: list[str], wh: str) -> bool:
    """One stemmed word that is the wh-noun, in either spelling ("Program" for "programme")."""
    return len(stems) == 1 and (stems[0] == wh or min(len(stems[0]), len(wh)) >= 5
                                and (stems[0].startswith(wh) or wh.startswith(stems[0])))


def _focus(q: Question, text: str) -> tuple[int, int] | None:
    """The sentence of a passage of several that holds the most of the question (_holds; None on a
    tie): the answer stands there, not in the sentence the pair adds before or after it."""
    sents = split_sentences(text)
    if len(sents) < 2:
        return None
    held = sorted(((_holds(q, text[s:e]), (s, e)) for s, e in sents), reverse=True)
    return held[0][1] if held[0][0] > held[1][0] else None


def phrase_unit(q: Question, texts: list[str]) -> int:
    """Which of the units an answer cites (best first) the short answer comes from: the first one
    unless another holds strictly more of the question (_holds: "What is the *third* area of X?" is
    answered by "The third is Y.", cited after the sentence that introduces X)."""
    if q.labels or len(texts) < 2:  # a typed answer stands in the best unit (rag.answer.choose cites it alone)
        return 0
    held = [_holds(q, t) for t in texts]
    best = max(range(len(texts)), key=lambda i: (held[i], -i))
    return best if held[best] > held[0] else 0


def answer_phrase(q: Question, text: str, tagged: Tagged, weights: dict | None = None) -> tuple[int, int] | None:
    """A short exact span of `text` that answers q, or None (why/how questions, or nothing fits)."""
    if q.kind == "reason" or _YES_NO.match(q.text):  # answered by a sentence, not a phrase
        return None
    focus = _focus(q, text)
    if q.labels:
        typed = (focus and typed_phrase(q, text, tagged, focus)) or typed_phrase(q, text, tagged)
        if typed is not None or q.kind not in COMMON_NOUN_KINDS:
            return typed
    cands = candidates(q, text, tagged)
    if focus:
        cands = [p for p in cands if focus[0] <= p[0] and p[1] <= focus[1]] or cands
    if asks_degree(q.text):  # "How lasting is X?": an adjective answers ("ephemeral")
        cands = [(s, e) for s, e in cands
                 if all(p in ("ADJ", "ADV") for ts, _te, p in tagged.tokens if s <= ts < e)] or cands
    if q.labels:  # "Who lays eggs?" -> "one queen bee": a phrase without a name of another kind
        other = [(s, e) for s, e, label in tagged.entities if label not in q.labels]
        cands = [(s, e) for s, e in cands if not any(s < oe and os < e for os, oe in other)]
    if not cands:
        return None
    w = weights or WEIGHTS
    anchors = _anchors(q, text, tagged)
    quoted = quotations(text)

    def score(p):
        sig = phrase_signals(q, text, tagged, p, anchors, quoted)
        return sum(w[k] * v for k, v in sig.items())

    best = max(cands, key=lambda p: (score(p), -p[0]))
    # a quotation is a phrase of its own: it is not grown into the noun phrase around it ("“predatory” practices")
    return best if any(a <= best[0] and best[1] <= b for a, b in quoted) else _whole(q, text, tagged, best)


def _whole(q: Question, text: str, tagged: Tagged, span: tuple[int, int]) -> tuple[int, int]:
    """A phrase grown to the noun phrase or name it is part of, when that says something new too
    ("Development Plan" is part of "the New Generation AI Development Plan")."""
    s, e = span
    verbs = [ts for ts, _te, p in tagged.tokens if p in ("VERB", "AUX")]  # a tagger's phrase may run over a clause
    around = [(a, b) for a, b in {*tagged.phrases, *((a, b) for a, b, _l in tagged.entities)}
              if a <= s and e <= b and len(text[a:b].split()) <= MAX_PHRASE_WORDS and novel(q, text[a:b])
              and ", " not in text[a:b] and not any(a <= v < b for v in verbs)]
    return min(around, key=lambda p: (p[0] - p[1], p[0])) if around else span
