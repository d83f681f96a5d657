"""Candidate spans for the short answer (rag.phrase): the tagger's noun phrases, entities, quotations,
runs of new words and the phrases they join into ("X of Y", "X, Y, and Z"), each saying something the
question does not."""

from __future__ import annotations

import re

from .entities import Tagged
from .lexical import tokenize
from .question import Question

MAX_PHRASE_WORDS = 10
MAX_RUN = 6  # tokens in a run of new words (see _runs)
# a quotation left open at the end of the passage ends there ("Xi declared, “competition ... is talent competition."),
# a long one of several sentences at its first full stop
_QUOTED = re.compile(r"[“\"]([^“”\"]{1,120})(?:[”\"]|$)")
_QUOTED_LONG = re.compile(r"[“\"]([^“”\"]{1,120}?[.!?])(?=\s+[A-Z])")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# what qualifies an amount ("over $2.6 billion", "nearly 30 percent"): English function words
_ABOUT = re.compile(r"\b(?:over|under|about|around|nearly|almost|roughly|approximately|some|only|more than|less than"
                    r"|fewer than|up to|at least|at most)\s+$", re.I)
_RUN_POS = {"ADJ", "NOUN", "PROPN", "NUM"}
_GLUE = {"of", "and", "-", "for"}


def novel(q: Question, text: str) -> bool:
    """Whether a phrase says something the question does not already say (its wh-noun aside)."""
    words = set(tokenize(text)) - {q.wh}
    numbers = set(_NUMBER.findall(text)) - set(_NUMBER.findall(q.text))  # "$2.6" has no word of two letters
    return bool(words | numbers) and len(words & q.terms) / (len(words) + len(numbers)) < 0.5


_AMOUNTS = {"CARDINAL", "QUANTITY", "MONEY", "PERCENT"}


def qualified(text: str, span: tuple[int, int]) -> tuple[int, int]:
    """An amount with the word that qualifies it: "over $2.6 billion" is not "$2.6 billion"."""
    m = _ABOUT.search(text, max(0, span[0] - 16), span[0])
    return (m.start(), span[1]) if m else span


def noun_phrases(text: str, tagged: Tagged) -> list[tuple[int, int]]:
    """The tagger's noun phrases of at most MAX_PHRASE_WORDS words that hold a noun, name or number, no ", "."""
    return [(s, e) for s, e in tagged.phrases if len(text[s:e].split()) <= MAX_PHRASE_WORDS
            and any(pos in ("NOUN", "PROPN", "NUM") for ts, _te, pos in tagged.tokens if s <= ts < e)
            and ", " not in text[s:e]]  # the tagger's phrases sometimes run over a comma ("instance, Hu Jintao")


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
    short = noun_phrases(text, tagged)
    quoted = [p for p in quotations(text) if len(text[p[0]:p[1]].split()) <= MAX_PHRASE_WORDS]
    ents = {qualified(text, (s, e)) if label in _AMOUNTS else (s, e) for s, e, label in tagged.entities}
    base = sorted(set(short) | ents | set(_runs(q, text, tagged)))
    spans = set(base) | set(quoted) | set(_joined(text, base))
    return sorted(p for p in spans if novel(q, text[p[0]:p[1]]) and len(text[p[0]:p[1]].split()) <= 2 * MAX_PHRASE_WORDS)


def quotations(text: str) -> list[tuple[int, int]]:
    """The spans inside quotation marks, without the punctuation a quote often ends with (“megaprojects,”)."""
    short = list(_QUOTED.finditer(text))
    opened = {m.start() for m in short}
    out = []
    for m in short + [m for m in _QUOTED_LONG.finditer(text) if m.start() not in opened]:
        s, e = m.span(1)
        while e > s and text[e - 1] in ",.;:!?":
            e -= 1
        if e > s:
            out.append((s, e))
    return out


_NAME_END = re.compile(r"\b[A-Z][\w-]*$")
AND_OR = re.compile(r"\b(?:and|or)\b")
_LIST_SEP = re.compile(r"\s*(?:,?\s*and|,?\s*or|,)\s+")  # ", or" before "," (a match does not backtrack)


def _joined(text: str, base: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Phrases joined into larger ones: "X of Y" ("AlphaGo’s defeat of Lee Sedol", "a critical enabler
    of innovation"), a name "X for Y" ("the Center for Z") and lists "X, Y, and Z" ("new energy, biotechnology, and next-generation ...")."""
    starts: dict[int, list[int]] = {}
    for s, e in base:
        starts.setdefault(s, []).append(e)
    out = []
    for s, e in base:
        m = re.match(r"\s+of\s+", text[e:e + 8])
        out += [(s, e2) for e2 in starts.get(e + m.end(), [])] if m else []
        # a name goes on through "for" another name ("the Program for Science and Technology Development")
        m = _NAME_END.search(text, max(0, e - 40), e) and re.match(r"\s+for\s+(?=[A-Z])", text[e:e + 8])
        out += [(s, e2) for e2 in starts.get(e + m.end(), [])] if m else []
        end, items = e, 1
        while (m := _LIST_SEP.match(text, end)) and starts.get(m.end()) and items < 8:
            end, items = max(starts[m.end()]), items + 1
            if AND_OR.search(m.group()):  # "X, Y" alone is an apposition or two clauses, not a list
                out.append((s, end))
    return out
