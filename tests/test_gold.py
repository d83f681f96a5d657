"""The gold set stays valid against the bundled corpus: a corpus edit that breaks a quote fails here."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rag.evaluate import KINDS, load_gold, normalise
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
    assert all((g.kind == "unanswerable") == (not g.answerable) for g in gold)


def test_expected_answer_is_inside_a_quote(gold):
    bad = [g.id for g in gold if g.answerable
           and not any(f" {normalise(g.answer)} " in f" {normalise(q)} " for q in g.quotes)]
    assert not bad, f"answers not found in their own quotes: {bad}"


def test_ids_unique_and_counts(gold):
    raw_ids = [json.loads(line)["id"] for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(raw_ids) == len(set(raw_ids))
    kinds = Counter(g.kind for g in gold)
    assert set(kinds) <= set(KINDS)
    assert len(gold) >= 60
    assert kinds["paraphrase"] >= 15
    assert kinds["unanswerable"] >= 10
    assert kinds["multi"] >= 5 and all(len(g.quotes) >= 2 for g in gold if g.kind == "multi")


def test_questions_do_not_copy_their_quote(gold):
    # a question that repeats its quote verbatim measures string matching, not retrieval
    copied = [g.id for g in gold for q in g.quotes if normalise(q) in normalise(g.question)]
    assert not copied
