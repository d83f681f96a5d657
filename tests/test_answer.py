"""Which units an extractive answer cites (rag.answer.choose), on sentences written here."""

from __future__ import annotations

import numpy as np

from rag import reader
from rag.answer import adds, choose
from rag.reader import analysed
from rag.question import analyse
from rag.types import Ranked

BEST = "The council approved the bridge in 2019."
REPEAT = "In 2019 the council approved several projects, the bridge among them."
MORE = "The bridge crosses the Avon near the old mill."


def unit(row: int, score: float, text: str):
    """A ranked unit as rag.answer.ranked returns it (rag.types.Ranked), untyped."""
    v = np.zeros(8, dtype="float32")
    v[row] = 1.0  # orthogonal: no unit is a near-duplicate of another
    return Ranked(row, row, None, score, v, None, None, text, {})


def idf(term: str) -> float:
    return 1.0


def test_an_extra_sentence_must_add_words_of_the_question():
    q = analyse("Which river does the bridge that the council approved in 2019 cross?")
    assert adds(q, REPEAT, BEST, idf) == 0.0  # council, approved, 2019, bridge: all in the best one
    assert adds(q, MORE, BEST, idf) > 0.0  # "crosses" is new ("river" is what is asked, not a word to hold)
    units = [unit(0, 0.80, BEST), unit(1, 0.79, REPEAT), unit(2, 0.78, MORE)]
    assert [u.text for u in choose(q, units, 3, idf)] == [BEST, MORE]


def test_a_claim_cites_every_close_sentence_and_none_beyond_the_margin():
    claim = analyse("The council approved a bridge over the Avon in 2019.")
    far = unit(3, 0.80 - reader.CLAIM_MARGIN - 0.01, "A bridge needs maintenance.")
    units = [unit(0, 0.80, BEST), unit(1, 0.79, REPEAT), unit(2, 0.80 - reader.CLAIM_MARGIN + 0.01, MORE), far]
    assert [u.text for u in choose(claim, units, 4, idf)] == [BEST, REPEAT, MORE]
    assert len(choose(claim, units, 2, idf)) == 2  # max_sentences still bounds it
    # a question's extra sentence stays within the tighter ANSWER_MARGIN
    q = analyse("Which river does the bridge that the council approved in 2019 cross?")
    assert [u.text for u in choose(q, units, 4, idf)] == [BEST]


def test_a_name_alone_is_not_what_an_extra_sentence_must_add():
    q = analyse("What did Xi urge the council to approve?")  # a follow-up's rewriting names the subject
    best = "He urged the council to approve the bridge."
    assert adds(q, "Xi has spoken about many projects.", best, idf) == 0.0
    assert adds(q, "Xi wants approval of the budget.", best, idf) == 0.0  # "approval" stems like "approve"
    assert adds(q, "Xi urged it.", "The council will approve the bridge.", idf) > 0.0  # "urge" is new


def test_a_unit_holding_the_expected_entity_answers_alone():
    q = analyse("When did the council approve the bridge that crosses the river?")
    best = unit(0, 0.80, BEST)._replace(typed=(37, 41))  # typed: "2019"
    units = [best, unit(1, 0.79, REPEAT), unit(2, 0.78, MORE)]
    assert choose(q, units, 3, idf) == [best]
    assert len(choose(q, [unit(0, 0.80, BEST), *units[1:]], 3, idf)) == 2  # untyped: MORE adds "crosses"


def test_a_sentence_standing_in_for_the_unit_it_continues_is_cited_before_that_unit():
    q = analyse("When did the mayor say the bridge would be free?")
    dated = unit(0, 0.80, "The council met in March 2019.")._replace(
        typed=(16, 26), continues=(5, 5))  # rag.lead found it for the unit at row 5
    chosen = choose(q, [dated, unit(1, 0.79, MORE)], 3, idf)
    assert [(c.first, c.last) for c in chosen] == [(0, 0), (5, 5)]


def test_a_claim_asks_for_no_answer_type_but_a_question_or_request_does():
    # "when" and "where" in a statement join clauses: no date or place need stand in its evidence
    assert analysed("Bridges rust faster when the river carries salt.").kind == "thing"
    assert analysed("Floods are worse where the banks were paved.").kind == "thing"
    assert analysed("When did the bridge open?").kind == "date"
    assert analysed("The bridge opened when?").kind == "date"
    assert analysed("Tell me when the bridge opened.").kind == "date"  # a request, opening with a verb
    assert analysed("Please tell me where the bridge stands.").kind == "place"
    assert analysed("I want to know when the bridge opened").kind == "date"  # said by "I": a request
    assert analysed("We would like to know who built the bridge.").kind == "person"


def test_a_question_typed_without_a_question_mark_is_no_claim():
    # a preposition before the wh-word makes a question without its "?"
    assert analysed("In what year was the bridge opened").kind == "date"
    assert analysed("In which city does the bridge stand").kind == "place"
    assert analysed("In spring the bridge is closed when the river floods.").kind == "thing"  # still a claim
    # a follow-up that rag.followup rewrote, with what it refers to in brackets after its "?"
    assert analysed("But when did that happen? (the bridge opening)").kind == "date"


def test_a_claims_two_sentence_units_pay_the_claim_pair_cost(tiny_rag):
    from rag.answer import ranked

    qv = tiny_rag.embedder.embed_query("When was Rome founded?")
    hits = tiny_rag.retrieve(tiny_rag.index, "When was Rome founded?", query_vector=qv)
    fixed = [{(u[0], u[1]): u[8]["fixed"] for u in ranked(tiny_rag.index, hits, text, qv, tiny_rag.embedder)[1]}
             for text in ("When was Rome founded?", "Rome was founded in 753 BC.")]  # same hits: same prior
    both = fixed[0].keys() & fixed[1].keys()
    assert any(f != l for f, l in both)  # pairs rank among the best either way
    for f, l in both:  # only the claim's pairs are charged: a claim cites single statements first
        assert abs(fixed[0][f, l] - fixed[1][f, l] - (reader.CLAIM_PAIR_COST if f != l else 0.0)) < 1e-6
