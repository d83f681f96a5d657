"""Follow-up rewriting (rag.followup.standalone) on sentences written for these tests."""

from rag.cite import NOT_IN_CORPUS
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


FOUNDER = ("Who founded Norvik Labs?", "Norvik Labs was founded by Anna Berg in 2003.")
BASED = ("Where is Norvik Labs based?", "Norvik Labs is based in Tromso, Norway.")


def test_it_is_never_the_person_a_who_question_found_nor_the_place_a_where_question_found():
    assert standalone("When was it founded?", [FOUNDER]) == "When was Norvik Labs founded?"
    assert standalone("When was it founded?", [BASED]) == "When was Norvik Labs founded?"
    assert standalone("Where was she born?", [FOUNDER]) == "Where was Anna Berg born?"  # a person pronoun still is
    # a "which city" question asks for the city: "it" is the city
    city = ("Which city hosts the Arden Festival?", "The Arden Festival is held in Tromso every June.")
    assert standalone("What is its population?", [city]) == "What is Tromso's population?"


def test_there_becomes_a_place_phrase_and_an_existential_there_is_no_reference():
    assert standalone("What is the population there?", [BASED]) == "What is the population in Tromso?"
    assert standalone("Who lives there?", [BASED]) == "Who lives in Tromso?"
    assert standalone("How far is the airport from there?", [BASED]) == "How far is the airport from Tromso?"
    assert standalone("How many moons are there?", [BASED]) == "How many moons are there?"
    assert standalone("Are there any hotels there?", [BASED]) == "Are there any hotels in Tromso?"


def test_a_three_turn_history_resolves_the_earlier_follow_up_first():
    club = [("How many members joined the Harbor Rowing Club in 2018?", "In 2018, 120 members joined the Harbor Rowing Club."),
            ("And in 2019?", "In 2019, 95 members joined the club.")]
    assert standalone("Who founded it?", club) == "Who founded the Harbor Rowing Club?"  # not "And in 2019?"
    chain = [("When was the Harbor Bridge completed?", "The Harbor Bridge was completed in June 2014."),
             ("And who designed that?", "It was designed by the engineer Lena Ortiz."),
             ("Where was she born?", "Lena Ortiz was born in Porto in 1961.")]
    assert standalone("What did she study?", chain) == "What did Lena Ortiz study?"


def test_a_pronoun_of_the_previous_question_is_no_referent():
    prev = ("Where was she born?", "She was born in Bergen.")
    out = standalone("What does it make?", [prev])
    assert "she" not in out.lower(), out


def test_that_year_after_a_when_question_is_its_date():
    assert "June 2014" in standalone("What else happened in that year?", [BRIDGE])
    assert "3 March 2019" in standalone("Who was mayor at that time?", [FLOOD])


def test_a_refused_previous_answer_lends_nothing():
    from rag.cite import NOT_IN_CORPUS
    from rag.types import Answer
    refused = ("What kind of sensor does Norvik Labs make?", NOT_IN_CORPUS)
    out = standalone("Who wrote it?", [refused])
    assert "corpus" not in out.lower() and "Norvik Labs" in out, out
    said = Answer(question=refused[0], text="No passage says so.", citations=[], refused=True)
    assert "passage" not in standalone("Who wrote it?", [(refused[0], said)]).lower()


def test_it_is_not_a_date_or_number_the_previous_question_named():
    fund = ("How much has the 2016 guidance fund raised?", "The 2016 guidance fund has raised 17 billion.")
    out = standalone("Who runs it?", [fund])
    assert out != "Who runs 2016?" and "fund" in out, out


def test_it_is_the_thing_a_name_modifies_not_the_name():
    assert standalone("What caused it?", [FLOOD]) == "What caused the Lindmark flood?"
    assert standalone("Who designed it?", [BRIDGE]) == "Who designed Harbor Bridge?"  # the name is the thing


def test_a_complete_question_opening_with_and_is_not_rewritten():
    for q in ("And who founded Norvik Labs?", "And what does Norvik Labs make?"):
        assert standalone(q, [BRIDGE]) == q
    assert standalone("And who won in 2019?", [BRIDGE]) != "And who won in 2019?"  # no subject of its own


def test_what_about_a_name_swaps_the_previous_subject_whatever_its_tagged_label():
    assert standalone("How about Norvik Labs?", [BRIDGE]) == "When was Norvik Labs built?"


SIGNED = ("Which countries signed the Arden Accord?", "France, Spain and Italy signed the Arden Accord in 2011.")


def test_it_is_not_a_list_answer_they_is():
    assert standalone("Who else signed it?", [SIGNED]) == "Who else signed Arden Accord?"
    assert standalone("What do they have in common?", [SIGNED]) == "What do France, Spain and Italy have in common?"


def test_they_after_how_many_is_the_things_counted():
    assert standalone("Who makes them?", [TURBINES]) == "Who makes the turbines?"
    two = ("How many wind turbines does Kestrel have?", "Kestrel has 48 wind turbines.")
    assert standalone("How tall are they?", [two]) == "How tall are the wind turbines?"
    assert standalone("Who operates it?", [TURBINES]) == "Who operates the Kestrel wind farm?"  # "it": the subject


def test_then_after_a_when_answer_is_its_date():
    assert standalone("Who was mayor then?", [FLOOD]) == "Who was mayor in 3 March 2019?"
    assert standalone("Who was mayor then?", [TURBINES]) == "Who was mayor then?"  # no date to stand for
    assert standalone("If it rains, then what?", []) == "If it rains, then what?"


def test_what_about_swaps_in_the_whole_noun_phrase_not_its_modifier():
    out = standalone("How about the Vellmar ferry terminal?", [BRIDGE])
    assert out == "When was the Vellmar ferry terminal built?", out


def test_he_with_no_person_before_is_not_replaced_by_a_thing():
    club = ("Who founded the Harbor Rowing Club?", NOT_IN_CORPUS)
    out = standalone("When was he born?", [club])
    assert out.startswith("When was he born?") and "Harbor Rowing Club" in out, out
    assert standalone("Where was he born?", [BRIDGE]) == "Where was he born? (Harbor Bridge)"
