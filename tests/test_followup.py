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
