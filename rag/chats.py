"""Conversations and feedback that outlast a session: one SQLite file (WAL) under the data dir.

    data/chats.sqlite3
      conversations (id, user, title = first question, created, updated)
      turns         (conversation, n, question, standalone, answer = Answer.to_dict() JSON, created)
      feedback      (id, conversation, turn, rating +1/-1, comment, and what reproduces the answer:
                     question, standalone, history, answer dict, settings, model, index version)

Every call opens its own connection and holds the write lock for one short transaction, so any
number of threads can write at once (SQLite queues them, up to BUSY_SECONDS). A file that is
corrupt, locked or unwritable is one RagError line; callers carry on without history.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .errors import RagError, why

FILE_NAME = "chats.sqlite3"
BUSY_SECONDS = 10.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL DEFAULT '', title TEXT NOT NULL,
    created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_user ON conversations (user, updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE, n INTEGER NOT NULL,
    question TEXT NOT NULL, standalone TEXT NOT NULL, answer TEXT NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (conversation, n));
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, conversation INTEGER NOT NULL, turn INTEGER NOT NULL,
    user TEXT NOT NULL DEFAULT '', rating INTEGER NOT NULL CHECK (rating IN (1, -1)), comment TEXT NOT NULL,
    question TEXT NOT NULL, standalone TEXT NOT NULL, history TEXT NOT NULL, answer TEXT NOT NULL,
    settings TEXT NOT NULL, model TEXT NOT NULL, index_version TEXT NOT NULL, created TEXT NOT NULL);
"""


def now() -> str:
    """UTC to the microsecond, so "newest first" holds within a second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ChatStore:
    """Conversations, turns and feedback in `<data_dir>/chats.sqlite3`, kept apart per user
    ("" when no login is set)."""

    def __init__(self, data_dir: Path | str):
        self.path = Path(data_dir) / FILE_NAME
        self._ready = False

    @classmethod
    def for_settings(cls, settings) -> "ChatStore":
        return cls(settings.data_dir)

    # ---- plumbing

    def _fail(self, e: Exception) -> RagError:
        if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
            return RagError(f"chat history in {self.path} is locked by another program ({why(e)}); the chat works "
                            "without history; close the other program or try again")
        return RagError(f"chat history in {self.path} is unreadable ({why(e)}); the chat works without history; "
                        "move the file away to start a new one")

    @contextmanager
    def _tx(self, write: bool = False):
        """One connection and one transaction (BEGIN IMMEDIATE for writes: the lock is taken up front,
        so two writers never both read a turn count and then collide)."""
        try:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise self._fail(e) from None
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA foreign_keys = ON")
            if not self._ready:
                con.execute("PRAGMA journal_mode = WAL")
                con.executescript(SCHEMA)
                self._ready = True
            con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except sqlite3.Error as e:
            raise self._fail(e) from None
        finally:
            con.close()

    # ---- conversations

    def create(self, title: str, user: str = "") -> int:
        """A new conversation titled by its first question; returns its id."""
        stamp = now()
        with self._tx(write=True) as con:
            cur = con.execute("INSERT INTO conversations (user, title, created, updated) VALUES (?, ?, ?, ?)",
                              (user, " ".join(str(title).split())[:200], stamp, stamp))
            return int(cur.lastrowid)

    def append(self, conversation: int, answer: dict, user: str = "") -> int:
        """Store one answered turn (`Answer.to_dict()`) at the end of the conversation; returns its n."""
        stamp = now()
        with self._tx(write=True) as con:
            self._own(con, conversation, user)
            n = con.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE conversation = ?",
                            (conversation,)).fetchone()[0]
            con.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                        (conversation, n, answer.get("question", ""),
                         answer.get("standalone_question") or answer.get("question", ""),
                         json.dumps(answer, ensure_ascii=False), stamp))
            con.execute("UPDATE conversations SET updated = ? WHERE id = ?", (stamp, conversation))
            return int(n)

    def conversations(self, user: str | None = "") -> list[dict]:
        """Conversations, newest first, with their turn counts (user None: everyone's)."""
        where, args = ("", ()) if user is None else ("WHERE c.user = ?", (user,))
        with self._tx() as con:
            rows = con.execute(f"SELECT c.*, COUNT(t.n) AS turns FROM conversations c LEFT JOIN turns t "
                               f"ON t.conversation = c.id {where} GROUP BY c.id ORDER BY c.updated DESC, c.id DESC",
                               args).fetchall()
        return [dict(r) for r in rows]

    def get(self, conversation: int, user: str | None = "") -> dict:
        """The conversation with its turns in order: {id, user, title, created, updated, turns: [...]}."""
        with self._tx() as con:
            row = self._own(con, conversation, user)
            turns = con.execute("SELECT * FROM turns WHERE conversation = ? ORDER BY n", (conversation,)).fetchall()
        return dict(row, turns=[dict(t, answer=json.loads(t["answer"])) for t in turns])

    def rename(self, conversation: int, title: str, user: str | None = "") -> None:
        with self._tx(write=True) as con:
            self._own(con, conversation, user)
            con.execute("UPDATE conversations SET title = ?, updated = ? WHERE id = ?",
                        (" ".join(str(title).split())[:200], now(), conversation))

    def delete(self, conversation: int, user: str | None = "") -> None:
        """The conversation and its turns; feedback stays (it is evaluation material)."""
        with self._tx(write=True) as con:
            self._own(con, conversation, user)
            con.execute("DELETE FROM turns WHERE conversation = ?", (conversation,))
            con.execute("DELETE FROM conversations WHERE id = ?", (conversation,))

    @staticmethod
    def _own(con, conversation, user: str | None):
        try:
            conversation = int(conversation)
        except (TypeError, ValueError):
            raise RagError(f"conversation id {str(conversation)[:40]!r} is not a number; "
                           "see `rag chats list`") from None
        row = con.execute("SELECT * FROM conversations WHERE id = ?", (conversation,)).fetchone()
        if row is None or (user is not None and row["user"] != user):
            raise RagError(f"there is no conversation {conversation}; see `rag chats list`")
        return row

    # ---- feedback

    def add_feedback(self, conversation: int, turn: int, rating: int, comment: str = "", *, settings: dict,
                     model: str, index_version: str, history=None, user: str = "") -> int:
        """Record a rating of one stored turn with everything needed to ask it again; returns its id.
        `history` is the (question, answer) pairs the answer was given with (default: the earlier turns)."""
        if rating not in (1, -1):
            raise RagError(f"rating {rating!r} is not +1 or -1; use 1 for a good answer and -1 for a bad one")
        with self._tx(write=True) as con:
            self._own(con, conversation, user)
            row = con.execute("SELECT * FROM turns WHERE conversation = ? AND n = ?", (conversation, turn)).fetchone()
            if row is None:
                raise RagError(f"conversation {conversation} has no turn {turn}; rate an answered question")
            if history is None:
                earlier = con.execute("SELECT question, answer FROM turns WHERE conversation = ? AND n < ? "
                                      "ORDER BY n", (conversation, turn)).fetchall()
                history = [[r["question"], json.loads(r["answer"]).get("answer", "")] for r in earlier]
            cur = con.execute(
                "INSERT INTO feedback (conversation, turn, user, rating, comment, question, standalone, history, "
                "answer, settings, model, index_version, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation, turn, user, rating, str(comment or "").strip(), row["question"], row["standalone"],
                 json.dumps([list(p) for p in history], ensure_ascii=False), row["answer"],
                 json.dumps(settings, ensure_ascii=False, default=str), model, index_version, now()))
            return int(cur.lastrowid)

    def feedback(self, user: str | None = None) -> list[dict]:
        """All feedback, oldest first, with JSON fields decoded (user None: everyone's)."""
        where, args = ("", ()) if user is None else ("WHERE user = ?", (user,))
        with self._tx() as con:
            rows = con.execute(f"SELECT * FROM feedback {where} ORDER BY id", args).fetchall()
        return [dict(r, history=json.loads(r["history"]), answer=json.loads(r["answer"]),
                     settings=json.loads(r["settings"])) for r in rows]


def index_version(index) -> str:
    """`<version dir> built <built_at>` of an open index: which index gave an answer."""
    return f"{Path(index.path).name} built {index.manifest.get('built_at', '?')}"
