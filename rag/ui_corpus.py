"""The Corpus tab: each document's title, type, size, chunk count and index time, opened in a
viewer (Markdown rendered, never raw HTML from a document), deleted after a confirmation, and
uploads that ask before replacing a different document of the same name.

Documents are untrusted: Markdown is rendered by markdown-it with raw HTML off (it is escaped),
images off (nothing is fetched) and its link check (no javascript:, vbscript:, file: or data:).
"""

import logging
from pathlib import Path

from .errors import RagError
from .ui_render import BIDI, UPLOAD_SUFFIXES, _stamp, counted, esc
from .ui_upload import add_document, delete_document, taken

log = logging.getLogger(__name__)
MARKDOWN = (".md", ".markdown")
VIEW_LIMIT = 200_000  # characters shown in the corpus viewer
ASKED = "already exists with different content"

# Clicks on a document's "open" or "delete" link ask the server for the view or a confirmation.
DOCS_JS = """
element.addEventListener('click', (e) => {
  const a = e.target.closest('a.doc-open, a.doc-delete');
  if (!a || !element.contains(a)) return;
  e.preventDefault();
  trigger(a.classList.contains('doc-open') ? 'view' : 'remove', {doc: a.dataset.doc});
});
"""


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} B"


def render_documents(manifest: dict | None, corpus_dir: Path, error: str = "") -> str:
    """The indexed documents: title, type, size on disk, chunks, index time, and open/delete links."""
    if manifest is None:
        return f'<div class="panel-empty">\u26a0 {esc(error or "no index yet")}</div>'
    docs = manifest.get("documents", [])
    rows = []
    for d in docs:
        doc_id = str(d.get("id", ""))
        try:
            size = _size((Path(corpus_dir) / doc_id).stat().st_size)
        except OSError:
            size = f"{int(d.get('chars', 0)):,} chars"
        kind = Path(doc_id).suffix.lstrip(".").upper() or "?"
        link = f'href="#" role="button" data-doc="{esc(doc_id)}"'
        rows.append(f'<tr><td><a class="doc-open" {link} title="open in the viewer">{esc(d.get("title", ""))}</a>'
                    f'<div class="src-meta mono">{esc(doc_id)}</div></td><td>{esc(kind)}</td>'
                    f'<td class="num">{esc(size)}</td><td class="num">{int(d.get("chunks", 0))}</td>'
                    f'<td>{esc(_stamp(d.get("indexed_at", "")))}</td>'
                    f'<td><a class="doc-delete" {link} title="delete from the corpus and the index">delete</a>'
                    "</td></tr>")
    total = sum(int(d.get("chunks", 0)) for d in docs)
    return (f'<div class="corpus"><div class="panel-title">{counted(len(docs), "document")}, '
            f'{counted(total, "chunk")} \u00b7 last indexed {esc(_stamp(manifest.get("built_at", "")))}</div>'
            '<table class="table"><thead><tr><th>Title</th><th>Type</th><th class="num">Size</th>'
            '<th class="num">Chunks</th><th>Indexed at</th><th></th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def markdown_html(text: str) -> str:
    """Untrusted Markdown as safe HTML: raw HTML escaped, no images, unsafe link schemes dropped."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").disable("image")

    def link_open(renderer, tokens, idx, options, env):
        tokens[idx].attrSet("target", "_blank")
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md.render(BIDI.sub("", text))


def render_view(doc) -> str:
    """A whole document for reading: Markdown files rendered, other text as it is (escaped)."""
    if doc is None:
        return '<div class="panel-empty">Click a document\u2019s title to read it here.</div>'
    text, note = doc.text, ""
    if len(text) > VIEW_LIMIT:
        text, note = text[:VIEW_LIMIT], f'<div class="hint">Showing the first {VIEW_LIMIT:,} characters.</div>'
    box = 'tabindex="0" role="region" aria-label="Document text"'  # a scrolling box reachable from the keyboard
    body = (f'<div class="doc-md" {box}>{markdown_html(text)}</div>' if doc.id.lower().endswith(MARKDOWN)
            else f'<div class="doc-text" {box}>{esc(text)}</div>')
    return (f'<div class="doc-view"><div class="doc-head"><span class="src-title">{esc(doc.title)}</span>'
            f'<span class="src-meta"> \u00b7 {esc(doc.id)}</span></div>{note}{body}</div>')


def _ok(text: str) -> str:
    return f'<div class="ok-text">\u2714 {esc(text)}</div>'


def _error(text) -> str:
    return f'<div class="error-text">\u26a0 {esc(text)}</div>'


def documents_html(rag) -> str:
    try:
        return render_documents(rag.index.manifest, rag.settings.corpus_dir)
    except RagError as e:
        return render_documents(None, rag.settings.corpus_dir, str(e))


def corpus_tab(gr, rag, max_mb: int, chooser=None, chosen=None):
    """The Corpus tab's components and events (inside the current gr.Tabs); returns (tab, table).
    When the `chooser` (ui_collections.Chooser) offers several collections, a "Collection" dropdown
    chooses where uploads go (and whose documents the table lists): the chat's first collection
    (the `chosen` checkboxes) each time that choice changed, else what the user picked here."""

    def where(name):  # the pipeline of the chosen collection, or the served one
        return chooser.pick([name]) if chooser is not None and isinstance(name, str) and name else rag

    def run(action, *args) -> str:
        try:
            return _ok(action(*args))
        except RagError as e:
            return _error(e)
        except Exception as e:  # a disk or index failure: one line here, the traceback in the server log
            log.exception("%s failed", getattr(action, "__name__", "a corpus change"))
            return _error(f"could not change the corpus ({type(e).__name__}: {e})")

    def hidden():  # an update, made inside a handler (at build time it would add a Row to the page)
        return gr.Row(visible=False)

    def on_upload(path, name=None):
        if not path:
            return gr.skip(), gr.skip()
        r = where(name)
        try:
            taken_name = taken(r, path)
        except RagError as e:
            return _error(e), documents_html(r)
        if taken_name:  # ask first; the API gets the question and nothing changes until a button is pressed
            return (f'<div class="error-text">\u26a0 {esc(taken_name)} {ASKED}. '
                    "Replace it, or keep both (the upload is saved under a new name)?</div>"), gr.skip()
        return run(add_document, r, path), documents_html(r)

    def on_asked(path, status):  # the replace question's buttons, shown only when on_upload asked it
        asked = bool(path) and ASKED in str(status)
        return gr.Row(visible=asked), path if asked else None

    def on_replace(pending, name, replace: bool):
        if not pending:
            return _error("upload the file again"), gr.skip(), hidden()
        r = where(name)
        return run(lambda p: add_document(r, p, replace=replace), pending), documents_html(r), hidden()

    def on_view(name, evt: gr.EventData):
        data = evt._data if isinstance(evt._data, dict) else {}
        try:
            doc = where(name).index.documents.get(data.get("doc"))
        except RagError as e:
            return _error(e)
        return render_view(doc) if doc is not None else _error(f"{str(data.get('doc'))[:200]!r} is not in the index")

    def on_remove(evt: gr.EventData):
        doc = (evt._data if isinstance(evt._data, dict) else {}).get("doc")
        return (f'<b>Delete {esc(doc)} from the corpus folder and the index?</b> Answers stop using it at once.',
                gr.Row(visible=True), doc)

    def on_confirm(doc, name):
        r = where(name)
        return run(delete_document, r, doc), documents_html(r), hidden(), None, render_view(None)

    def shown(name):
        return documents_html(where(name))

    with gr.Tab("Corpus", id="corpus") as tab:
        offered = chooser is not None and chooser.offered
        target = gr.Dropdown(chooser.names, value=chooser.served[0], label="Collection", elem_id="upload-collection",
                             info="uploads go into this collection; the table lists its documents") if offered \
            else gr.State(None)
        table = gr.HTML(js_on_load=DOCS_JS, elem_id="corpus")
        with gr.Row(visible=False, elem_id="doc-confirm") as confirm:
            question = gr.HTML(js_on_load=None)
            yes = gr.Button("Delete for good", variant="stop", size="sm", elem_id="doc-delete-yes")
            no = gr.Button("Cancel", size="sm", elem_id="doc-delete-no")
        upload = gr.File(label=f"Add a document ({' '.join(UPLOAD_SUFFIXES)}; up to {max_mb} MB)",
                         file_types=list(UPLOAD_SUFFIXES), type="filepath", elem_id="upload")
        status = gr.HTML(js_on_load=None, elem_id="upload-status")
        with gr.Row(visible=False, elem_id="replace-confirm") as ask:
            replace = gr.Button("Replace it", variant="stop", size="sm", elem_id="replace-yes")
            keep = gr.Button("Keep both", size="sm", elem_id="replace-keep")
            cancel = gr.Button("Cancel", size="sm", elem_id="replace-no")
        viewer = gr.HTML(render_view(None), js_on_load=None, elem_id="doc-viewer")
        pending, doomed = gr.State(None), gr.State(None)

    # Clearing the file box clears the last upload's message, so a file gradio then rejects (wrong type,
    # too big: its own error toast, no upload event) never sits beside an old green success line.
    upload.clear(lambda: ("", hidden(), None), None, [status, ask, pending], api_visibility="undocumented",
                 show_progress="hidden", queue=False)
    upload.upload(on_upload, [upload, target], [status, table], api_name="upload", concurrency_limit=1).then(
        on_asked, [upload, status], [ask, pending], api_visibility="undocumented", show_progress="hidden")
    replace.click(lambda p, n: on_replace(p, n, True), [pending, target], [status, table, ask],
                  api_visibility="undocumented", concurrency_limit=1)
    keep.click(lambda p, n: on_replace(p, n, False), [pending, target], [status, table, ask],
               api_visibility="undocumented", concurrency_limit=1)
    cancel.click(lambda: (_error("upload cancelled; the corpus is unchanged"), hidden()), None, [status, ask],
                 api_visibility="undocumented")
    table.view(on_view, target, viewer, api_visibility="undocumented", show_progress="hidden")
    table.remove(on_remove, None, [question, confirm, doomed], api_visibility="undocumented", show_progress="hidden")
    no.click(lambda: (hidden(), None), None, [confirm, doomed], api_visibility="undocumented")
    yes.click(on_confirm, [doomed, target], [status, table, confirm, doomed, viewer], api_visibility="undocumented",
              concurrency_limit=1)
    if not offered or chosen is None:
        tab.select(shown, target, table, api_visibility="undocumented")
        return tab, table
    # the chat's first collection when the tab was last opened: a new one there sets the dropdown again
    followed = gr.State(chooser.served[0])

    def on_enter(name, chat, last):
        first = chooser.first(chat)
        name = first if first != last else name
        return name, shown(name), first

    tab.select(on_enter, [target, chosen, followed], [target, table, followed], api_visibility="undocumented")
    target.input(lambda n: (shown(n), render_view(None)), target, [table, viewer], api_visibility="undocumented",
                 show_progress="hidden")
    return tab, table
