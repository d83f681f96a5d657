"""The short answer: one exact span of the best sentence that answers the question ("2015",
"Germany’s “Industry 4.0” initiative", "their own local specialty and advantage").

A question asking for a person, date, number, place or organisation is answered by the entity of
that type nearest after the question's own words (nearest before them when the question asks for
its verb's subject: "Which unit's roadmaps inspired X?"), with the names listed beside it and an
abbreviation spelled out. Any other
question ("what ...", "which plan ...") is answered by the candidate phrase that scores best on
signals that hold for any text, weighed on the dev split with bench/tune_reader.py: it holds the
noun the question asks about ("which *plan*"), it is quoted in the text, it is a name, it
follows the question's words closely, and it stands where the question's "what part of X" does ("the
medium-high end of X"). When the best unit is a sentence pair, the phrase comes from the sentence
holding more of the question's words, and a fragment grows to the noun phrase it is part of. Why/how
questions get no phrase: their answer is a sentence; "how lasting / how likely" asks for an adjective.
"""

from __future__ import annotations

import re
from bisect import bisect_left

from .chunk import split_sentences
from .entities import Tagged
from .lexical import tokenize
from .question import Question, asks_degree

MAX_PHRASE_WORDS = 10
# a person may be answered by a common noun ("one queen bee") when no name fits; an organisation ("which firm") needs a name
COMMON_NOUN_KINDS = ("person",)
MAX_RUN = 6  # tokens in a run of new words (see _runs)
# weights of the phrase signals (see phrase_signals), chosen on the dev split (odd ids) of eval/gold.jsonl
WEIGHTS = {"wh": 0.5, "quoted": 1.0, "name": 0.0, "near": 1.0, "words": 0.05, "inner": -0.5, "joined": 0.3, "slot": 0.5}
# a quotation left open at the end of the passage ends there ("Xi declared, “competition ... is talent competition.")
_QUOTED = re.compile(r"[“\"]([^“”\"]{1,120})(?:[”\"]|$)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# what qualifies an amount ("over $2.6 billion", "nearly 30 percent"): English function words
_ABOUT = re.compile(r"\b(?:over|under|about|around|nearly|almost|roughly|approximately|some|only|more than|less than"
                    r"|fewer than|up to|at least|at most)\s+$", re.I)
_RUN_POS = {"ADJ", "NOUN", "PROPN", "NUM"}
_GLUE = {"of", "and", "-", "for"}


def _novel(q: Question, text: str) -> bool:
    """Whether a phrase says something the question does not already say (its wh-noun aside)."""
    words = set(tokenize(text)) - {q.wh}
    numbers = set(_NUMBER.findall(text)) - set(_NUMBER.findall(q.text))  # "$2.6" has no word of two letters
    return bool(words | numbers) and len(words & q.terms) / (len(words) + len(numbers)) < 0.5


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
_AMOUNTS = {"CARDINAL", "QUANTITY", "MONEY", "PERCENT"}


def _in_name(text: str, tagged: Tagged, start: int) -> bool:
    """A number that ends a name ("Made in China *2025*", "Industry *4.0*") names, it does not answer."""
    prev = [(s, e, pos) for s, e, pos in tagged.tokens if e <= start]
    return bool(prev) and prev[-1][2] == "PROPN" and prev[-1][1] == start - 1 and text[start - 1] == " "


def _typed(q: Question, text: str, tagged: Tagged) -> list[tuple[int, int]]:
    """Entities of the expected type that the question does not name, nearest after its words first."""
    if not q.labels:
        return []
    ents = [(s, e) for s, e, label in tagged.entities if _fits(q, label, text[s:e]) and _novel(q, text[s:e])
            and not (label in _NUMERIC and _in_name(text, tagged, s))]
    anchors = _anchors(q, text, tagged)
    return sorted(ents, key=lambda se: (_after(anchors, *se, q.subject), se[0]))


def _qualified(text: str, span: tuple[int, int]) -> tuple[int, int]:
    """An amount with the word that qualifies it: "over $2.6 billion" is not "$2.6 billion"."""
    m = _ABOUT.search(text, max(0, span[0] - 16), span[0])
    return (m.start(), span[1]) if m else span


def _noun_phrases(text: str, tagged: Tagged) -> list[tuple[int, int]]:
    """The tagger's noun phrases of at most MAX_PHRASE_WORDS words that hold a noun, name or number."""
    return [(s, e) for s, e in tagged.phrases if len(text[s:e].split()) <= MAX_PHRASE_WORDS
            and any(pos in ("NOUN", "PROPN", "NUM") for ts, _te, pos in tagged.tokens if s <= ts < e)]


def typed_phrase(q: Question, text: str, tagged: Tagged,
                 within: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """The first typed entity (inside `within`, if given) whose phrase does not restate one of the
    question's names or numbers: "Baidu, Alibaba, Tencent, and iFlytek" does not answer "Who founded Alibaba?"."""
    short = _noun_phrases(text, tagged)
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
    while hi > i and not _AND_OR.search(text[ents[hi - 1][1]:ents[hi][0]]):
        hi -= 1
    if not any(_AND_OR.search(text[ents[k][1]:ents[k + 1][0]]) for k in range(lo, hi)):
        lo = i
    return ents[lo][0], ents[hi][1]


def _typed_phrase(q: Question, text: str, tagged: Tagged, span: tuple[int, int], short: list) -> tuple[int, int]:
    """The typed entity grown to what reads as the answer: its list, the noun phrase around it
    ("10 priority sectors"), an era ("753 BC"), what a possessive owns ("Germany’s “Industry 4.0” initiative")."""
    span = _listed(text, tagged, span)
    around = [p for p in short if p[0] <= span[0] and span[1] <= p[1]]
    span = max(around, key=lambda p: p[1] - p[0]) if around else _qualified(text, span)
    era = re.match(r"\s+(?:BCE?|AD|CE)\b", text[span[1]:span[1] + 5])
    span = (span[0], span[1] + era.end()) if era and q.kind == "date" else span
    if re.match(r"[’']s\b", text[span[1]:span[1] + 3]):
        owned = [p for p in short if 0 <= p[0] - span[1] <= 4 and _novel(q, text[p[0]:p[1]])]
        span = (span[0], owned[0][1]) if owned else span
    return _housed(q, text, tagged, span) if q.kind == "org" else span


def _housed(q: Question, text: str, tagged: Tagged, span: tuple[int, int]) -> tuple[int, int]:
    """An organisation with the one it belongs to ("the X Program at the Center for Y (CNAS)"): the
    question may ask for either, unless it names that one itself."""
    m = re.match(r"\s+(?:at|of|within)\s+", text[span[1]:span[1] + 12])
    host = [e for s, e, label in tagged.entities if m and s == span[1] + m.end() and label in ("ORG", "FAC")
            and _novel(q, text[s:e])]
    if not host:
        return span
    abbr = re.match(r"\s*\([A-Z][\w.&-]{1,12}\)", text[host[0]:host[0] + 16])
    return span[0], host[0] + (abbr.end() if abbr else 0)


def _runs(q: Question, text: str, tagged: Tagged) -> list[tuple[int, int]]:
    """Maximal runs of adjectives, nouns, names and numbers (joined by "of", "and", "-") that hold
    no word of the question: "mainstream", "advanced technology", "medium-high end"."""
    out, run = [], []
    for s, e, pos in tagged.tokens:
        word = text[s:e].lower()
        new = not (set(tokenize(word)) & (q.terms - {q.wh}))
        if new and (pos in _RUN_POS or (run and word in _GLUE)) and len(run) < MAX_RUN:
            run.append((s, e, pos))
            continue
        out.append(run)
        run = [(s, e, pos)] if new and pos in _RUN_POS else []
    out.append(run)
    spans = []
    for r in out:
        while r and r[-1][2] not in _RUN_POS:
            r = r[:-1]
        if r:
            spans.append((r[0][0], r[-1][1]))
    return spans


def candidates(q: Question, text: str, tagged: Tagged) -> list[tuple[int, int]]:
    """Noun phrases, entities, quoted spans and runs of new words, each saying something new."""
    short = _noun_phrases(text, tagged)
    quoted = [p for p in _quoted(text) if len(text[p[0]:p[1]].split()) <= MAX_PHRASE_WORDS]
    ents = {_qualified(text, (s, e)) if label in _AMOUNTS else (s, e) for s, e, label in tagged.entities}
    base = sorted(set(short) | ents | set(_runs(q, text, tagged)))
    spans = set(base) | set(quoted) | set(_joined(text, base))
    return sorted(p for p in spans if _novel(q, text[p[0]:p[1]]) and len(text[p[0]:p[1]].split()) <= 2 * MAX_PHRASE_WORDS)


def _quoted(text: str) -> list[tuple[int, int]]:
    """The spans inside quotation marks, without the punctuation a quote often ends with (“megaprojects,”)."""
    out = []
    for m in _QUOTED.finditer(text):
        s, e = m.span(1)
        while e > s and text[e - 1] in ",.;:!?":
            e -= 1
        if e > s:
            out.append((s, e))
    return out


_YES_NO = re.compile(r"^\W*(?:and\s+)?(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|may"
                     r"|might|must)\b", re.I)
_AND_OR = re.compile(r"\b(?:and|or)\b")
_LIST_SEP = re.compile(r"\s*(?:,?\s*and|,?\s*or|,)\s+")  # ", or" before "," (a match does not backtrack)


def _joined(text: str, base: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Phrases joined into larger ones: "X of Y" ("AlphaGo’s defeat of Lee Sedol", "a critical enabler
    of innovation") and lists "X, Y, and Z" ("new energy, biotechnology, and next-generation ...")."""
    starts: dict[int, list[int]] = {}
    for s, e in base:
        starts.setdefault(s, []).append(e)
    out = []
    for s, e in base:
        m = re.match(r"\s+of\s+", text[e:e + 8])
        out += [(s, e2) for e2 in starts.get(e + m.end(), [])] if m else []
        end, items = e, 1
        while (m := _LIST_SEP.match(text, end)) and starts.get(m.end()) and items < 8:
            end, items = max(starts[m.end()]), items + 1
            if _AND_OR.search(m.group()):  # "X, Y" alone is an apposition or two clauses, not a list
                out.append((s, end))
    return out


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
    return {"wh": float(bool(q.wh) and q.wh in tokenize(text[s:e])),
            "quoted": float(any(qs <= s and e <= qe for qs, qe in quoted)),
            "name": float(any(p == "PROPN" for ts, _te, p in tagged.tokens if s <= ts < e)),
            "near": 1.0 / (1 + min(gaps)) if gaps else 0.0,
            "words": float(len(text[s:e].split())),
            "inner": float(any(a <= s and e <= b and (a, b) != span and not _novel(q, text[a:b]) for a, b in tagged.phrases)),
            "joined": float("," in text[s:e] or " of " in text[s:e]),
            "slot": float(bool(slot) and any(a == slot.end() for a, _ae in anchors))}


def _focus(q: Question, text: str) -> tuple[int, int] | None:
    """The sentence of a passage of several that holds the most of the question's words (None on a
    tie): the answer stands there, not in the sentence the pair adds before or after it."""
    sents = split_sentences(text)
    if len(sents) < 2:
        return None
    words = q.terms - {q.wh}
    held = sorted(((len(set(tokenize(text[s:e])) & words), (s, e)) for s, e in sents), reverse=True)
    return held[0][1] if held[0][0] > held[1][0] else None


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
    quoted = _quoted(text)

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
    around = [(a, b) for a, b in {*tagged.phrases, *((a, b) for a, b, _l in tagged.entities)}
              if a <= s and e <= b and len(text[a:b].split()) <= MAX_PHRASE_WORDS and _novel(q, text[a:b])]
    return min(around, key=lambda p: (p[0] - p[1], p[0])) if around else span
