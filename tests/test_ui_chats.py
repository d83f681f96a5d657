"""The chat app's memory through its handler functions (no browser): each answered turn stored in
the session's conversation, 👍/👎 on the latest answer, and a chat that works without the store."""

from __future__ import annotations

from rag.chats import FILE_NAME, ChatStore
from rag.cli import main
from rag.feedback import read_jsonl
from rag.ui import respond
from rag.ui_chats import give_feedback, new_conversation, record_turn

BEES = "Who lays eggs in a bee colony?"
WORKERS = "What do they collect?"


def ask(rag, store, question, turns, conv):
    """What on_ask does: stream the answer, then store the finished turn."""
    for turns, answer in respond(rag, question, turns, delay=0):
        pass
    conv, notice = record_turn(store, conv, answer)
    return turns, conv, notice


def test_turns_are_stored_and_thumbs_down_becomes_a_needs_review_candidate(tmp_path, tiny_rag, capsys):
    store = ChatStore(tmp_path / "data")
    conv = new_conversation()
    status, conv = give_feedback(tiny_rag, store, conv, [], -1)
    assert "ask a question first" in status and store.feedback() == []
    turns, conv, notice = ask(tiny_rag, store, BEES, [], conv)
    assert notice == "" and conv["n"] == 1
    turns, conv, _ = ask(tiny_rag, store, WORKERS, turns, conv)
    assert conv["n"] == 2
    (stored,) = store.conversations()
    assert stored["id"] == conv["id"] and stored["title"] == BEES and stored["turns"] == 2
    assert [t["question"] for t in store.get(conv["id"])["turns"]] == [BEES, WORKERS]

    status, conv = give_feedback(tiny_rag, store, conv, turns, -1, "it should say nectar first")
    assert "\U0001f44e recorded" in status and 'class="ok-text"' in status
    (fb,) = store.feedback()
    assert fb["turn"] == 2 and fb["rating"] == -1 and fb["comment"] == "it should say nectar first"
    assert fb["history"] == [[BEES, turns[0]["answer"].text]]
    assert fb["index_version"].startswith("v-") and fb["settings"]["top_k"] == tiny_rag.settings.top_k

    candidates = tmp_path / "candidates.jsonl"
    s = tiny_rag.settings
    assert main(["feedback", "to-gold", "--candidates", str(candidates), "--corpus-dir", str(s.corpus_dir),
                 "--index-dir", str(s.index_dir), "--data-dir", str(tmp_path / "data")]) == 0
    assert "1 new candidates" in capsys.readouterr().out
    (c,) = read_jsonl(candidates)
    assert c["needs_review"] is True and c["question"] == WORKERS and c["history"] == fb["history"]
    assert c["given_answer"] == turns[1]["answer"].text and c["passages"]


def test_an_error_turn_cannot_be_rated(tmp_path, tiny_rag):
    store = ChatStore(tmp_path)
    turns, conv, _ = ask(tiny_rag, store, BEES, [], new_conversation())
    turns, conv, notice = ask(tiny_rag, store, "???", turns, conv)
    assert "error" in turns[-1] and conv["n"] is None and notice == ""
    status, _ = give_feedback(tiny_rag, store, conv, turns, 1)
    assert "ask a question first" in status and store.feedback() == []


def test_without_a_usable_store_the_chat_goes_on_and_says_why_once(tmp_path, tiny_rag):
    (tmp_path / FILE_NAME).write_bytes(b"garbage, not SQLite" * 50)
    store = ChatStore(tmp_path)
    turns, conv, notice = ask(tiny_rag, store, BEES, [], new_conversation())
    assert turns[-1]["answer"].citations  # answered all the same
    assert notice.startswith(f"chat history in {tmp_path / FILE_NAME} is unreadable") and "\n" not in notice
    turns, conv, again = ask(tiny_rag, store, WORKERS, turns, conv)
    assert again == "" and turns[-1]["answer"].citations  # said once; the session goes on without history
    status, _ = give_feedback(tiny_rag, store, conv, turns, 1)
    assert status.startswith('<div class="error-text">\u26a0 feedback not saved: chat history in')
