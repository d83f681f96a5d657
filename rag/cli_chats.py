"""`rag chats list|show|export` and `rag feedback list|to-gold`: the stored conversations and
feedback, from the terminal. Conversations of every user are shown (this is the operator's view)."""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import RagError


def add_parsers(sub, common) -> None:
    ch = sub.add_parser("chats", help="stored conversations: list, show, export")
    actions = ch.add_subparsers(dest="action", required=True)
    actions.add_parser("list", parents=[common], help="conversations, newest first")
    show = actions.add_parser("show", parents=[common], help="one conversation, citations checked")
    show.add_argument("id")
    ex = actions.add_parser("export", parents=[common], help="one conversation as Markdown or JSON")
    ex.add_argument("id")
    ex.add_argument("--format", choices=["md", "json"], default="md")
    ex.add_argument("--out", default=None, help="write to this file instead of stdout")


def documents_now(settings) -> dict:
    """The indexed documents, for checking stored citations; none (every citation stale) without an index."""
    from .store import open_index

    try:
        return open_index(settings).documents
    except RagError as e:
        print(f"warning: {e}; stored citations cannot be checked and are marked stale", file=sys.stderr)
        return {}


def cmd_chats(args, settings) -> int:
    from .chat_export import reopen, to_json, to_markdown
    from .chats import ChatStore
    from .ui_render import visible

    store = ChatStore.for_settings(settings)
    if args.action == "list":
        rows = store.conversations(user=None)
        if not rows:
            print(f"no conversations in {store.path}")
        for c in rows:
            who = f"  [{visible(c['user'])}]" if c["user"] else ""
            print(f"{c['id']:>5}  {c['updated'][:16].replace('T', ' ')}  {c['turns']:>3} turns  "
                  f"{visible(c['title'])[:80]}{who}")
        return 0
    conversation = reopen(store.get(args.id, user=None), documents_now(settings))
    if args.action == "show":
        text = to_markdown(conversation)
    else:
        text = to_markdown(conversation) if args.format == "md" else to_json(conversation) + "\n"
        if args.out:
            try:
                Path(args.out).write_text(text, encoding="utf-8")
            except OSError as e:
                raise RagError(f"cannot write {args.out} ({e.strerror or e}); pass a writable --out") from None
            print(f"conversation {conversation['id']} written to {args.out} ({args.format})")
            return 0
    sys.stdout.write(text.encode("utf-8", "backslashreplace").decode("utf-8"))
    return 0
