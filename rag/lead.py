"""Where a question's answer stands when the sentence that matches it does not hold it: in the
sentence it continues, or in another sentence about the subject it names.

An article names an event and its date in one sentence and quotes what was said there in the next
paragraph ("The mayor spoke at the council in March 2019. She said:" then the quote), or returns to
it later ("She added in that same address, ..."). The sentence that matches "When did the mayor say
X?" is the quote; the date stands in the sentence it continues. `lead` finds that sentence only
through the document's own structure (a paragraph opened by a line ending in a colon) or an explicit
back-reference ("that same"), never by distance alone, so a question whose matching sentence names
no date and refers back to nothing stays refused. `bridge` answers a question that describes what
the matching sentence names ("the scheme modelled on Dutch dikes" for "The Avon Plan drew on Dutch
dikes.") from a sentence about that name that says what the question asks and the other lacks.
"""

from __future__ import annotations

import re

from .entities import nlp, tag
from .lexical import tokenize
from .phrase import typed_phrase
from .reader import asked_words

MAX_BACK = 12  # sentences looked back over at most
_SHARED = ("date", "place")  # what a back-reference's sentence shares with the one it refers to
# a demonstrative naming something said before ("in that same speech", "this same plan")
_BACK_REFERENCE = re.compile(r"\b(?:that|this|these|those) same\b", re.I)


def _text(index, row: int) -> str:
    doc_id, s, e = index.sentences[row]
    return index.documents[doc_id].text[s:e]


def _opens_paragraph(index, row: int) -> bool:
    doc_id, s, _ = index.sentences[row]
    prev_doc, _, prev_end = index.sentences[row - 1]
    return prev_doc != doc_id or bool(re.search(r"\n\s*\n", index.documents[doc_id].text[prev_end:s]))


def _introduces(index, row: int) -> bool:
    """Whether the sentence at `row` introduces what follows it (ends in a colon: "She said:")."""
    return _text(index, row).rstrip().rstrip("\"'”’").endswith(":")


def _in_block(index, row: int) -> bool:
    """Whether `row` stands in a paragraph that a colon introduces (a quotation or a list), at most MAX_BACK
    sentences into it (`context` looks no further back; a long paragraph without breaks is not walked whole)."""
    for row in range(row, max(row - MAX_BACK, 0), -1):
        if index.sentences[row - 1][0] != index.sentences[row][0]:
            break
        if _opens_paragraph(index, row):
            return _introduces(index, row - 1)
    return False


def context(index, first: int, text: str, back: bool = True) -> list[int]:
    """The rows before `first` that the unit starting there (its text `text`) continues, nearest first:
    none unless it stands in a paragraph a colon introduces or refers back ("that same"; only if `back`);
    then back to the start of the introducing paragraph, crossing at most one other paragraph break for a
    back-reference."""
    refers = back and bool(_BACK_REFERENCE.search(text))
    if not (refers or _in_block(index, first)):
        return []
    rows, row, crossed = [], first, 0
    while row > 0 and index.sentences[row - 1][0] == index.sentences[row][0] and len(rows) < MAX_BACK:
        if _opens_paragraph(index, row) and not _introduces(index, row - 1):
            if not refers or crossed:
                break
            crossed += 1
        row -= 1
        rows.append(row)
    return rows


def lead(index, q, first: int, text: str):
    """(row, typed entity span, tags, text) of the nearest sentence the unit continues (`context`) that
    holds an entity of q's expected type not named in q, or None. A back-reference ("in that same speech")
    shares only the time and place of what it refers to: the person or number in the sentence it refers to
    did not do what this one says ("That same year, a crane was installed." after "Caldwell promised ...")."""
    for row in context(index, first, text, back=q.kind in _SHARED):
        sentence = _text(index, row)
        tagged = tag([sentence])[0]
        span = typed_phrase(q, sentence, tagged)
        if span is not None:
            return row, span, tagged, sentence
    return None


def subject(text: str) -> str:
    """The subject of `text`'s main verb as written ("The Avon Plan" in "The Avon Plan drew on ..."),
    when it holds a name; else ""."""
    for token in nlp()(text):
        if token.dep_ in _SUBJECTS and token.head.dep_ == "ROOT":
            words = token.doc[token.left_edge.i:token.right_edge.i + 1]
            return words.text if any(t.pos_ == "PROPN" for t in words) else ""
    return ""


_SUBJECTS = {"nsubj", "nsubjpass", "csubj", "csubjpass"}


def bridge(index, q, scored: list):
    """A ranked unit that answers q for the best one, which names what q only describes: "In what year was
    the scheme modelled on X launched?" matches "The Avon Plan drew on X.", which names no year; "Since
    its launch in 2012, the plan ..." does, about the same subject. The unit must hold
    an entity of q's expected type, one of q's words the best unit lacks, and the best unit's subject (in
    it or the sentence before it), a name that q does not use. Returns (unit, index in `scored`) or None."""
    best = scored[0]
    name = subject(best.text) if q.labels and best.typed is None else ""
    if not name or set(tokenize(name)) & q.terms:
        return None
    lacking = asked_words(q) - set(tokenize(best.text)) - q.specific
    doc_id = index.sentences[best.first][0]
    for n, item in enumerate(scored[1:], start=1):
        if item.typed is None or index.sentences[item.first][0] != doc_id or not set(tokenize(item.text)) & lacking:
            continue
        before = _text(index, item.first - 1) if item.first > 0 and index.sentences[item.first - 1][0] == doc_id else ""
        if name.lower() in f"{before} {item.text}".lower():
            return item, n
    return None
