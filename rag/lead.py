"""The text a sentence continues: where a question's answer stands when the sentence that matches it
refers back to something said before.

An article names an event and its date in one sentence and quotes what was said there in the next
paragraph ("Xi's work report in October 2017 ... In his remarks, Xi highlighted:" then the quote),
or returns to it later ("Xi declared in that same speech, ..."). The sentence that matches "When did
Xi give the speech in which he called for X?" is the quote; the date stands in the sentence it
continues. `lead` finds that sentence: only through the document's own structure (a paragraph
opened by a line ending in a colon) or an explicit back-reference ("that same"), never by distance
alone, so a question whose matching sentence names no date and refers back to nothing stays refused.
"""

from __future__ import annotations

import re

from .entities import tag
from .phrase import typed_phrase

LEAD_COST = 0.05  # a unit answered by the sentence it continues ranks below one that holds the answer itself
MAX_BACK = 12  # sentences looked back over at most
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
    """Whether the sentence at `row` introduces what follows it (ends in a colon: "In his remarks, Xi highlighted:")."""
    return _text(index, row).rstrip().rstrip("\"'”’").endswith(":")


def _in_block(index, row: int) -> bool:
    """Whether `row` stands in a paragraph that a colon introduces (a quotation or a list)."""
    while row > 0 and index.sentences[row - 1][0] == index.sentences[row][0]:
        if _opens_paragraph(index, row):
            return _introduces(index, row - 1)
        row -= 1
    return False


def context(index, first: int, text: str) -> list[int]:
    """The rows before `first` that the unit starting there (its text `text`) continues, nearest first:
    none unless it stands in a paragraph a colon introduces or refers back ("that same"); then back to
    the start of the introducing paragraph, crossing at most one other paragraph break for a back-reference."""
    refers = bool(_BACK_REFERENCE.search(text))
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
    holds an entity of q's expected type not named in q, or None."""
    for row in context(index, first, text):
        sentence = _text(index, row)
        tagged = tag([sentence])[0]
        span = typed_phrase(q, sentence, tagged)
        if span is not None:
            return row, span, tagged, sentence
    return None
