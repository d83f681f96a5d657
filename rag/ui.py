"""The chat app behind `rag serve`: streamed answers with clickable citations, sources, corpus and eval.

Loopback only unless --expose; nothing is fetched from the internet (system fonts, analytics off,
no share link). Rendering lives in ui_render.py; this module wires it to gradio and to `Rag`.
"""

import ipaddress
import logging
import os
import re
import time
from pathlib import Path

from .config import BACKENDS, MODES, Settings, llm_configured
from .errors import RagError
from .ui_assets import CHAT_JS, CITE_JS, CSS, FOCUS_JS, SCROLL_JS, theme
from .ui_eval import latest_report, render_eval
from .ui_render import document_placeholder, render_chat, render_corpus, render_document, render_sources
from .ui_explain import explain_panel
from .ui_chats import feedback_row, give_feedback, new_conversation, record_turn, user_of
from .ui_collections import Chooser
from .ui_corpus import corpus_tab, documents_html
from .ui_history import REOPEN_JS, feedback_html, history_tab, latest_view
from .ui_upload import add_document

__all__ = ["add_document", "build_app", "launch", "respond"]  # `rag serve` itself: server.py

log = logging.getLogger(__name__)
REPORTS_DIR = Path("eval/reports")


def check_host(host: str, expose: bool) -> None:
    """Refuse to listen beyond this machine unless the user asked for it with --expose."""
    if expose:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise RagError(f"--host {host!r} is not a loopback address; use --host 127.0.0.1, "
                       "or add --expose to serve other machines on purpose")


def auth_pair(settings: Settings) -> tuple[str, str] | None:
    user, password = settings.auth_user, settings.auth_password
    if bool(user) != bool(password):
        missing = "RAG_AUTH_PASSWORD" if user else "RAG_AUTH_USER"
        raise RagError(f"{missing} is empty but its partner is set; set both RAG_AUTH_USER and "
                       "RAG_AUTH_PASSWORD, or neither")
    return (user, password) if user else None


def configure_logging(settings: Settings) -> list[logging.Handler]:
    """Warnings and errors (with tracebacks) to stderr and, if RAG_LOG_FILE is set, to that file."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if settings.log_file:
        path = Path(settings.log_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.FileHandler(path, encoding="utf-8"))
        except OSError as e:
            raise RagError(f"cannot write the log file RAG_LOG_FILE={str(path)!r} ({e.strerror or e}); "
                           "point it at a writable file") from None
    root = logging.getLogger()
    for h in handlers:
        h.setLevel(logging.WARNING)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(h)
    return handlers


def launch(demo, settings: Settings, auth: tuple[str, str] | None = None, allow_embed: bool = False) -> str:
    """Start the app alone (no JSON API; `rag serve` uses server.py) in the background on the checked host,
    with nothing external and the security headers of web.py; returns its URL.
    A login (user, password) is checked in constant time with back-off per client (ui_auth.py)."""
    from starlette.middleware import Middleware

    from .web import SecurityHeaders

    check, middleware = None, [Middleware(SecurityHeaders, allow_embed=allow_embed)]
    if auth:
        from .ui_auth import ClientAddress, LoginGuard

        check = LoginGuard(*auth).check
        middleware.append(Middleware(ClientAddress))
    app_kwargs = {"middleware": middleware}
    try:
        _, url, _ = demo.launch(
            server_name=settings.host, server_port=settings.port, share=False, auth=check, app_kwargs=app_kwargs,
            prevent_thread_lock=True, quiet=True, show_error=False, ssr_mode=False, pwa=False,
            mcp_server=False, enable_monitoring=False, run_history=False, footer_links=["api"],
            max_file_size=f"{settings.upload_max_mb}mb", theme=theme(), css=CSS)
    except OSError as e:
        raise RagError(f"cannot listen on {settings.host}:{settings.port} ({e}); pass a free --port") from None
    return url


# ---------------------------------------------------------------- handlers (plain functions, tested directly)


def reveal(shown: str, piece: str, steps: int = 20):
    """`shown + piece` in growing prefixes, a few words at a time: a whole answer that arrives at
    once (extractive) still builds up on screen; short streamed pieces (LLM tokens) pass straight on."""
    if len(piece) <= 24:
        yield shown + piece
        return
    words = piece.split(" ")
    step = max(2, -(-len(words) // steps))
    for i in range(step, len(words), step):
        yield shown + " ".join(words[:i])
    yield shown + piece


MAX_TURNS = 20  # turns kept per session; older ones leave the state (and the follow-up history)
MAX_HISTORY_CHARS = 100_000  # and at most this many characters of questions and answers


def _size(turn: dict) -> int:
    reply = turn["answer"].text if turn.get("answer") is not None else turn.get("partial") or turn.get("error") or ""
    return len(turn.get("question") or "") + len(reply)


def bounded(turns) -> list[dict]:
    """The newest turns within MAX_TURNS and MAX_HISTORY_CHARS."""
    kept, total = [], 0
    for turn in reversed(list(turns or [])[-MAX_TURNS:]):
        total += _size(turn)
        if total > MAX_HISTORY_CHARS:
            break
        kept.append(turn)
    return kept[::-1]


def respond(rag, question, turns, k=None, mode=None, backend=None, delay: float = 0.02, filters=None):
    """Stream (turns, answer) as the answer builds; a RagError becomes an error turn, never a traceback.
    The question is stored as it is answered (cleaned and truncated) and the history stays bounded.
    `filters` is the Filter box's text: `--filter` conditions separated by ';' or newlines."""
    filters = [f.strip() for f in re.split(r"[;\n]", filters if isinstance(filters, str) else "") if f.strip()]
    turns = bounded(turns)[-(MAX_TURNS - 1):]
    history = [(t["question"], t["answer"]) for t in turns if t.get("answer") is not None]  # Answers: phrase too
    asked = question = question if isinstance(question, str) else ""
    try:
        question = rag.clean(question)[0]
    except RagError:  # reported below, with the question as typed (cut to the limit)
        question = question[:rag.settings.max_question_chars]
    try:
        if question.strip():  # show the question at once, before retrieval finishes
            yield turns + [{"question": question, "partial": ""}], None
        if backend == "llm" and not llm_configured(rag.settings):
            raise RagError("the llm backend needs RAG_LLM_BASE_URL and RAG_LLM_MODEL; use the extractive backend")
        shown = ""
        for event in rag.ask_stream(asked, history, k=int(k) if k else None, mode=mode or None,
                                    backend=backend or None, filters=filters or None):
            if isinstance(event, str):
                for shown in reveal(shown, event):
                    yield turns + [{"question": question, "partial": shown}], None
                    if len(event) > 24:
                        time.sleep(delay)
            else:
                yield turns + [{"question": question, "answer": event}], event
                return
    except RagError as e:
        yield turns + [{"question": question, "error": str(e)}], None
    except Exception as e:  # never show a traceback in the chat; the server log keeps it
        log.exception("answering %r failed", question)
        yield turns + [{"question": question, "error": f"something went wrong ({type(e).__name__}); "
                                                       "see the server log"}], None


def open_document(rag, doc_id, start, end) -> str:
    """The document view for an indexed document only (looked up by id, never by path)."""
    try:
        start, end = int(start), int(end)
        documents = rag.index.documents
    except (TypeError, ValueError):
        return document_placeholder("That citation has no valid position; ask the question again.")
    except RagError as e:
        return document_placeholder(str(e))
    doc = documents.get(doc_id) if isinstance(doc_id, str) else None
    if doc is None:
        return document_placeholder(f"{str(doc_id)[:200]!r} is not in the index; ask the question again.")
    return render_document(doc, start, end)


def corpus_html(rag) -> str:
    try:
        return render_corpus(rag.index.manifest)
    except RagError as e:
        return render_corpus(None, str(e))


# ---------------------------------------------------------------- layout


def build_app(rag, reports_dir: Path = REPORTS_DIR, delay: float = 0.02):
    """The gradio Blocks app for one `Rag`; launch it with `launch`."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio as gr

    from .chats import ChatStore

    s = rag.settings
    backends = [b for b in BACKENDS if b != "llm" or llm_configured(s)]
    store = ChatStore.for_settings(s)

    chooser = Chooser(rag)  # the collections a chat may search, when there are several

    def on_ask(question, turns, k, mode, backend, conv, chosen=None, filters="", request: gr.Request = None):
        picked = chooser.pick(chosen)
        for new_turns, answer in respond(picked, question, turns, k, mode, backend, delay, filters):
            if answer is None:  # a partial answer, or an error that ends the stream
                error = "error" in new_turns[-1]
                conv = record_turn(store, conv, None)[0] if error else conv
                yield render_chat(new_turns), gr.skip(), None if error else gr.skip(), new_turns, "", conv
            else:
                conv, notice = record_turn(store, conv, answer, user_of(request))
                if notice:  # the store failed: said once, and this session goes on without history
                    gr.Warning(notice)
                docs = chooser.documents(picked, answer, _documents(picked))
                yield render_chat(new_turns), render_sources(answer, docs), answer.to_dict(), new_turns, "", conv

    def on_feedback(rating, comment, conv, turns, request: gr.Request):
        status, conv = give_feedback(rag, store, conv, turns, rating, comment, user_of(request))
        return status, "" if "ok-text" in status else gr.skip(), conv

    def on_up(comment, conv, turns, request: gr.Request):
        return on_feedback(1, comment, conv, turns, request)

    def on_down(comment, conv, turns, request: gr.Request):
        return on_feedback(-1, comment, conv, turns, request)

    def on_cite(evt: gr.EventData):
        data = evt._data if isinstance(evt._data, dict) else {}
        return open_document(chooser.owner(data), data.get("doc"), data.get("start"), data.get("end"))

    def on_clear():  # the next question starts a new stored conversation
        return render_chat([]), render_sources(None, {}), document_placeholder(), None, [], new_conversation(), ""

    def on_eval(request: gr.Request):
        return render_eval(latest_report(reports_dir)), feedback_html(store, user_of(request))

    def on_load(request: gr.Request):
        return (documents_html(chooser.pick(chooser.served[:1])), *on_eval(request))

    with gr.Blocks(title="Ask the corpus", analytics_enabled=False) as demo:
        turns, conv = gr.State([]), gr.State(new_conversation())
        gr.HTML('<div class="app-head"><span class="app-title">Ask the corpus</span><span class="app-sub">Answers '
                "quote the indexed documents; click [n] to read a passage in context. Runs offline.</span></div>",
                js_on_load=None)
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        chat = gr.HTML(render_chat([]), js_on_load=CHAT_JS + SCROLL_JS, elem_id="chat", autoscroll=True,
                                       max_height=640, container=True, padding=True)
                        with gr.Row(equal_height=True):
                            question = gr.Textbox(placeholder="Ask a question about the documents\u2026",
                                                  show_label=False, scale=6, elem_id="question", max_lines=4)
                            with gr.Column(scale=1, min_width=120):
                                ask = gr.Button("Ask", variant="primary", elem_id="ask")
                                clear = gr.Button("Clear chat", size="sm", variant="secondary", elem_id="clear")
                        up, down, comment, feedback_status, rating, send = feedback_row(gr)
                        with gr.Accordion("Settings", open=False):
                            with gr.Row():
                                k = gr.Slider(1, 20, value=s.top_k, step=1, label="Passages to retrieve")
                                mode = gr.Radio(list(MODES), value=s.mode, label="Retrieval mode")
                                backend = gr.Radio(backends, value=s.backend if s.backend in backends else backends[0],
                                                   label="Answer backend",
                                                   info=None if "llm" in backends else
                                                   "llm needs RAG_LLM_BASE_URL and RAG_LLM_MODEL")
                            chosen = [gr.CheckboxGroup(chooser.names, value=chooser.served, label="Collections",
                                                       elem_id="collections")] if chooser.offered else []
                            filt = gr.Textbox("", label="Filter", elem_id="filter", max_lines=3,
                                              placeholder="author=Elsa Kania; date>=2019-01-01",
                                              info="like --filter; several: ; or newlines")
                        with gr.Accordion("Answer as JSON", open=False):
                            answer_json = gr.JSON(label="Latest answer")
                        follow_answers = explain_panel(gr, rag, turns, k, mode, chooser, *chosen)
                    with gr.Column(scale=2):
                        sources = gr.HTML(render_sources(None, {}), js_on_load=CITE_JS, elem_id="sources")
                        viewer = gr.HTML(document_placeholder(), js_on_load=FOCUS_JS, elem_id="viewer")
            _, _, reopen_from = history_tab(gr, rag, store, dict(chat=chat, sources=sources, viewer=viewer, tabs=tabs,
                                                                 answer_json=answer_json, turns=turns, conv=conv))
            _, corpus = corpus_tab(gr, rag, s.upload_max_mb, chooser, *chosen)
            with gr.Tab("Eval", id="eval") as eval_tab:
                evaluation = gr.HTML(js_on_load=None, elem_id="eval")
                downs = gr.HTML(js_on_load=REOPEN_JS, elem_id="eval-feedback")

        outputs = [chat, sources, answer_json, turns, question, conv]
        inputs = [question, turns, k, mode, backend, conv, *(chosen or [gr.State(None)]), filt]
        for asked in (ask.click(on_ask, inputs, outputs, api_name="ask",
                                concurrency_limit=16, show_progress="hidden"),
                      question.submit(on_ask, inputs, outputs,
                                      api_visibility="undocumented", concurrency_limit=16, show_progress="hidden")):
            asked.then(lambda a: latest_view(_documents(rag), a), answer_json, viewer, api_visibility="undocumented",
                       show_progress="hidden")  # the viewer follows the newest answer
            follow_answers(asked)  # and an open Explain panel too
        rated = [feedback_status, comment, conv]
        send.click(on_feedback, [rating, comment, conv, turns], rated, api_name="feedback", show_progress="hidden")
        for button, handler in ((up, on_up), (down, on_down)):
            button.click(handler, [comment, conv, turns], rated, api_visibility="undocumented", show_progress="hidden")
        for panel in (chat, sources):
            panel.cite(on_cite, None, viewer, api_visibility="undocumented", show_progress="hidden",
                       concurrency_limit=4)
        clear.click(on_clear, None, [chat, sources, viewer, answer_json, turns, conv, feedback_status],
                    api_name="clear")
        reopen_from(downs)
        eval_tab.select(on_eval, None, [evaluation, downs], api_visibility="undocumented")
        demo.load(on_load, None, [corpus, evaluation, downs], api_visibility="undocumented")
    return demo


def _documents(rag) -> dict:
    try:
        return rag.index.documents
    except RagError:
        return {}
