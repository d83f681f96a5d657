"""`rag collections list|create NAME|delete NAME`: named corpora, each with its own index."""

from __future__ import annotations

import sys

from .errors import RagError


def add_parsers(sub, common) -> None:
    co = sub.add_parser("collections", help="named corpora with their own index: list, create, delete")
    actions = co.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", parents=[common], help="every collection, its folders and index")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    cr = actions.add_parser("create", parents=[common], help="make collections/NAME/corpus for documents")
    cr.add_argument("name")
    de = actions.add_parser("delete", parents=[common], help="remove a collection's documents, index and eval files")
    de.add_argument("name")
    de.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def cmd_collections(args, settings) -> int:
    from . import collections
    from .ui_render import counted

    if args.action == "list":
        rows = [c.describe() for c in collections.every(settings)]
        if args.json:
            import json

            print(json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8", "backslashreplace").decode("utf-8"))
            return 0
        for r in rows:
            state = (f"{counted(r['documents'], 'document')}, {counted(r['chunks'], 'chunk')}, built {r['built_at']}"
                     if r["chunks"] is not None else "not indexed")
            print(f"{r['name']}\t{state}\t{r['corpus_dir']}")
        return 0
    if args.action == "create":
        c = collections.create(settings, args.name)
        print(f"created collection {c.name}: add documents to {c.corpus_dir}/ and run "
              f"`rag index --collection {c.name}`")
        return 0
    c = collections.find(settings, args.name)
    if c.name != collections.DEFAULT and not c.configured and not args.yes:
        info = c.describe()
        docs = f"{info['documents']} indexed documents" if info["documents"] is not None else "no index"
        try:
            reply = input(f"delete collection {c.name} ({docs}; every file in {c.corpus_dir}/ and its index)? [y/N] ")
        except EOFError:
            reply = ""
        if reply.strip().lower() not in ("y", "yes"):
            print("not deleted (pass --yes to delete without asking)", file=sys.stderr)
            return 1
    removed = collections.delete(settings, args.name)
    left = "" if removed and removed[-1].name == args.name else "; other files in its folder were kept"
    print(f"deleted collection {args.name}: removed {', '.join(str(p) for p in removed) or 'nothing'}{left}")
    return 0


def each_collection(settings, run) -> bool:
    """With several --collection: run(settings) for each in turn (True); with one or none: False."""
    from .collections import names, settings_for

    if len(names(settings)) < 2:
        return False
    for name in names(settings):
        print(f"collection {name}:")
        run(settings_for(settings, name))
    return True


def gold_of(settings, gold: str) -> str:
    """The eval set of the chosen collection: eval/gold.jsonl for default, collections/NAME/gold.jsonl
    otherwise (its baseline and reports sit beside it). A --gold given by hand is kept."""
    from .collections import find, names

    chosen = names(settings)
    if len(chosen) > 1:
        raise RagError(f"rag eval scores one collection at a time, not {settings.collection}; pass one --collection")
    return str(find(settings, chosen[0]).gold) if chosen and gold == "eval/gold.jsonl" else gold
