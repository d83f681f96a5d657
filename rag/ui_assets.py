"""Static assets of the chat app: CSS, the two small click/scroll scripts and a system-font theme."""

from .ui_a11y import ANNOUNCE_JS, THEME_VARS
from .ui_a11y import CSS as A11Y_CSS
from .ui_explain import CSS as EXPLAIN_CSS

# Clicks on any [n] or "open in document" link ask the server for the document view.
CITE_JS = """
element.addEventListener('click', (e) => {
  const a = e.target.closest('a.cite');
  if (!a || !element.contains(a)) return;
  e.preventDefault();
  trigger('cite', {doc: a.dataset.doc, start: Number(a.dataset.start), end: Number(a.dataset.end)});
  // mark the same passage in the sources panel (matched by position, so older answers work too)
  const list = document.querySelector('#sources .sources');
  if (!list) return;
  list.querySelectorAll('.src.active').forEach((c) => c.classList.remove('active'));
  const card = [...list.querySelectorAll('a.src-n')].find((s) =>
    s.dataset.doc === a.dataset.doc && s.dataset.start === a.dataset.start && s.dataset.end === a.dataset.end);
  if (card) {
    const box = card.closest('.src');
    box.classList.add('active');
    list.scrollTop = box.offsetTop - 4;
  }
});
"""
# After the document view changes, scroll its text box to the highlighted span (centred), and
# scroll the page only as far as needed to show the box, so the chat stays where it was.
FOCUS_JS = """
const focus = () => {
  const m = element.querySelector('#focus'), box = element.querySelector('.doc-text');
  if (!m || !box) return;
  const mr = m.getBoundingClientRect(), top = mr.top - box.getBoundingClientRect().top + box.scrollTop;
  box.scrollTop = Math.max(0, top - Math.max(8, (box.clientHeight - mr.height) / 2));  // long spans: from their start
  const r = element.getBoundingClientRect();  // a view that follows a new answer never moves the page
  if (!element.querySelector('.doc-view.follow') && (r.top < 0 || r.bottom > window.innerHeight)) {
    element.scrollIntoView({block: 'nearest'});
  }
  m.classList.add('flash');
};
watch('value', () => requestAnimationFrame(focus));
"""
CHAT_JS = CITE_JS + ANNOUNCE_JS  # the chat panel also announces finished replies (ui_a11y.py)

# After the chat changes, scroll every scrolling box around it to the end, so the newest message
# is in view however long the conversation has grown (gradio's own autoscroll missed it).
SCROLL_JS = """
const toEnd = () => {
  for (let box = element; box && box !== document.body; box = box.parentElement) {
    const y = getComputedStyle(box).overflowY;
    if ((y === 'auto' || y === 'scroll') && box.scrollHeight > box.clientHeight + 1) box.scrollTop = box.scrollHeight;
  }
};
watch('value', () => requestAnimationFrame(toEnd));
"""

CSS = """
.gradio-container {max-width: 1400px !important}
#chat {min-height: 430px}
.app-head {display: flex; align-items: baseline; gap: 14px; flex-wrap: wrap; padding: 2px 2px 0}
.app-title {font-size: 22px; font-weight: 700}
.app-sub {font-size: 14px; color: var(--body-text-color-subdued)}
.chat {display: flex; flex-direction: column; gap: 12px; padding: 4px}
.chat-empty {padding: 32px 16px; text-align: center; color: var(--body-text-color-subdued); font-size: 15px}
.msg {display: flex}
.msg.user {justify-content: flex-end}
.msg .bubble {max-width: 88%; padding: 10px 14px; border-radius: 14px; line-height: 1.6; font-size: 15px;
  border: 1px solid var(--border-color-primary); overflow-wrap: anywhere}
.msg.user .bubble {background: var(--color-accent-soft); border-color: transparent}
.msg.bot .bubble {background: var(--background-fill-secondary)}
.msg.refused .bubble {border: 1px solid #d97706}
.msg.error .bubble {border: 1px solid #dc2626}
.error-text {color: #b91c1c}
.ok-text {color: #15803d; font-size: 14px}
.badge {display: inline-block; font-size: 12px; font-weight: 600; padding: 1px 8px; border-radius: 999px;
  margin-bottom: 6px; text-transform: uppercase; letter-spacing: .03em}
.refused-badge {background: #fef3c7; color: #92400e}
.hint, .notice {font-size: 13px; color: var(--body-text-color-subdued); margin-top: 6px}
.cursor {animation: blink 1s steps(1) infinite; color: var(--color-accent)}
@keyframes blink {50% {opacity: 0}}
a.cite {font-weight: 600; color: var(--color-accent); text-decoration: none; cursor: pointer; padding: 0 1px}
a.cite:hover {text-decoration: underline}
.short-answer {font-size: 17px; margin-bottom: 6px}
.short-label {font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em;
  color: var(--body-text-color-subdued); margin-right: 6px}
mark.phrase {background: #fde68a; color: #1f2937; padding: 0 2px; border-radius: 3px}
.support {font-size: 13px; color: var(--body-text-color-subdued); margin-top: 6px}
.flagged {background: #fef3c7; color: #78350f; border-bottom: 2px dashed #d97706; padding: 0 2px}
.flag-icon {margin-right: 3px}
.flag-note {font-size: 13px; color: #92400e; margin-top: 8px}
mark.span {background: #fde68a; color: #1f2937; padding: 1px 2px; border-radius: 3px}
mark.flash {background: #fcd34d; box-shadow: 0 0 0 2px #fcd34d; animation: pulse 1.2s ease-out 1}
@keyframes pulse {0% {box-shadow: 0 0 0 6px #fbbf24} 100% {box-shadow: 0 0 0 2px #fcd34d}}
.panel-title {font-weight: 600; font-size: 14px; margin: 2px 0 8px}
.panel-empty {color: var(--body-text-color-subdued); padding: 14px; font-size: 14px;
  border: 1px dashed var(--border-color-primary); border-radius: 10px}
.sources {max-height: 46vh; overflow-y: auto; padding-right: 4px; position: relative}
.src {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px; margin-bottom: 10px;
  background: var(--background-fill-primary)}
.src.active {border-color: var(--color-accent); box-shadow: 0 0 0 1px var(--color-accent)}
.src-head {font-size: 14px}
.src-title {font-weight: 600}
.src-meta {font-size: 12px; color: var(--body-text-color-subdued); margin: 2px 0 6px}
.src-text {font-size: 14px; line-height: 1.55}
.doc-view {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px}
.doc-text {white-space: pre-wrap; font-size: 14px; line-height: 1.6; max-height: 48vh; overflow-y: auto;
  margin-top: 6px}
.table {border-collapse: collapse; width: 100%; font-size: 14px; border: 0 !important}
.table tr {border: 0 !important}
.table th, .table td {border: 0 !important; border-bottom: 1px solid var(--border-color-primary) !important;
  padding: 6px 10px; text-align: left; background: transparent}
.table th {font-weight: 600; color: var(--body-text-color-subdued)}
.metrics {max-width: 560px}
.report-md {font-size: 13px; max-height: 50vh; overflow: auto}
details summary {cursor: pointer; margin-top: 12px; font-size: 14px}
.table .num {text-align: right; font-variant-numeric: tabular-nums}
.mono {font-family: var(--font-mono); font-size: 13px}
.plot {max-width: 100%; margin-top: 12px; border-radius: 8px}
.plot-box {overflow-x: auto; margin-top: 12px}
.plot-box .plot {width: auto; max-width: none; margin-top: 0}  /* natural size: its 9-pt labels stay legible */
.report-html table {border-collapse: collapse; font-size: 14px; margin: 8px 0}
.report-html th, .report-html td {border-bottom: 1px solid var(--border-color-primary); padding: 4px 10px;
  text-align: left}
.report-box {overflow-x: auto}
.conversations tr.selected td {background: var(--color-accent-soft)}
.down-list {padding-left: 18px; font-size: 14px}
.down-list li {margin-bottom: 8px}
.doc-md {font-size: 15px; line-height: 1.6; max-height: 60vh; overflow-y: auto; margin-top: 6px}
.doc-md pre {white-space: pre-wrap}
#doc-confirm, #conv-confirm, #replace-confirm {align-items: center}
""" + A11Y_CSS + EXPLAIN_CSS


def theme():
    """gradio's Soft theme on system fonts: the stock themes pull Google Fonts, which breaks offline use."""
    import gradio as gr

    system = [gr.themes.Font("system-ui"), gr.themes.Font("-apple-system"), gr.themes.Font("Segoe UI"),
              gr.themes.Font("Roboto"), "sans-serif"]
    mono = [gr.themes.Font("ui-monospace"), gr.themes.Font("SFMono-Regular"), gr.themes.Font("Menlo"), "monospace"]
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate", font=system, font_mono=mono).set(**THEME_VARS)
