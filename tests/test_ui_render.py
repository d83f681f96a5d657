"""Fast checks of the chat app's HTML, sanitising, upload names, host checks and handlers (fake embedder)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.types import Answer, Chunk, Citation, Document, Hit
from rag.ui_eval import latest_report, render_eval
from rag.ui_render import (answer_body, render_chat, render_corpus, render_document,
                           render_sources, safe_upload_name)

EVIL = '<img src=x onerror="alert(1)">'
DOC = Document("evil.html", f"Title {EVIL}", f"Intro text. The quoted span {EVIL} is here. Outro text.")


def cite(n=1, doc=DOC, quote="The quoted span"):
    start = doc.text.index(quote)
    return Citation(n=n, doc_id=doc.id, title=doc.title, start=start, end=start + len(quote), quote=quote, score=0.5)


def test_markers_become_links_and_text_is_escaped():
    a = Answer("q", f"Claim {EVIL} [1] and [7].", (cite(),))
    html = answer_body(a)
    assert "<img" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert html.count('class="cite"') == 1  # [7] has no citation, so it stays plain text
    assert f'data-doc="evil.html" data-start="{DOC.text.index("The quoted")}"' in html and "[7]" in html


def test_flagged_sentences_are_marked():
    a = Answer("q", "Supported claim. [1] The model made this up.", (cite(),),
               flagged=("The model made this up.", "A sentence not in the text."))
    html = answer_body(a)
    assert '<span class="flagged" title="Not verified against the sources">' in html
    assert html.index("flagged") < html.index("The model made this up.")
    assert "<li>A sentence not in the text.</li>" in html  # unmatched ones are listed under the answer
    assert "flagged" not in answer_body(Answer("q", "Supported claim. [1]", (cite(),)))


def test_chat_states():
    assert "Ask a question" in render_chat([])
    refused = Answer("q", "The corpus does not contain an answer to this question.", (), refused=True)
    html = render_chat([{"question": EVIL, "answer": refused}, {"question": "", "error": f"bad {EVIL}"},
                        {"question": "next?", "partial": "Half an ans"}])
    assert "Not in the corpus" in html and 'class="msg bot error"' in html and "Half an ans" in html
    assert "<img" not in html


def test_sources_highlight_the_quote_in_context_and_closest_passages_when_refused():
    c = cite()
    html = render_sources(Answer("q", "x [1]", (c,)), {DOC.id: DOC})
    assert 'Intro text. <mark class="span">The quoted span</mark> &lt;img' in html
    assert "score 0.500" in html and "Title &lt;img" in html and "<img" not in html
    stale = render_sources(Answer("q", "x [1]", (c,)), {})  # document gone from the index
    assert '<mark class="span">The quoted span</mark>' in stale
    hit = Hit(Chunk(DOC.id, 0, 11, "Intro text.", DOC.title), 0.25, 1)
    closest = render_sources(Answer("q", "no", (), hits=(hit,), refused=True), {DOC.id: DOC})
    assert "Closest passages" in closest and "Intro text." in closest and "open in document" in closest


def test_document_view_highlights_the_span_and_windows_long_texts():
    c = cite()
    html = render_document(DOC, c.start, c.end)
    assert '<mark class="span" id="focus">The quoted span</mark>' in html and "<img" not in html
    long = Document("long.txt", "Long", "a " * 200_000 + "NEEDLE" + " b" * 200_000)
    s = long.text.index("NEEDLE")
    html = render_document(long, s, s + 6, limit=1000)
    assert '<mark class="span" id="focus">NEEDLE</mark>' in html and "Showing characters" in html
    assert len(html) < 3000


@pytest.mark.parametrize("raw,clean", [
    ("notes.md", "notes.md"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\report.PDF", "report.pdf"),
    ("/abs/path/Page.HTM", "Page.htm"),
    ("we<i>rd;name$.html", "we_i_rd;name$.html"),  # only reserved characters are replaced
])
def test_upload_names_are_sanitised(raw, clean):
    assert safe_upload_name(raw) == clean


@pytest.mark.parametrize("raw", [".hidden.txt", "../.env.md", "....txt", "run.exe", "archive.tar.gz", "noext", "",
                                 "dir/"])
def test_bad_upload_names_are_refused(raw):
    with pytest.raises(RagError, match="cannot add"):
        safe_upload_name(raw)


def test_corpus_panel():
    html = render_corpus({"built_at": "2026-11-28T13:31:00Z", "documents": [
        {"id": "a.txt", "title": EVIL, "chunks": 3, "indexed_at": "20261128T132442"},
        {"id": "b.md", "title": "B", "chunks": 1, "indexed_at": "20261127T010203"}]})
    assert "2 documents, 4 chunks" in html and "last indexed 2026-11-28 13:31:00 UTC" in html
    assert "2026-11-28 13:24:42 UTC" in html and "<img" not in html
    assert "run `rag index` first" in render_corpus(None, "no index in index/; run `rag index` first")


def test_eval_panel_shows_the_newest_report(tmp_path):
    assert "No eval report yet" in render_eval(latest_report(tmp_path / "missing"))
    old, new = tmp_path / "r1", tmp_path / "sub" / "r2"
    for d, value in ((old, 0.1), (new, 0.9)):
        d.mkdir(parents=True)
        (d / "report.json").write_text(f'{{"metrics": {{"retrieval": {{"recall@5": {value}}}, "n": 40}}}}')
        (d / "report.md").write_text(f"# report {value}")
        (d / "plot.png").write_bytes(b"\x89PNG fake")
    os.utime(old / "report.json", (1_000_000, 1_000_000))
    html = render_eval(latest_report(tmp_path))
    assert "retrieval.recall@5" in html and "0.9000" in html and "0.1000" not in html
    assert 'src="data:image/png;base64,' in html and "<h1>report 0.9</h1>" in html  # Markdown rendered


# ---------------------------------------------------------------- serve guards


@pytest.mark.parametrize("host,expose,ok", [("127.0.0.1", False, True), ("localhost", False, True),
                                            ("::1", False, True), ("0.0.0.0", False, False),
                                            ("192.168.1.5", False, False), ("example.com", False, False),
                                            ("0.0.0.0", True, True)])
def test_non_loopback_host_needs_expose(host, expose, ok):
    from rag.ui import check_host

    if ok:
        check_host(host, expose)
    else:
        with pytest.raises(RagError, match="--expose"):
            check_host(host, expose)


def test_cli_refuses_non_loopback_in_one_line_without_starting_anything(capsys):
    from rag.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--index-dir", "/nonexistent"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--expose" in err and "0.0.0.0" in err


def test_auth_needs_both_halves():
    from rag.config import Settings
    from rag.ui import auth_pair

    assert auth_pair(Settings()) is None
    assert auth_pair(Settings(auth_user="ann", auth_password="pw")) == ("ann", "pw")
    with pytest.raises(RagError, match="RAG_AUTH_PASSWORD"):
        auth_pair(Settings(auth_user="ann"))


def test_importing_the_ui_loads_no_gradio():
    code = "import sys, rag.ui, rag.ui_render; print('gradio' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------- handlers, on the tiny corpus


def test_respond_streams_then_answers(tiny_rag):
    from rag.ui import respond

    steps = list(respond(tiny_rag, "Who lays eggs in a bee colony?", [], 3, "hybrid", "extractive", delay=0))
    partials = [t[-1]["partial"] for t, a in steps if a is None]
    turns, answer = steps[-1]
    assert len(partials) >= 3 and partials == sorted(partials, key=len)  # the text grows step by step
    assert "queen" in answer.text and turns[-1]["answer"] is answer


def test_respond_passes_the_conversation_and_shows_errors(tiny_rag):
    from rag.ui import respond

    *_, (turns, first) = respond(tiny_rag, "Who lays eggs in a bee colony?", [], delay=0)
    *_, (turns2, second) = respond(tiny_rag, "What do they collect?", turns, delay=0)
    # "they" is resolved from the previous turn, not answered as a bare pronoun
    assert "they" not in second.standalone_question and "bee" in second.standalone_question.lower()
    assert "nectar" in second.text and len(turns2) == 2
    *_, (turns3, none) = respond(tiny_rag, "  ", turns2, delay=0)
    assert none is None and turns3[-1]["error"] == "the question is empty; type a question"
    *_, (turns4, none) = respond(tiny_rag, "bees?", turns2, backend="llm", delay=0)
    assert none is None and "RAG_LLM_BASE_URL" in turns4[-1]["error"]


def test_document_view_only_opens_indexed_documents(tiny_rag):
    from rag.ui import open_document

    assert 'id="focus">Honey bees</mark>' in open_document(tiny_rag, "bees.txt", 0, 10)
    for bad in ("../../etc/passwd", "/etc/passwd", None, "bees"):
        html = open_document(tiny_rag, bad, 0, 10)
        assert "is not in the index" in html and "root:" not in html
    assert "no valid position" in open_document(tiny_rag, "bees.txt", "x", None)


def test_upload_copies_a_safe_name_and_reindexes(tiny_rag, tmp_path):
    from rag.ui import add_document, corpus_html

    src = tmp_path / "upload" / "Volcanoes.md"
    src.parent.mkdir()
    src.write_text("# Volcanoes\n\nMount Etna is an active volcano on Sicily that erupts often.")
    status = add_document(tiny_rag, src, name="../../sneaky/Volcanoes.md")
    corpus = Path(tiny_rag.settings.corpus_dir)
    assert (corpus / "Volcanoes.md").exists() and not (corpus.parent / "sneaky").exists()
    assert status.startswith("Added Volcanoes.md: 1 chunk indexed")
    assert "Volcanoes.md" in corpus_html(tiny_rag)
    assert "Etna" in tiny_rag.ask("Which volcano on Sicily erupts often?").text  # askable at once
    assert not [p for p in corpus.iterdir() if p.name.startswith(".upload-")]


def test_upload_refuses_bad_files_without_touching_the_corpus(tiny_rag, tmp_path):
    from rag.pipeline import Rag
    from rag.ui import add_document

    corpus = Path(tiny_rag.settings.corpus_dir)
    before = sorted(p.name for p in corpus.iterdir())
    empty = tmp_path / "empty.txt"
    empty.write_text("   ")
    with pytest.raises(RagError, match="cannot add empty.txt: file is empty"):
        add_document(tiny_rag, empty)
    big = tmp_path / "big.txt"
    big.write_text("word " * 300_000)
    small_limit = Rag(tiny_rag.settings.replace(upload_max_mb=1), embedder=tiny_rag.embedder)
    with pytest.raises(RagError, match="over the 1 MB upload limit"):
        add_document(small_limit, big)
    with pytest.raises(RagError, match="not supported"):
        add_document(tiny_rag, empty, name="evil.sh")
    assert sorted(p.name for p in corpus.iterdir()) == before


def test_reveal_builds_long_pieces_word_by_word_and_passes_tokens_through():
    from rag.ui import reveal

    text = " ".join(f"w{i}" for i in range(100)) + " [1]"
    steps = list(reveal("Earlier. ", text))
    assert 5 <= len(steps) <= 21 and steps[-1] == "Earlier. " + text
    assert all(b.startswith(a) for a, b in zip(steps, steps[1:]))  # each step extends the last
    assert list(reveal("Hi", " there")) == ["Hi there"]
