"""Stored conversations reopened against changed documents (stale citations), exported as
Markdown and JSON, and the `rag chats` commands; tiny corpus, fake embedder."""

from __future__ import annotations

import json

import pytest

from rag.chat_export import STALE_NOTE, mark_stale, reopen, to_json, to_markdown
from rag.chats import ChatStore
from rag.cli import main

TEA = "Where did tea originate?"
BEES = "Who lays eggs in a bee colony?"


def flags(settings, tmp_path):
    return ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir),
            "--data-dir", str(tmp_path / "data"), "--refusal-threshold", "0.2"]


@pytest.fixture
def stored(tmp_path, tiny_rag):
    """(store, conversation id, the two answers) for a two-turn conversation over the tiny corpus."""
    store = ChatStore(tmp_path / "data")
    tea = tiny_rag.ask(TEA)
    bees = tiny_rag.ask(BEES, [(tea.question, tea.text)])
    conv = store.create(TEA)
    store.append(conv, tea.to_dict())
    store.append(conv, bees.to_dict())
    return store, conv, (tea, bees)


def test_reopened_citations_are_valid_until_the_document_changes(stored, tiny_rag, tiny_corpus):
    store, conv, (tea, bees) = stored
    assert tea.citations and bees.citations
    fresh = reopen(store.get(conv), tiny_rag.index.documents)
    assert [c["stale"] for t in fresh["turns"] for c in t["answer"]["citations"]] == [False] * (
        len(tea.citations) + len(bees.citations))
    # the bee text moves by a few characters: the tea quotes still match, the bee quote does not
    path = tiny_corpus / "bees.txt"
    path.write_text("Preface. " + path.read_text(encoding="utf-8"), encoding="utf-8")
    tiny_rag.build(log=lambda *_: None)
    later = reopen(store.get(conv), tiny_rag.index.documents)
    tea_cites, bee_cites = (t["answer"]["citations"] for t in later["turns"])
    assert [c["stale"] for c in tea_cites] == [False] * len(tea.citations)
    assert [c["stale"] for c in bee_cites] == [True] * len(bees.citations)
    # a document that is gone makes its citations stale too; a damaged record is never valid
    assert mark_stale(tea.to_dict(), {})["citations"][0]["stale"] is True
    broken = dict(tea.to_dict(), citations=[dict(tea.citations[0].to_dict(), start="x")])
    assert mark_stale(broken, tiny_rag.index.documents)["citations"][0]["stale"] is True


def test_markdown_export_has_numbered_footnotes_with_the_spans(stored, tiny_rag, tiny_corpus):
    store, conv, (tea, bees) = stored
    md = to_markdown(reopen(store.get(conv), tiny_rag.index.documents))
    assert md.startswith(f"# {TEA}\n")
    assert f"## 1. {TEA}" in md and f"## 2. {BEES}" in md
    c = tea.citations[0]
    assert f"[^1]: \u201c{c.quote}\u201d \u2014 {c.title}, tea.txt chars {c.start}\u2013{c.end}" in md
    # the bees answer's [1] is the conversation's footnote after the tea ones
    after = len(tea.citations) + 1
    second = md.split(f"## 2. {BEES}")[1]
    assert f"**Answer:** {bees.short_answer}\n\n{bees.text.replace('[1]', f'[^{after}]')}\n" in second
    assert "[1]" not in md  # every marker became a footnote reference
    assert STALE_NOTE not in md
    (tiny_corpus / "tea.txt").write_text("---\ntitle: A Short History of Tea\n---\nTea came from elsewhere.",
                                         encoding="utf-8")
    tiny_rag.build(log=lambda *_: None)
    md = to_markdown(reopen(store.get(conv), tiny_rag.index.documents))
    assert f"[^1]: \u26a0 {STALE_NOTE}: \u201c{c.quote}\u201d" in md


def test_json_export_is_the_answers_of_each_turn(stored, tiny_rag):
    store, conv, (tea, bees) = stored
    data = json.loads(to_json(reopen(store.get(conv), tiny_rag.index.documents)))
    assert [d["question"] for d in data] == [TEA, BEES]
    for got, ans in zip(data, (tea, bees)):
        want = ans.to_dict()
        assert {k: v for k, v in got.items() if k != "citations"} == {k: v for k, v in want.items()
                                                                        if k != "citations"}
        assert [dict(c, stale=False) for c in want["citations"]] == got["citations"]


def test_rag_chats_list_show_export(stored, tiny_settings, tmp_path, capsys):
    store, conv, (tea, bees) = stored
    other = store.create("Nothing asked yet")
    assert main(["chats", "list", *flags(tiny_settings, tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == str(other) and lines[1].split()[0] == str(conv)
    assert "2 turns" in lines[1] and TEA in lines[1]
    assert main(["chats", "show", str(conv), *flags(tiny_settings, tmp_path)]) == 0
    assert capsys.readouterr().out == to_markdown(reopen(store.get(conv), tiny_docs(tiny_settings)))
    out = tmp_path / "c.json"
    assert main(["chats", "export", str(conv), "--format", "json", "--out", str(out),
                 *flags(tiny_settings, tmp_path)]) == 0
    assert capsys.readouterr().out == f"conversation {conv} written to {out} (json)\n"
    assert [d["answer"] for d in json.loads(out.read_text(encoding="utf-8"))] == [tea.text, bees.text]
    assert main(["chats", "export", str(conv), *flags(tiny_settings, tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(f"# {TEA}\n")
    assert main(["chats", "show", "999", *flags(tiny_settings, tmp_path)]) == 1
    assert capsys.readouterr().err == "error: there is no conversation 999; see `rag chats list`\n"
    assert main(["chats", "show", "abc", *flags(tiny_settings, tmp_path)]) == 1
    assert "is not a number" in capsys.readouterr().err


def test_without_an_index_every_citation_is_stale(stored, tiny_settings, tmp_path, capsys):
    store, conv, (tea, _) = stored
    assert main(["chats", "show", str(conv), *flags(tiny_settings, tmp_path)[:2], "--index-dir",
                 str(tmp_path / "none"), *flags(tiny_settings, tmp_path)[4:]]) == 0
    captured = capsys.readouterr()
    assert "no index in" in captured.err and "marked stale" in captured.err
    assert captured.out.count(STALE_NOTE) == len(store.get(conv)["turns"][0]["answer"]["citations"]) + len(
        store.get(conv)["turns"][1]["answer"]["citations"])


def tiny_docs(settings):
    from rag.store import open_index

    return open_index(settings).documents
