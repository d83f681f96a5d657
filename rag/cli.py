"""The `rag` command: index, search, ask, serve, eval, bench, chats, feedback, collections.
Bad input is one line on stderr."""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
from dataclasses import fields

from .cli_render import format_sources, in_collection, plain, print_json, visible
from .config import Settings, load_settings
from .errors import RagError


def _settings_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (override RAG_* environment variables)")
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        group.add_argument(flag, dest=f"set_{f.name}", default=None, metavar=f.name.upper(),
                           action="append" if f.name == "collection" else "store",  # --collection a --collection b
                           help=argparse.SUPPRESS if f.name in ("auth_password", "llm_api_key", "api_token") else None)
    return parent


def parser() -> argparse.ArgumentParser:
    common = _settings_flags()
    p = argparse.ArgumentParser(prog="rag", description="Offline Q&A over corpus/ with answers cited to exact source spans.")
    sub = p.add_subparsers(dest="command", required=True)
    ix = sub.add_parser("index", parents=[common], help="build or update index/ from corpus/")
    ix.add_argument("--rebuild", action="store_true", help="ignore the existing index and rebuild from scratch")
    for name, helptext in (("search", "print ranked passages"), ("ask", "answer with citations")):
        sp = sub.add_parser(name, parents=[common], help=helptext)
        sp.add_argument("question", nargs="?" if name == "ask" else None, default="")
        if name == "ask":
            sp.add_argument("--explain", action="store_true", help="show what each stage did, and where to diagnose")
            sp.add_argument("--gold", dest="gold_id", default=None, metavar="ID",
                            help="with --explain: say where this gold item's quote was (question taken from it if none)")
            sp.add_argument("--gold-file", default="eval/gold.jsonl")
        sp.add_argument("-k", dest="set_top_k", default=None, metavar="K",
                        help="number of passages, 1..100 (same as --top-k; default: top_k setting)")
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        sp.add_argument("--filter", dest="filters", action="append", default=None, metavar="KEY<op>VALUE",
                        help="only documents whose metadata match, e.g. 'author=Elsa Kania', 'date>=2019-01-01', "
                             "'path=reports/*' (repeatable: all must hold)")
    sub.add_parser("verify", parents=[common], help="check every index file against its checksum")
    sv = sub.add_parser("serve", parents=[common], help="start the chat app and the HTTP API on 127.0.0.1")
    sv.add_argument("--expose", action="store_true", help="allow binding a non-loopback --host")
    sv.add_argument("--allow-embed", action="store_true", help="let other sites frame the app (no frame-ancestors)")
    ev = sub.add_parser("eval", parents=[common], help="score retrieval and answers on eval/gold.jsonl")
    ev.add_argument("--check", action="store_true", help="fail if metrics fall below eval/baseline.json")
    ev.add_argument("--update-baseline", action="store_true", help="rewrite eval/baseline.json")
    ev.add_argument("--gold", default="eval/gold.jsonl")
    ev.add_argument("--accept", metavar="IDS", default=None,
                    help="merge these candidates (c0001,c0002) from `rag feedback to-gold` into --gold, no scoring")
    ev.add_argument("--candidates", default=None, help="candidates file (default: candidates.jsonl next to --gold)")
    from .cli_chats import add_parsers

    add_parsers(sub, common)
    from .cli_collections import add_parsers as add_collections

    add_collections(sub, common)
    bn = sub.add_parser("bench", parents=[common], help="run an external benchmark")
    bn.add_argument("name", choices=["beir", "scifact"], help="beir: any BEIR dataset in --data; scifact: the same "
                    "on SciFact, and the only one with --rationales")
    bn.add_argument("--data", default="../shared/benchmarks/scifact",
                    help="a BEIR dataset directory: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    bn.add_argument("--limit", type=int, default=None, help="only the first N queries")
    bn.add_argument("--rationales", action="store_true",
                    help="scifact: ask each claim of rationales.jsonl; score citations against its rationale sentences")
    bn.add_argument("--split", choices=["test", "dev"], default="test", help="qrels split (rationale split with "
                    "--rationales)")
    return p


def settings_from(args) -> Settings:
    """Settings from flags over RAG_* variables; one --collection gives that collection's folders."""
    overrides = {k[4:]: ",".join(v) if isinstance(v, list) else v
                 for k, v in vars(args).items() if k.startswith("set_") and v is not None}
    settings = load_settings(**overrides)
    from .collections import names, settings_for

    many = names(settings)
    return settings_for(settings, many[0]) if len(many) == 1 and args.command != "collections" else settings


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if isinstance(getattr(args, "question", None), str):  # a byte that is not UTF-8 arrives as a lone surrogate
        args.question = args.question.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    try:
        return COMMANDS[args.command](args, settings_from(args))
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rag search ... | head`
        sys.stderr.close()
        return 0


def cmd_index(args, settings) -> int:
    from .cli_collections import each_collection
    from .pipeline import Rag
    from .ui_render import counted

    if each_collection(settings, lambda one: cmd_index(args, one)):
        return 0

    report = Rag(settings).build(rebuild=args.rebuild, log=lambda m: print(m, file=sys.stderr))
    skipped = f"; {len(report.skipped)} files skipped (below)" if report.skipped else ""
    if not report.changed_anything and not report.embedded and not args.rebuild:
        print(f"index is up to date: {counted(len(report.unchanged), 'document')}, {report.chunks} chunks; "
              f"nothing embedded{skipped}")
    else:
        print(f"indexed {counted(len(report.added) + len(report.changed) + len(report.unchanged), 'document')} "
              f"({len(report.added)} added, {len(report.changed)} changed, {len(report.deleted)} deleted, "
              f"{len(report.unchanged)} unchanged): {report.chunks} chunks, {report.embedded} texts embedded "
              f"in {report.seconds:.1f}s{skipped}")
    sys.stdout.flush()  # the skipped files are the final report, after the summary
    for s in report.skipped:
        print(f"warning: skipped {visible(s.path)}: {visible(s.reason)}", file=sys.stderr)
    return 0


def cmd_search(args, settings) -> int:
    from .pipeline import Rag
    from .types import hit_to_dict

    hits = Rag(settings).search(args.question, filters=args.filters)
    if args.json:
        print_json({"question": args.question, "hits": [hit_to_dict(h) for h in hits]})
        return 0
    if not hits:
        print("no passages found")
    for h in hits:
        c = h.chunk
        print(f"{h.rank}. score {h.score:.4f}  {visible(c.title)}  [{in_collection(h.collection)}{visible(c.doc_id)} chars "
              f"{c.start}-{c.end}]")
        print(textwrap.indent(textwrap.fill(plain(c.text), 100), "   "))
    return 0


def cmd_ask(args, settings) -> int:
    from .pipeline import Rag

    rag = Rag(settings)
    if args.explain or args.gold_id:
        if args.filters:
            raise RagError("--explain does not take --filter yet; explain the question without it")
        return _explain(args, rag)
    answer, streamed = None, ""
    for event in rag.ask_stream(args.question, filters=args.filters):
        if isinstance(event, str):
            streamed += event
            if not args.json and settings.backend == "llm":
                print(event, end="", flush=True)
        else:
            answer = event
    if args.json:
        print_json(answer.to_dict())
        return 0
    if settings.backend == "llm":
        print()
        if answer.citations and answer.text.strip() != streamed.strip():
            print("\nChecked answer (markers match the sources below):")
            print(textwrap.fill(plain(answer.text), 100))
    else:
        if answer.short_answer:
            print(f"Answer: {plain(' '.join(answer.short_answer.split()))}\n")
        print(textwrap.fill(plain(answer.text), 100))
        if answer.confidence:
            print(f"\n({answer.confidence} support; {answer.backend}, {answer.mode} retrieval)")
    print(format_sources(answer))
    return 0


def _explain(args, rag) -> int:
    from pathlib import Path

    from .evaluate import load_gold
    from .explain import explain, render
    from .types import Answer

    gold = None
    if args.gold_id:
        gold = next((g for g in load_gold(Path(args.gold_file)) if g.id == args.gold_id), None)
        if gold is None:
            raise RagError(f"no gold item {args.gold_id!r} in {args.gold_file}; pass an id from that file")
    question = args.question or (gold.question if gold else "")
    ex = explain(rag, question, gold.history if gold and not args.question else (), gold)
    if args.json:
        print_json(dict(ex["answer"], explain={k: v for k, v in ex.items() if k != "answer"}))
        return 0
    print(render(ex) + "\n")
    a = ex["answer"]
    answer = Answer(question=a["question"], text=a["answer"], citations=(), refused=a["refused"], notice=a["notice"])
    if a["short_answer"]:
        print(f"Answer: {plain(a['short_answer'])}\n")
    print(textwrap.fill(plain(answer.text), 100))
    for c in a["citations"]:
        print(f"[{c['n']}] {visible(c['title'])} ({visible(c['doc_id'])} chars {c['start']}-{c['end']})")
    return 0


def cmd_verify(args, settings) -> int:
    from .store import verify

    problems, checked = verify(settings)
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    if problems:
        return 1
    note = (f"; {len(checked['unhashed'])} files carry no checksum (built before checksums: "
            f"`rag index --rebuild` adds them)" if checked["unhashed"] else "")
    print(f"index OK: {settings.index_dir}/{checked['version']}: {checked['files']} files, "
          f"{checked['bytes'] / 2**20:.1f} MB hashed, {checked.get('chunks', 0)} chunks{note}")
    return 0


def cmd_serve(args, settings) -> int:
    from .server import serve

    serve(settings, expose=args.expose, allow_embed=args.allow_embed)
    return 0


def cmd_eval(args, settings) -> int:
    if args.accept is not None:
        from .cli_chats import cmd_accept

        return cmd_accept(args, settings)
    from .cli_collections import gold_of
    from .evaluate import run_cli

    args.gold = gold_of(settings, args.gold)
    return run_cli(args, settings)


def cmd_chats(args, settings) -> int:
    from .cli_chats import cmd_chats, cmd_feedback

    return (cmd_chats if args.command == "chats" else cmd_feedback)(args, settings)


def cmd_bench(args, settings) -> int:
    if args.name == "beir" and args.rationales:
        raise RagError("--rationales needs SciFact's rationales.jsonl; run `rag bench scifact --rationales`")
    from .scifact import bench_scifact

    return bench_scifact(args, settings)


def cmd_collections(args, settings) -> int:
    from .cli_collections import cmd_collections

    return cmd_collections(args, settings)


COMMANDS = {"index": cmd_index, "search": cmd_search, "ask": cmd_ask, "verify": cmd_verify, "serve": cmd_serve,
            "eval": cmd_eval, "bench": cmd_bench, "chats": cmd_chats,
            "feedback": cmd_chats, "collections": cmd_collections}

def run() -> None:
    """The `rag` console script. `ask` and `search` (read-only, one-shot) end without Python's teardown:
    unloading spaCy and ONNX Runtime was ~0.25 s of a 1.7 s cold `rag ask`. Output is flushed and
    atexit handlers run first; only the module unloading is skipped."""
    code = main()
    if sys.argv[1:2] and sys.argv[1] in ("ask", "search"):
        import atexit
        import os

        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BrokenPipeError, ValueError):  # `rag search ... | head`; stderr closed by main()
                stream.flush()
        atexit._run_exitfuncs()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
