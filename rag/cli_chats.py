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
    fb = sub.add_parser("feedback", help="answers rated in the app: list, turn into eval candidates")
    actions = fb.add_subparsers(dest="action", required=True)
    actions.add_parser("list", parents=[common], help="every rating, oldest first")
    tg = actions.add_parser("to-gold", parents=[common],
                            help="append candidate gold items for new feedback (merge with `rag eval --accept`)")
    tg.add_argument("--candidates", default="eval/candidates.jsonl")


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


def cmd_feedback(args, settings) -> int:
    from .chats import ChatStore
    from .feedback import THUMBS, add_candidates
    from .ui_render import visible

    store = ChatStore.for_settings(settings)
    rows = store.feedback(user=None)
    if args.action == "list":
        if not rows:
            print(f"no feedback in {store.path}")
        for f in rows:
            note = f"  \u2014 {visible(f['comment'])[:80]}" if f["comment"] else ""
            print(f"{f['id']:>5}  {THUMBS[f['rating']]}  {f['created'][:16].replace('T', ' ')}  conversation "
                  f"{f['conversation']} turn {f['turn']}  {visible(f['question'])[:80]}{note}")
        return 0
    from .store import open_index

    new = add_candidates(rows, open_index(settings).documents, Path(args.candidates))
    for c in new:
        state = "needs review" if c.get("needs_review") else "ready"
        print(f"{c['id']}  {THUMBS[c['source']['rating']]}  {state}: {visible(c['question'])[:80]}")
    ready = [c["id"] for c in new if not c.get("needs_review")]
    print(f"{len(new)} new candidates in {args.candidates} ({len(ready)} ready, {len(new) - len(ready)} need "
          f"review); {len(rows) - len(new)} feedback already there"
          + (f"; merge with `rag eval --accept {','.join(ready)}`" if ready else ""))
    return 0


def cmd_accept(args, settings) -> int:
    """`rag eval --accept c0001,c0002`: merge reviewed candidates into the gold set, one line each."""
    from .feedback import accept
    from .store import open_index

    gold = Path(args.gold)
    candidates = Path(args.candidates) if args.candidates else gold.with_name("candidates.jsonl")
    ids = [i.strip() for i in args.accept.split(",") if i.strip()]
    if not ids:
        raise RagError(f"--accept {args.accept!r} names no candidate; pass ids like c0001,c0002")
    done, refused = accept(ids, gold, candidates, open_index(settings).documents)
    for cid, qid in done:
        print(f"accepted {cid} as {qid} in {gold}")
    for line in refused:
        print(f"refused: {line}", file=sys.stderr)
    return 1 if refused else 0
