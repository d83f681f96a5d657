"""The gold set stays valid against the bundled corpus: a corpus edit that breaks a quote fails here."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from rag.evaluate import KINDS, load_gold, normalise, split_of
from rag.load import load_file

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "eval" / "gold.jsonl"
DOC_ID = "made-in-china-2025-explained.txt"


@pytest.fixture(scope="module")
def gold():
    return load_gold(GOLD)


@pytest.fixture(scope="module")
def document():
    return load_file(ROOT / "corpus" / DOC_ID, DOC_ID)


def test_every_quote_is_in_its_document(gold, document):
    missing = [(g.id, q[:60]) for g in gold for q in g.quotes if q not in document.text]
    assert not missing, f"gold quotes no longer in {DOC_ID}: {missing}"


def test_answerable_items_point_at_the_bundled_document(gold):
    assert {g.doc_id for g in gold if g.answerable} == {DOC_ID}
    assert all(g.quotes and g.answer for g in gold if g.answerable)


def test_unanswerable_items_have_no_evidence(gold):
    bad = [g.id for g in gold if not g.answerable and (g.quotes or g.answer or g.doc_id)]
    assert not bad
    assert all(not g.answerable for g in gold if g.kind == "unanswerable")
    assert all(g.kind in ("unanswerable", "followup") for g in gold if not g.answerable)


def test_expected_answer_is_inside_a_quote(gold):
    bad = [g.id for g in gold if g.answerable
           and not any(f" {normalise(g.answer)} " in f" {normalise(q)} " for q in g.quotes)]
    assert not bad, f"answers not found in their own quotes: {bad}"


def test_ids_unique_consecutive_and_counts(gold):
    raw_ids = [json.loads(line)["id"] for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(raw_ids) == len(set(raw_ids))
    # q001, q002, ... in file order: odd ids are the dev split, even ids held out
    assert raw_ids == [f"q{n:03d}" for n in range(1, len(raw_ids) + 1)]
    kinds = Counter(g.kind for g in gold)
    assert set(kinds) <= set(KINDS)
    assert len(gold) >= 120
    assert kinds["paraphrase"] >= 15
    assert kinds["unanswerable"] >= 20
    assert kinds["followup"] >= 25
    assert sum(not g.answerable for g in gold) >= 25
    assert sum(g.kind == "followup" and not g.answerable for g in gold) >= 5
    assert kinds["multi"] >= 5 and all(len(g.quotes) >= 2 for g in gold if g.kind == "multi")


def test_split_is_balanced_per_kind(gold):
    for kind in KINDS:
        n = Counter(split_of(g.id) for g in gold if g.kind == kind)
        assert abs(n["dev"] - n["heldout"]) <= max(2, (n["dev"] + n["heldout"]) // 10), (kind, dict(n))
    n = Counter((split_of(g.id), g.answerable) for g in gold if g.kind == "followup")
    assert abs(n["dev", True] - n["heldout", True]) <= 2 and abs(n["dev", False] - n["heldout", False]) <= 2


def test_short_answers(gold):
    shorts = [g for g in gold if g.short_answer is not None]
    assert all(g.answerable for g in shorts)
    # exact (curly quotes and apostrophes included) inside one of the item's own quotes
    assert not [g.id for g in shorts if not any(g.short_answer in q for q in g.quotes)]
    # and it agrees with the expected answer: one contains the other, after normalising
    assert not [g.id for g in shorts if normalise(g.short_answer) not in normalise(g.answer)
                and normalise(g.answer) not in normalise(g.short_answer)]
    assert not [g.id for g in shorts if len(g.short_answer.split()) > 12]
    answerable = [g for g in gold if g.answerable]
    assert len(shorts) >= 0.9 * len(answerable)  # left out only for why/how questions answered by a sentence


def test_followups_carry_a_previous_turn_from_the_article(gold, document):
    followups = [g for g in gold if g.kind == "followup"]
    assert all(len(g.history) == 1 for g in followups)
    assert not [g for g in gold if g.history and g.kind != "followup"]
    missing = [g.id for g in followups for _q, a in g.history if a not in document.text]
    assert not missing, f"previous answers not verbatim in {DOC_ID}: {missing}"
    assert all(g.history[0][0].strip().endswith("?") for g in followups)
    # a follow-up needs the previous turn: it is short or leans on it with a pronoun
    leaning = re.compile(r"\b(it|its|they|them|their|that|this|he|him|his|she|her|those|these|the third|the first)\b", re.I)
    assert not [g.id for g in followups if not leaning.search(g.question)]
    quantum = [g for g in followups if g.question == "What are cities like it competing to establish?"]
    assert quantum and quantum[0].history[0][0] == "Which city plans a Quantum Valley?"
    assert "Jinan" in quantum[0].history[0][1] and quantum[0].short_answer == "their own local specialty and advantage"


def test_questions_do_not_copy_their_quote(gold):
    # a question that repeats its quote verbatim measures string matching, not retrieval
    copied = [g.id for g in gold for q in g.quotes if normalise(q) in normalise(g.question)]
    assert not copied
