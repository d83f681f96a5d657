"""The sentence a matching sentence continues (rag.lead), on a document written here."""

from __future__ import annotations

from types import SimpleNamespace

from rag.entities import tag
from rag.lead import bridge, context, lead
from rag.phrase import typed_phrase
from rag.question import analyse
from rag.types import Ranked

SENTENCES = [
    "The council met at the town hall in March 2019.",  # 0
    "At the meeting, Mayor Lind said:",  # 1
    "We will build a bridge over the river.",  # 2: a quotation the colon introduces
    "It will carry trams and bicycles.",  # 3
    "Traffic has grown in the old town.",  # 4
    "The mayor added in that same address that the bridge would be free.",  # 5: refers back
    "The ferry stopped running in 2015.",  # 6
    "The bridge will be painted red.",  # 7: a new paragraph that refers back to nothing
]
PARAGRAPHS = [[0, 1], [2, 3], [4, 5], [6], [7]]


def document():
    """A fake index: one document, its sentence rows (doc_id, start, end)."""
    text, rows = "", []
    for para in PARAGRAPHS:
        text += "\n\n" if text else ""
        for n, row in enumerate(para):
            text += " " if n else ""
            rows.append(("d", len(text), len(text) + len(SENTENCES[row])))
            text += SENTENCES[row]
    return SimpleNamespace(sentences=rows, documents={"d": SimpleNamespace(text=text)})


def test_a_quotation_continues_the_sentence_that_introduces_it():
    index = document()
    assert context(index, 3, SENTENCES[3]) == [2, 1, 0]
    found = lead(index, analyse("When did the mayor say the bridge would carry trams?"), 3, SENTENCES[3])
    assert found is not None and found[0] == 0 and found[3][found[1][0]:found[1][1]] == "March 2019"


def test_a_back_reference_reaches_over_one_paragraph_to_what_it_names():
    index = document()
    assert context(index, 5, SENTENCES[5])[:2] == [4, 3]
    found = lead(index, analyse("When did the mayor say the bridge would be free?"), 5, SENTENCES[5])
    assert found is not None and found[0] == 0  # over the quotation, to the sentence that introduced it


def test_a_sentence_that_refers_back_to_nothing_has_no_lead():
    index = document()
    assert context(index, 7, SENTENCES[7]) == []
    # the date in the paragraph before does not date the painting: the question stays unanswered
    assert lead(index, analyse("When will the bridge be painted red?"), 7, SENTENCES[7]) is None
    assert context(index, 4, SENTENCES[4]) == []  # a paragraph's first sentence after a quotation


def test_a_unit_about_the_subject_the_best_one_names_answers_for_it():
    said = ["People still talk about the Avon Plan.", "Since its launch in 2012, it has drawn visitors.",
            "The Avon Plan drew on a study of Dutch dikes."]
    text = " ".join(said)
    starts = [text.index(s) for s in said]
    index = SimpleNamespace(sentences=[("d", s, s + len(t)) for s, t in zip(starts, said)],
                            documents={"d": SimpleNamespace(text=text)})

    def ranked(question):
        q = analyse(question)
        typed = [typed_phrase(q, t, tag([t])[0]) for t in said]
        return q, [Ranked(2, 2, None, 0.8, None, typed[2], None, said[2], {}),
                   Ranked(1, 1, None, 0.5, None, typed[1], None, said[1], {})]

    q, scored = ranked("In what year was the scheme modelled on Dutch dikes launched?")
    found = bridge(index, q, scored)
    assert found is not None and found[0].text == said[1]  # the year of the launch of what the best one names
    q, scored = ranked("In what year was the Avon Plan launched?")  # the question names the subject itself
    assert bridge(index, q, scored) is None
    q, scored = ranked("In what year was the scheme modelled on Dutch dikes completed?")
    assert bridge(index, q, scored) is None  # no unit says anything of a completion


def test_a_back_reference_shares_a_date_but_not_who_did_it():
    index = document()
    # "that same address" dates what the mayor added; it does not make the mayor who did something else
    assert lead(index, analyse("Who added that the bridge would be free?"), 5, SENTENCES[5]) is None
    found = lead(index, analyse("When did the mayor add that the bridge would be free?"), 5, SENTENCES[5])
    assert found is not None and found[0] == 0
    # a quotation a colon introduces still takes its speaker from the sentence that introduces it
    found = lead(index, analyse("Who said the bridge would carry trams?"), 3, SENTENCES[3])
    assert found is not None and found[0] == 1


def test_a_unit_deep_in_a_long_quotation_walks_no_further_than_it_may_look_back():
    from rag.lead import MAX_BACK
    said = ["The mayor spoke in March 2019. She said:"] + [f"Point {n} is about the river." for n in range(40)]
    text = said[0] + "\n\n" + " ".join(said[1:])
    rows, at = [("d", 0, len(said[0]))], len(said[0]) + 2
    for s in said[1:]:
        rows.append(("d", at, at + len(s)))
        at += len(s) + 1
    index = SimpleNamespace(sentences=rows, documents={"d": SimpleNamespace(text=text)})
    assert context(index, 3, said[3]) == [2, 1, 0]  # near its start: back to the sentence introducing it
    assert context(index, MAX_BACK + 5, said[MAX_BACK + 5]) == []  # too far in to reach it: not walked whole
