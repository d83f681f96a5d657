"""The Conversations tab: the logged-in user's past conversations, reopened in the chat with their
answers, citations and sources (a citation whose quote no longer matches its document is marked
stale and never linked), renamed, deleted after a confirmation, downloaded as Markdown or JSON; and
the Eval panel's feedback counts with the latest 👎 answers. Plain functions, tested directly;
`history_tab` wires them into build_app.
"""

import logging
import tempfile
from pathlib import Path

from .chat_export import mark_stale, reopen, to_json, to_markdown
from .errors import RagError
from .types import Answer, Chunk, Citation, Hit
from .ui_render import counted, document_placeholder, esc, render_chat, render_document, render_sources

log = logging.getLogger(__name__)
LATEST_DOWN = 5  # 👎 answers listed in the Eval panel

# A click on any "reopen" link asks the server to reopen that conversation in the chat.
REOPEN_JS = """
element.addEventListener('click', (e) => {
  const a = e.target.closest('a.reopen');
  if (!a || !element.contains(a)) return;
  e.preventDefault();
  trigger('reopen', {id: Number(a.dataset.id)});
});
"""
CITE_FIELDS = ("n", "doc_id", "title", "start", "end", "quote", "score", "support", "page")


def answer_from_dict(d: dict, documents: dict) -> Answer:
    """An `Answer` back from its stored `to_dict()`, checked against the documents as they are now:
    stale citations are left out (their `[n]` stays plain text) and named in the notice."""
    d = mark_stale(d, documents)
    valid, stale = [], []
    for c in d["citations"]:
        try:
            cite = Citation(**{k: c[k] for k in CITE_FIELDS if k in c})
        except TypeError:
            stale.append(str(c.get("n", "?")))
            continue
        (stale.append(str(cite.n)) if c["stale"] else valid.append(cite))
    hits = []
    for p in d.get("passages") or []:
        try:
            hits.append(Hit(Chunk(p["doc_id"], p["start"], p["end"], p["text"], p.get("title", ""), page=p.get("page")),
                            float(p.get("score") or 0), int(p.get("rank") or len(hits) + 1), p.get("dense"),
                            p.get("bm25")))
        except (KeyError, TypeError, ValueError):
            continue
    notice = d.get("notice") or ""
    if stale:
        marks = ", ".join(f"[{n}]" for n in stale)
        notice = (notice + " " if notice else "") + (
            f"\u26a0 stale: {marks} no longer {'matches its' if len(stale) == 1 else 'match their'} document "
            "(it changed since this answer); ask again for current sources.")
    span = d.get("short_answer_span")
    return Answer(question=d.get("question", ""), text=d.get("answer", ""), citations=tuple(valid), hits=tuple(hits),
                  refused=bool(d.get("refused")), backend=d.get("backend", ""), flagged=tuple(d.get("flagged") or ()),
                  notice=notice, standalone_question=d.get("standalone_question", ""),
                  short_answer=d.get("short_answer") or "",
                  short_answer_span=(span["doc_id"], span["start"], span["end"]) if span else None,
                  confidence=d.get("confidence") or "", mode=d.get("mode") or "")


def reopened(conversation: dict, documents: dict) -> list[dict]:
    """The chat's turns for a stored conversation (`ChatStore.get`)."""
    return [{"question": t["question"], "answer": answer_from_dict(t["answer"], documents)}
            for t in conversation["turns"]]


def latest_view(documents: dict, answer: Answer | dict | None) -> str:
    """The document view for the latest answer's first citation, or the placeholder: the viewer
    follows the newest answer instead of keeping an older passage."""
    cites = (answer.get("citations") if isinstance(answer, dict) else getattr(answer, "citations", None)) or []
    for c in cites:
        c = c if isinstance(c, dict) else c.to_dict()
        doc = documents.get(c.get("doc_id"))
        if doc is not None and doc.text[c["start"]:c["end"]] == c.get("quote"):
            return render_document(doc, c["start"], c["end"]).replace('class="doc-view"', 'class="doc-view follow"', 1)
    return document_placeholder()


def _date(stamp: str) -> str:
    return (stamp or "")[:16].replace("T", " ")


def render_conversations(rows: list[dict] | None, selected=None, error: str = "") -> str:
    """The list of conversations (title = first question, last update, turns), each a reopen link."""
    if error:
        return f'<div class="panel-empty error-text">\u26a0 {esc(error)}</div>'
    if not rows:
        return '<div class="panel-empty">No conversations yet \u2014 ask a question in the Chat tab.</div>'
    body = "".join(
        f'<tr class="{"selected" if r["id"] == selected else ""}" data-id="{int(r["id"])}">'
        f'<td><a class="reopen" href="#" role="button" data-id="{int(r["id"])}">{esc(r["title"])}</a></td>'
        f'<td>{esc(_date(r["updated"]))}</td><td class="num">{int(r.get("turns", 0))}</td></tr>' for r in rows)
    return ('<div class="conversations"><div class="panel-title">Your conversations (newest first; click one to '
            'reopen it)</div><table class="table"><thead><tr><th>Title</th><th>Last update (UTC)</th>'
            f'<th class="num">Turns</th></tr></thead><tbody>{body}</tbody></table></div>')


def render_feedback(feedback: list[dict] | None, alive: set, error: str = "", latest: int = LATEST_DOWN) -> str:
    """Feedback counts and the latest 👎 answers, each with a link to reopen its conversation."""
    if error:
        return f'<div class="panel-empty error-text">\u26a0 {esc(error)}</div>'
    feedback = feedback or []
    up = sum(f["rating"] == 1 for f in feedback)
    down = [f for f in feedback if f["rating"] == -1]
    items = []
    for f in down[::-1][:latest]:
        cid = int(f["conversation"])
        link = (f'<a class="reopen" href="#" role="button" data-id="{cid}">reopen conversation {cid}</a>'
                if cid in alive else f"conversation {cid} was deleted")
        comment = f' \u2014 <span class="comment">\u201c{esc(f["comment"])}\u201d</span>' if f.get("comment") else ""
        items.append(f'<li><b>{esc(f["question"])}</b>{comment}<div class="src-meta">{esc(_date(f["created"]))} '
                     f"\u00b7 turn {int(f['turn'])} \u00b7 {link}</div></li>")
    listed = f'<ul class="down-list">{"".join(items)}</ul>' if items else '<div class="hint">No \U0001f44e yet.</div>'
    return (f'<div class="feedback-panel"><div class="panel-title">Feedback: \U0001f44d {up} \u00b7 \U0001f44e '
            f'{len(down)} \u2014 <code>rag feedback to-gold</code> turns it into eval candidates</div>'
            f'<div class="panel-title">Latest \U0001f44e answers</div>{listed}</div>')


def feedback_html(store, user: str = "") -> str:
    """The Eval panel's feedback section for one user, or the store's one-line failure."""
    try:
        return render_feedback(store.feedback(user), {c["id"] for c in store.conversations(user)})
    except RagError as e:
        return render_feedback(None, set(), str(e))


def export_files(conversation: dict, folder: Path) -> tuple[str, str]:
    """Write the conversation as conversation-<id>.md and .json into folder; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / f"conversation-{conversation['id']}.md", folder / f"conversation-{conversation['id']}.json"
    md.write_text(to_markdown(conversation), encoding="utf-8")
    js.write_text(to_json(conversation), encoding="utf-8")
    return str(md), str(js)


def _documents(rag) -> dict:
    try:
        return rag.index.documents
    except RagError:
        return {}


def history_tab(gr, rag, store, chat: dict):
    """The Conversations tab (inside the current gr.Tabs) and its events. `chat` holds the chat tab's
    components: chat, sources, viewer, answer_json, turns, conv, tabs. Returns (tab, list panel,
    reopen(panel)): reopen wires any HTML panel whose 'reopen' links open a conversation in the chat."""
    from .ui_chats import new_conversation, user_of

    folder = Path(tempfile.mkdtemp(prefix="rag-export-"))

    def listing(request, selected=None) -> str:
        try:
            return render_conversations(store.conversations(user_of(request)), selected)
        except RagError as e:
            return render_conversations(None, error=str(e))

    def on_reopen(evt: gr.EventData, request: gr.Request):
        data = evt._data if isinstance(evt._data, dict) else {}
        user, docs = user_of(request), _documents(rag)
        try:
            found = reopen(store.get(data.get("id"), user), docs)
        except RagError as e:
            return [gr.skip()] * 7 + [gr.skip(), gr.skip(), gr.skip(), f'<div class="error-text">\u26a0 {esc(e)}</div>',
                                      listing(request), gr.skip()]
        turns = reopened(found, docs)
        last = turns[-1]["answer"] if turns else None
        conv = {"id": found["id"], "n": found["turns"][-1]["n"] if found["turns"] else None, "off": ""}
        md, js = export_files(found, folder)
        status = (f'<div class="ok-text">Reopened \u201c{esc(found["title"])}\u201d '
                  f'({counted(len(turns), "turn")}).</div>')
        return (render_chat(turns), render_sources(last, docs), latest_view(docs, last),
                last.to_dict() if last else None, turns, conv, gr.Tabs(selected="chat"), found["title"],
                gr.DownloadButton(value=md, interactive=True), gr.DownloadButton(value=js, interactive=True),
                status, listing(request, found["id"]), found["id"])

    def on_rename(title, picked, request: gr.Request):
        if picked is None or not str(title or "").strip():
            why = "open a conversation first" if picked is None else "type a title first"
            return f'<div class="error-text">\u26a0 {why}</div>', gr.skip()
        try:
            store.rename(picked, title, user_of(request))
        except RagError as e:
            return f'<div class="error-text">\u26a0 {esc(e)}</div>', gr.skip()
        return '<div class="ok-text">Renamed.</div>', listing(request, picked)

    def on_delete(picked):
        if picked is None:
            return '<div class="error-text">\u26a0 open a conversation first</div>', gr.Row(visible=False)
        return "", gr.Row(visible=True)

    def on_confirm(picked, conv, request: gr.Request):
        try:
            store.delete(picked, user_of(request))
        except RagError as e:
            return f'<div class="error-text">\u26a0 {esc(e)}</div>', gr.Row(visible=False), gr.skip(), gr.skip(), \
                gr.skip(), gr.skip(), gr.skip(), gr.skip()
        if conv and conv.get("id") == picked:  # the next question starts a new conversation
            conv = new_conversation()
        off = gr.DownloadButton(value=None, interactive=False)
        return ('<div class="ok-text">Deleted.</div>', gr.Row(visible=False), listing(request), None, conv, "",
                off, off)

    with gr.Tab("Conversations", id="conversations") as tab:
        picked = gr.State(None)
        panel = gr.HTML(js_on_load=REOPEN_JS, elem_id="conversations")
        with gr.Row(equal_height=True):
            title = gr.Textbox(label="Title of the opened conversation", scale=4, max_lines=1, elem_id="conv-title")
            rename = gr.Button("Rename", size="sm", scale=0, min_width=90, elem_id="conv-rename")
            delete = gr.Button("Delete\u2026", size="sm", variant="stop", scale=0, min_width=90, elem_id="conv-delete")
        with gr.Row():
            md = gr.DownloadButton("Download Markdown", value=None, interactive=False, size="sm", elem_id="conv-md")
            js = gr.DownloadButton("Download JSON", value=None, interactive=False, size="sm", elem_id="conv-json")
        with gr.Row(visible=False, elem_id="conv-confirm") as confirm:
            gr.HTML("<b>Delete this conversation and its turns?</b> Feedback on it stays for the eval.",
                    js_on_load=None)
            yes = gr.Button("Delete for good", variant="stop", size="sm", elem_id="conv-delete-yes")
            no = gr.Button("Cancel", size="sm", elem_id="conv-delete-no")
        status = gr.HTML(js_on_load=None, elem_id="conv-status")

    opened = [chat[k] for k in ("chat", "sources", "viewer", "answer_json", "turns", "conv", "tabs")] + \
        [title, md, js, status, panel, picked]

    def wire(source):
        source.reopen(on_reopen, None, opened, api_visibility="undocumented", show_progress="hidden")

    def on_tab(request: gr.Request):
        return listing(request)

    wire(panel)
    tab.select(on_tab, None, panel, api_visibility="undocumented")
    rename.click(on_rename, [title, picked], [status, panel], api_visibility="undocumented")
    delete.click(on_delete, picked, [status, confirm], api_visibility="undocumented")
    no.click(lambda: gr.Row(visible=False), None, confirm, api_visibility="undocumented")
    yes.click(on_confirm, [picked, chat["conv"]], [status, confirm, panel, picked, chat["conv"], title, md, js],
              api_visibility="undocumented")
    return tab, panel, wire
