"""The app's per-chat choices, as plain functions (fast, fake embedder): the Filter box, which answer
the Explain panel explains, and which collection an upload goes into."""

from rag import collections as coll
from rag.pipeline import Rag
from rag.ui import respond
from rag.ui_collections import Chooser
from rag.ui_explain import EMPTY, choices, explain_turn
from rag.ui_upload import add_document


def _last(rag, question, turns=(), **kw):
    *_, (turns, answer) = respond(rag, question, list(turns), delay=0, **kw)
    return turns, answer


def test_the_filter_box_narrows_the_passages_before_the_cut(tiny_rag):
    q = "Where did tea originate, and what do honey bees collect?"
    _, free = _last(tiny_rag, q)
    assert {h.chunk.doc_id for h in free.hits} >= {"tea.txt", "bees.txt"}
    _, answer = _last(tiny_rag, q, filters="author=Test Author")
    assert answer.hits and {h.chunk.doc_id for h in answer.hits} == {"tea.txt"}
    _, answer = _last(tiny_rag, q, filters="type=txt;\n path=bees*  ")  # ';' and newlines both separate
    assert answer.hits and {h.chunk.doc_id for h in answer.hits} == {"bees.txt"}
    _, answer = _last(tiny_rag, q, filters=" ; \n")  # nothing but separators: no filter
    assert {h.chunk.doc_id for h in answer.hits} == {h.chunk.doc_id for h in free.hits}


def test_a_bad_filter_is_the_chats_one_line_error_and_the_history_stays(tiny_rag):
    turns, _ = _last(tiny_rag, "Where did tea originate?")
    turns, answer = _last(tiny_rag, "What do bees make?", turns, filters="autor=Test Author")
    assert answer is None and turns[0]["answer"] is not None  # the earlier answer is kept
    error = turns[-1]["error"]
    assert "unknown filter key 'autor'" in error and "\n" not in error
    turns, answer = _last(tiny_rag, "What do bees make?", turns, filters="date>=last year")
    assert answer is None and "is not a date" in turns[-1]["error"]


def test_explain_any_answer_of_the_chat_with_the_history_before_it(tiny_rag):
    turns, _ = _last(tiny_rag, "Where did tea originate?")
    turns, _ = _last(tiny_rag, "What do   honey bees\ncollect?", turns)
    turns = turns + [{"question": "broken", "error": "x"}]  # an error turn is not offered
    assert choices(turns) == [("1. Where did tea originate?", 0), ("2. What do honey bees collect?", 1)]
    assert "Explaining: <q>Where did tea originate?</q>" in explain_turn(tiny_rag, turns, 0)
    assert "Explaining: <q>Where did tea originate?</q>" in explain_turn(tiny_rag, turns, "0")
    for latest in (None, 1, 7, -1, "x"):  # none or out of range: the newest
        assert "Explaining: <q>What do honey bees" in explain_turn(tiny_rag, turns, latest)
    assert choices([]) == [] and explain_turn(tiny_rag, [], 0) == EMPTY


def test_an_upload_goes_into_the_chosen_collection_only(tmp_path, tiny_settings, fake_embedder):
    settings = tiny_settings.replace(collections_dir=tmp_path / "collections")
    rag = Rag(settings, embedder=fake_embedder)
    rag.build(log=lambda *_: None)
    geo = coll.create(settings, "geo")
    chooser = Chooser(rag)
    assert chooser.names == ["default", "geo"] and chooser.first(None) == "default"
    assert chooser.first(["geo"]) == "geo" and chooser.first(["geo", "default"]) == "default"
    assert chooser.pick(["default"]) is rag and chooser.pick(["geo"]) is chooser.scoped(["geo"])
    upload = tmp_path / "in" / "volcano.md"
    upload.parent.mkdir()
    upload.write_text("# Volcanoes\n\nVolcanoes erupt molten lava and ash.", encoding="utf-8")
    status = add_document(chooser.pick([chooser.first(["geo"])]), upload)
    assert "volcano.md" in status and (geo.corpus_dir / "volcano.md").is_file()
    assert not (settings.corpus_dir / "volcano.md").exists()
    assert "volcano.md" in chooser.pick(["geo"]).index.documents and "volcano.md" not in rag.index.documents
    hits = chooser.pick(["geo"]).search("What do volcanoes erupt?")
    assert hits and hits[0].chunk.doc_id == "volcano.md"


def test_explain_an_answer_over_the_chats_collections(tmp_path, tiny_settings, fake_embedder):
    settings = tiny_settings.replace(collections_dir=tmp_path / "collections")
    rag = Rag(settings, embedder=fake_embedder)
    rag.build(log=lambda *_: None)
    geo = coll.create(settings, "geo")
    (geo.corpus_dir / "volcano.md").write_text("# Volcanoes\n\nVolcanoes erupt molten lava and ash.", encoding="utf-8")
    Rag(coll.settings_for(settings, "geo"), embedder=fake_embedder).build(log=lambda *_: None)
    both = Chooser(rag).pick(["default", "geo"])
    turns, answer = _last(both, "What do volcanoes erupt?")
    assert answer is not None and answer.citations[0].collection == "geo"
    html = explain_turn(both, turns, 0)
    assert "Explaining: <q>What do volcanoes erupt?</q>" in html and "volcano.md" in html
    assert "volcano.md" not in explain_turn(rag, turns, 0)  # the served collection alone has no volcanoes
