"""The Conversations tab, the Eval panel's feedback and the Corpus tab through their plain functions
(fake embedder, tiny corpus): reopening with stale citations, listing, export files, deleting and
replacing documents, safe Markdown, and a damaged or locked history file."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from rag.chat_export import reopen
from rag.chats import FILE_NAME, ChatStore
from rag.errors import RagError
from rag.ui_chats import new_conversation
from rag.ui_corpus import markdown_html, render_documents, render_view
from rag.ui_history import (answer_from_dict, export_files, feedback_html, latest_view, render_conversations,
                            reopened)
from rag.ui_render import render_chat, render_sources
from rag.ui_upload import add_document, delete_document, taken
from test_ui_chats import ask  # what on_ask does: stream the answer, then store the turn

BEES = "Who lays eggs in a bee colony?"
TEA = "Where did tea originate?"


def test_a_reopened_conversation_has_its_answers_and_marks_a_changed_quote_stale(tiny_rag, tmp_path):
    store = ChatStore(tmp_path / "data")
    turns, conv, _ = ask(tiny_rag, store, BEES, [], new_conversation())
    turns, conv, _ = ask(tiny_rag, store, TEA, turns, conv)
    stored = store.get(conv["id"])
    docs = tiny_rag.index.documents
    back = reopened(reopen(stored, docs), docs)
    assert [t["question"] for t in back] == [BEES, TEA]
    for old, new in zip(turns, back):  # the same answers, citations and sources as when they were given
        assert new["answer"].text == old["answer"].text and new["answer"].citations == old["answer"].citations
        assert render_sources(new["answer"], docs) == render_sources(old["answer"], docs)
    assert render_chat(back) == render_chat(turns)
    assert "Tea originated in southwest China" in latest_view(docs, back[-1]["answer"])  # the viewer follows it

    # the tea document changes: its quote is no longer at the cited place
    (Path(tiny_rag.settings.corpus_dir) / "tea.txt").write_text(
        "---\ntitle: A Short History of Tea\n---\nSome say tea came from elsewhere. Tea originated in southwest China.")
    tiny_rag.build(log=lambda *_: None)
    docs = tiny_rag.index.documents
    stale = reopened(reopen(store.get(conv["id"]), docs), docs)[-1]["answer"]
    cited = turns[-1]["answer"].citations[0]
    said = ", ".join(f"[{c.n}]" for c in turns[-1]["answer"].citations)  # every citation it had is stale
    assert stale.citations == () and stale.notice.startswith(f"\u26a0 stale: {said} no longer match")
    assert cited.n == 1 and stale.text == turns[-1]["answer"].text
    html = render_chat([{"question": TEA, "answer": stale}])
    assert 'class="cite"' not in html and f"[{cited.n}]" in html and "stale" in html  # never a valid link
    assert "Sources (" not in render_sources(stale, docs)  # no citation card for it, only retrieved passages
    assert "Click a citation" in latest_view(docs, stale)


def test_conversation_list_export_and_feedback_panel(tiny_rag, tmp_path):
    store = ChatStore(tmp_path / "data")
    turns, conv, _ = ask(tiny_rag, store, "<script>alert(1)</script> " + BEES, [], new_conversation())
    html = render_conversations(store.conversations(), selected=conv["id"])
    assert "&lt;script&gt;" in html and "<script>" not in html and f'data-id="{conv["id"]}"' in html
    assert 'class="selected"' in html
    assert "No conversations yet" in render_conversations([])

    md, js = export_files(reopen(store.get(conv["id"]), tiny_rag.index.documents), tmp_path / "out")
    first = turns[0]["answer"].citations[0]  # the footnote quotes the first cited span
    assert Path(md).name == f"conversation-{conv['id']}.md" and f"[^1]: \u201c{first.quote}" in Path(md).read_text()
    assert ", 1 turn_" in Path(md).read_text()
    (only,) = json.loads(Path(js).read_text())
    assert only["citations"][0]["stale"] is False and only["answer"] == turns[0]["answer"].text

    assert "\U0001f44d 0 \u00b7 \U0001f44e 0" in feedback_html(store) and "No \U0001f44e yet" in feedback_html(store)
    store.add_feedback(conv["id"], 1, -1, "wrong bee", settings={}, model="fake", index_version="v")
    store.add_feedback(conv["id"], 1, 1, "", settings={}, model="fake", index_version="v")
    panel = feedback_html(store)
    assert "\U0001f44d 1 \u00b7 \U0001f44e 1" in panel and "wrong bee" in panel
    assert f'class="reopen" href="#" role="button" data-id="{conv["id"]}"' in panel
    store.delete(conv["id"])
    assert f"conversation {conv['id']} was deleted" in feedback_html(store)  # feedback stays, no dead link


def test_a_damaged_or_locked_history_is_one_line_and_the_chat_goes_on(tiny_rag, tmp_path, monkeypatch):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / FILE_NAME).write_bytes(b"not a database " * 100)
    broken = ChatStore(tmp_path / "bad")
    for html in (feedback_html(broken), render_conversations(None, error=_error(broken.conversations))):
        assert html.count("\u26a0") == 1 and "is unreadable" in html and "works without history" in html

    monkeypatch.setattr("rag.chats.BUSY_SECONDS", 0.1)
    store = ChatStore(tmp_path / "ok")
    turns, conv, _ = ask(tiny_rag, store, BEES, [], new_conversation())
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert "\U0001f44e 0" in feedback_html(store)  # WAL: reading goes on while another program writes
        turns, conv, notice = ask(tiny_rag, store, TEA, turns, conv)
        assert turns[-1]["answer"].citations and "locked by another program" in notice and "\n" not in notice
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [t["n"] for t in store.get(conv["id"])["turns"]] == [1]  # nothing stored earlier was lost


def _error(call) -> str:
    try:
        call()
    except RagError as e:
        return str(e)
    return ""


def test_deleting_a_document_takes_it_out_of_search_at_once(tiny_rag):
    corpus = Path(tiny_rag.settings.corpus_dir)
    assert "Honey bees" in tiny_rag.ask(BEES).text
    status = delete_document(tiny_rag, "bees.txt")
    assert re.match(r"Deleted bees.txt: 1 chunk left the index in \d+\.\ds", status), status
    assert not (corpus / "bees.txt").exists()
    assert "bees.txt" not in tiny_rag.index.documents
    assert all(h.chunk.doc_id != "bees.txt" for h in tiny_rag.search(BEES))
    with pytest.raises(RagError, match="'bees.txt' is not in the index"):
        delete_document(tiny_rag, "bees.txt")
    with pytest.raises(RagError, match="is not in the index"):
        delete_document(tiny_rag, "../../etc/passwd")
    assert sorted(p.name for p in corpus.iterdir()) == ["rome.html", "solar.md", "tea.txt"]


def test_an_upload_under_a_taken_name_is_only_replaced_when_asked(tiny_rag, tmp_path):
    src = tmp_path / "up" / "tea.txt"
    src.parent.mkdir()
    src.write_text("Tea was first grown in Yunnan, says this newer note about tea.")
    assert taken(tiny_rag, src) == "tea.txt"
    corpus = Path(tiny_rag.settings.corpus_dir)
    assert add_document(tiny_rag, src).startswith("Added tea (2).txt (tea.txt already holds a different document)")
    assert add_document(tiny_rag, src, replace=True).startswith("Replaced tea.txt: 1 chunk indexed")
    assert (corpus / "tea.txt").read_text() == src.read_text() and taken(tiny_rag, src) == ""
    assert "Yunnan" in tiny_rag.index.documents["tea.txt"].text


def test_the_corpus_table_and_viewer_keep_documents_inert(tiny_rag):
    html = render_documents(tiny_rag.index.manifest, tiny_rag.settings.corpus_dir)
    assert "4 documents" in html and '<th class="num">Size</th>' in html
    row = re.search(r'<tr><td><a class="doc-open"[^>]*data-doc="solar.md".*?</tr>', html).group()
    assert "Solar power" in row and "<td>MD</td>" in row and " B</td>" in row and "UTC" in row
    assert 'class="doc-delete"' in row
    view = render_view(tiny_rag.index.documents["solar.md"])
    assert "<h1>Solar power</h1>" in view and "# Solar" not in view
    hostile = markdown_html("# Hi\n\n<script>alert(1)</script> <img src=x onerror=alert(1)>\n\n"
                            "[a](javascript:alert(1)) ![p](http://example.com/p.png) [ok](https://example.com)")
    assert "<script" not in hostile and "<img" not in hostile and "javascript:" not in hostile.replace(
        "[a](javascript:alert(1))", "")
    assert '<a href="https://example.com" target="_blank" rel="noopener noreferrer nofollow">ok</a>' in hostile
    assert "<script" not in render_view(tiny_rag.index.documents["rome.html"])
