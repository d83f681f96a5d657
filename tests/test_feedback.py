"""Feedback to eval items, the whole path on the tiny corpus: ask, rate, `rag feedback to-gold`,
`rag eval --accept` into a temporary gold file."""

from __future__ import annotations

import json

import pytest

from rag.chats import ChatStore
from rag.cli import main
from rag.config import tuning
from rag.evaluate import load_gold
from rag.feedback import add_candidates, candidate, read_jsonl

BEES = "Who lays eggs in a bee colony?"
WORKERS = "What do they collect?"
TEA = "Where did tea originate?"
GOLD = [{"id": "q001", "question": "Where did tea originate?", "answer": "southwest China", "doc_id": "tea.txt",
         "quotes": ["Tea originated in southwest China."], "answerable": True, "kind": "factoid"},
        {"id": "q002", "question": "What is the boiling point of mercury on Mars?", "answer": None, "doc_id": None,
         "quotes": [], "answerable": False, "kind": "unanswerable"}]


@pytest.fixture
def rated(tmp_path, tiny_rag):
    """Three rated turns: 👍 a factoid, 👍 a follow-up, 👎 with a comment. Returns (flags, answers, gold path)."""
    store = ChatStore(tmp_path / "data")
    s = tiny_rag.settings
    bees = tiny_rag.ask(BEES)
    workers = tiny_rag.ask(WORKERS, [(bees.question, bees.text)])
    tea = tiny_rag.ask(TEA)
    conv = store.create(BEES)
    for a in (bees, workers):
        store.append(conv, a.to_dict())
    other = store.create(TEA)
    store.append(other, tea.to_dict())
    common = dict(settings=tuning(s), model=s.model, index_version="v-test")
    store.add_feedback(conv, 1, 1, **common)
    store.add_feedback(conv, 2, 1, **common)
    store.add_feedback(other, 1, -1, "should name the province", **common)
    gold = tmp_path / "eval" / "gold.jsonl"
    gold.parent.mkdir()
    gold.write_text("".join(json.dumps(g) + "\n" for g in GOLD), encoding="utf-8")
    flags = ["--corpus-dir", str(s.corpus_dir), "--index-dir", str(s.index_dir), "--data-dir",
             str(tmp_path / "data"), "--refusal-threshold", "0.2"]
    return flags, (bees, workers, tea), gold


def test_feedback_becomes_candidates_then_gold_items(rated, capsys):
    flags, (bees, workers, tea), gold = rated
    candidates = gold.with_name("candidates.jsonl")
    assert main(["feedback", "list", *flags]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and "\U0001f44e" in out[2] and out[2].endswith("\u2014 should name the province")

    assert main(["feedback", "to-gold", "--candidates", str(candidates), *flags]) == 0
    assert "3 new candidates" in capsys.readouterr().out
    c1, c2, c3 = read_jsonl(candidates)
    assert [c["id"] for c in (c1, c2, c3)] == ["c0001", "c0002", "c0003"]
    # 👍: expected answer = the short answer, quotes = the cited spans, checked against the document
    assert c1["question"] == BEES and c1["answer"] == bees.short_answer and c1["short_answer"] == bees.short_answer
    assert c1["doc_id"] == "bees.txt" and c1["quotes"] == [c.quote for c in bees.citations]
    assert c1["answerable"] is True and c1["kind"] == "factoid" and "history" not in c1
    assert c1["source"]["settings"]["top_k"] == 5 and c1["source"]["index_version"] == "v-test"
    # a follow-up keeps its history in the gold format
    assert c2["history"] == [[BEES, bees.text]] and c2["kind"] == "followup" and c2["question"] == WORKERS
    # 👎: marked for review, with what was retrieved and said
    assert c3["needs_review"] is True and c3["answer"] is None and c3["quotes"] == []
    assert c3["given_answer"] == tea.text and len(c3["passages"]) == len(tea.hits)
    assert c3["source"]["comment"] == "should name the province"

    assert main(["feedback", "to-gold", "--candidates", str(candidates), *flags]) == 0  # nothing twice
    assert "0 new candidates" in capsys.readouterr().out and len(read_jsonl(candidates)) == 3

    code = main(["eval", "--accept", "c0001,c0003,c0009,c0002", "--gold", str(gold), *flags])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.splitlines() == [f"accepted c0001 as q003 in {gold}", f"accepted c0002 as q004 in {gold}"]
    refused = captured.err.splitlines()
    assert len(refused) == 2
    assert refused[0].startswith("refused: c0003 needs review (rated \U0001f44e")
    assert refused[1] == f"refused: c0009 is not in {candidates}; see `rag feedback to-gold`"
    items = load_gold(gold)  # still a valid gold set
    assert [g.id for g in items] == ["q001", "q002", "q003", "q004"]
    assert items[2].question == BEES and items[2].quotes == tuple(c.quote for c in bees.citations)
    assert items[3].history == ((BEES, bees.text),)

    assert main(["eval", "--accept", "c0001", "--gold", str(gold), *flags]) == 1
    assert capsys.readouterr().err == "refused: c0001 is already in the gold set as q003\n"
    assert len(load_gold(gold)) == 4


def test_quotes_that_no_longer_verify_are_refused(rated, tiny_rag, tiny_corpus, capsys):
    flags, _answers, gold = rated
    assert main(["feedback", "to-gold", "--candidates", str(gold.with_name("candidates.jsonl")), *flags]) == 0
    (tiny_corpus / "bees.txt").write_text("Bees are insects.", encoding="utf-8")
    tiny_rag.build(log=lambda *_: None)
    capsys.readouterr()
    before = gold.read_bytes()
    assert main(["eval", "--accept", "c0001", "--gold", str(gold), *flags]) == 1
    err = capsys.readouterr().err
    assert err.startswith("refused: c0001: quote 1 is no longer in bees.txt") and err.count("\n") == 1
    assert gold.read_bytes() == before


def test_a_reviewed_candidate_can_be_accepted(rated, capsys):
    flags, (_b, _w, tea), gold = rated
    candidates = gold.with_name("candidates.jsonl")
    assert main(["feedback", "to-gold", "--candidates", str(candidates), *flags]) == 0
    items = read_jsonl(candidates)
    fixed = dict(items[2], answer="southwest China", doc_id="tea.txt", quotes=["Tea originated in southwest China."],
                 answerable=True)
    del fixed["needs_review"]
    candidates.write_text("".join(json.dumps(c) + "\n" for c in items[:2] + [fixed]), encoding="utf-8")
    assert main(["eval", "--accept", "c0003", "--gold", str(gold), *flags]) == 0
    assert load_gold(gold)[-1].answer == "southwest China"


def test_thumbs_up_on_a_refusal_is_an_unanswerable_item(tmp_path, tiny_rag):
    fb = {"id": 7, "conversation": 1, "turn": 1, "rating": 1, "question": "Who won the 1930 World Cup?",
          "history": [], "answer": {"answer": "Not in the corpus.", "refused": True, "citations": [], "passages": []}}
    item = candidate(fb, tiny_rag.index.documents)
    assert item["answerable"] is False and item["kind"] == "unanswerable" and "needs_review" not in item
    # 👍 on an answer whose quotes all went stale cannot be a ready item
    fb2 = dict(fb, id=8, answer=tiny_rag.ask(BEES).to_dict())
    (added,) = add_candidates([fb2], {}, tmp_path / "c.jsonl")
    assert added["needs_review"] and "no cited quote still matches" in added["review"]
