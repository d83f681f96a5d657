"""Follow-up rewriting (rag.followup.standalone) on sentences written for these tests."""

from rag.followup import standalone

BRIDGE = ("When was the Harbor Bridge built?", "The Harbor Bridge was completed in June 2014.")
FLOOD = ("When did the Lindmark flood happen?", "The flood hit Lindmark on 3 March 2019.")
TURBINES = ("How many turbines does the Kestrel wind farm have?", "The Kestrel wind farm has 48 turbines.")


def test_a_bare_that_after_a_date_answer_is_the_thing_that_happened_not_the_date():
    for follow in ("And who designed that?", "Who paid for this?"):
        out = standalone(follow, [BRIDGE])
        assert "June 2014" not in out and "Harbor Bridge" in out, out
    assert "3 March 2019" not in standalone("What caused that?", [FLOOD])
    # ... unless the follow-up asks about the time itself
    assert "3 March 2019" in standalone("What day of the week was that?", [FLOOD])


def test_a_bare_that_after_an_amount_is_the_amount_unless_the_follow_up_asks_who_where_or_when():
    assert "48 turbines" not in standalone("Who built that?", [TURBINES])
    assert "Kestrel" in standalone("Who built that?", [TURBINES])
    assert "48 turbines" in standalone("Is that a lot?", [TURBINES])


def test_an_elliptic_follow_up_swaps_its_name_or_date_into_the_previous_question():
    members = ("How many members joined in 2018?", "In 2018, 120 members joined the club.")
    assert standalone("And in 2019?", [members]) == "How many members joined in 2019?"
    vat = ("What is the VAT rate in France?", "The VAT rate in France is 20 percent.")
    assert standalone("What about Germany?", [vat]) == "What is the VAT rate in Germany?"
    second = ("What is the second stage of the plan?", "The second stage is testing.")
    assert standalone("And the third?", [second]) == "What is the third stage of the plan?"
    # nothing of the same kind to swap: the question is kept and the previous turn's referent added
    assert standalone("And in Oslo?", [members]).startswith("And in Oslo? (")
