"""The app's Explain panel: the `rag ask --explain` trace as escaped HTML (fast, fake embedder)."""

from rag.explain import explain
from rag.ui import respond
from rag.ui_explain import EMPTY, explain_latest, render_explain


def _answered(rag, question, turns=()):
    *_, (turns, answer) = respond(rag, question, list(turns), delay=0)
    assert answer is not None, turns[-1]
    return turns


def test_the_panel_shows_the_same_trace_as_the_cli(tiny_rag):
    turns = _answered(tiny_rag, "Where did tea originate?")
    html = explain_latest(tiny_rag, turns)
    ex = explain(tiny_rag, "Where did tea originate?")
    assert f"Diagnose at</span> <strong>{ex['diagnose_at']}</strong>" in html
    for stage, verdict in ex["verdicts"].items():
        assert f"<td>{stage}</td><td>{verdict}</td>" in html
    assert "bm25 ranking" in html and "dense ranking" in html and "Best sentences" in html
    assert ex["reader"]["units"] and ex["reader"]["units"][0]["text"][:40] in html


def test_it_explains_the_newest_answer_with_its_history(tiny_rag):
    turns = _answered(tiny_rag, "Where did tea originate?")
    turns = _answered(tiny_rag, "Which plant do green and black tea come from?", turns)
    html = explain_latest(tiny_rag, turns)
    assert "Explaining: <q>Which plant do green and black tea come from?</q>" in html
    assert explain_latest(tiny_rag, []) == EMPTY and explain_latest(tiny_rag, None) == EMPTY


def test_document_text_in_the_trace_is_escaped(tiny_rag):
    ex = explain(tiny_rag, "Where did tea originate?")
    ex["reader"]["units"][0]["text"] = '<img src=x onerror="alert(1)">'
    ex["retrieval"]["rankings"]["bm25"][0]["doc_id"] = "<script>x</script>.md"
    ex["question"]["asked"] = "</q><b>bold</b>"
    html = render_explain(ex)
    assert "<img" not in html and "<script>" not in html and "<b>bold" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html and "&lt;script&gt;x&lt;/script&gt;.md" in html
