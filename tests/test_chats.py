"""The conversation store: conversations, turns and feedback in one SQLite file, per user, safe
under concurrent writers, and one clear line when the file is damaged or locked."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from rag.chats import FILE_NAME, ChatStore
from rag.errors import RagError


def answer(question, text="It is so [1].", quote="It is so.", doc="a.txt"):
    return {"question": question, "standalone_question": question, "answer": text, "refused": False,
            "citations": [{"n": 1, "doc_id": doc, "title": "A", "start": 0, "end": len(quote), "quote": quote,
                           "score": 0.9, "support": 1.0, "page": None}],
            "short_answer": "", "passages": []}


def rate(store, conv, n, rating=1, **kw):
    return store.add_feedback(conv, n, rating, kw.pop("comment", ""), settings={"top_k": 5}, model="fake",
                              index_version="v-1 built now", **kw)


def test_conversations_turns_rename_delete(tmp_path):
    store = ChatStore(tmp_path / "data")
    first = store.create("What is  the\nfirst question?")
    second = store.create("Another one")
    assert store.append(first, answer("What is the first question?")) == 1
    assert store.append(first, answer("And then?")) == 2
    assert (tmp_path / "data" / FILE_NAME).is_file()
    listed = store.conversations()
    assert [c["id"] for c in listed] == [first, second]  # the one answered last is newest
    assert listed[0]["title"] == "What is the first question?" and listed[0]["turns"] == 2
    conv = store.get(first)
    assert [t["n"] for t in conv["turns"]] == [1, 2]
    assert conv["turns"][1]["answer"]["citations"][0]["quote"] == "It is so."
    store.rename(first, "Renamed")
    assert store.get(first)["title"] == "Renamed"
    store.delete(first)
    assert [c["id"] for c in store.conversations()] == [second]
    with pytest.raises(RagError, match=f"there is no conversation {first}; see `rag chats list`"):
        store.get(first)
    with sqlite3.connect(tmp_path / "data" / FILE_NAME) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 0  # its turns went with it


def test_each_user_sees_only_their_conversations(tmp_path):
    store = ChatStore(tmp_path)
    mine = store.create("mine", user="ann")
    theirs = store.create("theirs", user="bob")
    assert [c["id"] for c in store.conversations("ann")] == [mine]
    assert {c["id"] for c in store.conversations(None)} == {mine, theirs}
    with pytest.raises(RagError, match="there is no conversation"):
        store.append(theirs, answer("q"), user="ann")
    with pytest.raises(RagError, match="there is no conversation"):
        store.delete(theirs, user="ann")
    assert store.get(theirs, user="bob")["title"] == "theirs"


def test_feedback_keeps_what_reproduces_the_answer(tmp_path):
    store = ChatStore(tmp_path)
    conv = store.create("First?")
    store.append(conv, answer("First?", "One [1]."))
    n = store.append(conv, answer("Then?"))
    fid = rate(store, conv, n, -1, comment="  wrong quote ")
    (fb,) = store.feedback()
    assert fb["id"] == fid and fb["rating"] == -1 and fb["comment"] == "wrong quote"
    assert fb["history"] == [["First?", "One [1]."]]  # the earlier turns, as the answer was given with
    assert fb["question"] == "Then?" and fb["answer"]["citations"][0]["doc_id"] == "a.txt"
    assert fb["settings"] == {"top_k": 5} and fb["model"] == "fake" and fb["index_version"] == "v-1 built now"
    with pytest.raises(RagError, match="rating 0 is not"):
        rate(store, conv, n, 0)
    with pytest.raises(RagError, match="has no turn 9"):
        rate(store, conv, 9)


def test_twenty_threads_writing_at_once_lose_nothing(tmp_path):
    store = ChatStore(tmp_path)
    shared = store.create("shared")
    errors = []

    def work(i):
        try:
            own = ChatStore(tmp_path)  # a fresh handle per thread, as separate requests would have
            mine = own.create(f"thread {i}")
            for j in range(5):
                own.append(mine, answer(f"q{i}.{j}"))
                n = own.append(shared, answer(f"s{i}.{j}"))
                rate(own, shared, n, 1 if j % 2 else -1)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.get(shared)["turns"]) == 100
    assert [t["n"] for t in store.get(shared)["turns"]] == list(range(1, 101))  # no number taken twice
    assert len(store.conversations()) == 21
    assert sum(c["turns"] for c in store.conversations()) == 200
    assert len(store.feedback()) == 100


def test_a_corrupt_file_is_one_line(tmp_path):
    (tmp_path / FILE_NAME).write_bytes(b"this is not a database at all" * 100)
    store = ChatStore(tmp_path)
    with pytest.raises(RagError) as e:
        store.conversations()
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"chat history in {tmp_path / FILE_NAME} is unreadable (DatabaseError: file is not a")
    assert msg.endswith("the chat works without history; move the file away to start a new one")


def test_a_locked_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("rag.chats.BUSY_SECONDS", 0.1)
    store = ChatStore(tmp_path)
    conv = store.create("q")
    holder = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(RagError, match=r"is locked by another program \(OperationalError: database is locked\)"):
            store.append(conv, answer("q"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.append(conv, answer("q")) == 1  # and works again once the lock is gone


def test_an_unwritable_data_dir_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RagError, match="is unreadable .*move the file away"):
        ChatStore(tmp_path / "file" / "data").create("q")


def test_data_dir_is_a_setting(tmp_path):
    from rag.config import load_settings, tuning

    settings = load_settings(env={"RAG_DATA_DIR": str(tmp_path / "d")})
    assert ChatStore.for_settings(settings).path == tmp_path / "d" / FILE_NAME
    assert "data_dir" not in tuning(settings) and tuning(settings)["top_k"] == 5
