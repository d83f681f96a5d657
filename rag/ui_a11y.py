"""Accessibility of the chat app (WCAG 2.2 AA, checked by axe-core in tests/test_ui_a11y.py).

Theme colours that pass AA contrast, a visible focus ring at every keyboard stop, and two live
regions: new answers are read out politely (focus stays in the question box), errors assertively.
Gradio's own markup is fixed from here (CSS, theme variables, a script), never by switching rules off.
"""

# Contrast: the Soft theme's subdued text (slate-400 on slate-50, 2.45:1) and its indigo-500 accent
# (4.26:1 as text, 4.46:1 under white button text) fail AA; slate-600 and indigo-700 pass (>= 7:1).
THEME_VARS = {
    "body_text_color_subdued": "*neutral_600",
    "block_info_text_color": "*neutral_600",
    "color_accent": "*primary_700",
    "button_primary_background_fill": "*primary_700",
    "button_primary_background_fill_hover": "*primary_800",
    "button_primary_background_fill_dark": "*primary_700",
    "button_primary_text_color": "white",
    "link_text_color": "*primary_700",
    "block_label_text_color": "*primary_700",  # the upload's label (3.62:1 on its indigo-100 tag)
    "block_title_text_color": "*primary_700",
    "checkbox_label_background_fill_selected": "*primary_700",  # white text on the selected radio
    # dark mode (the browser asks for it): light indigo on the dark slate background
    "link_text_color_dark": "*primary_300",
    "block_label_text_color_dark": "white",
    "body_text_color_subdued_dark": "*neutral_300",
}

# A focus ring no page style can hide: 3px indigo outline, offset so it is not lost in a border.
CSS = """
.gradio-container :focus-visible, a.cite:focus, a.src-n:focus, .doc-text:focus, .doc-md:focus, .report-md:focus {
  outline: 3px solid #4338ca !important; outline-offset: 2px !important}
.gradio-container textarea:focus, .gradio-container input:focus {
  outline: 3px solid #4338ca !important; outline-offset: 1px !important}
/* gradio colours the upload's "Drop File Here" text indigo-500 in its own CSS (4.46:1 on white) */
#upload [data-testid="upload-text"] {color: #4338ca !important}
a.cite:focus {border-radius: 3px; background: #e0e7ff}
/* dark mode: the same rules with colours that keep 4.5:1 on gradio's dark background */
.dark .gradio-container :focus-visible, .dark a.cite:focus, .dark a.src-n:focus, .dark .doc-text:focus,
.dark .gradio-container textarea:focus, .dark .gradio-container input:focus {outline-color: #a5b4fc !important}
.dark {--color-accent: #a5b4fc !important}  /* the theme has no dark variant of color_accent */
.dark a.cite:focus {background: #312e81}
.dark #upload [data-testid="upload-text"] {color: #a5b4fc !important}
.dark .error-text {color: #fca5a5}
.dark .ok-text {color: #86efac}
.dark .flag-note {color: #fcd34d}
.sr-only {position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0}
"""

# Runs once when the chat panel mounts. The two live regions are made once, outside the chat HTML
# (which is replaced on every streamed step, and a region re-created each time is not announced).
# Only a finished reply is announced, once; streaming steps are not.
ANNOUNCE_JS = """
const region = (id, live, role) => {
  let r = document.getElementById(id);
  if (!r) {
    r = document.createElement('div');
    r.id = id; r.className = 'sr-only'; r.setAttribute('aria-live', live); r.setAttribute('role', role);
    r.setAttribute('aria-atomic', 'true');
    (document.querySelector('.gradio-container') || document.body).appendChild(r);
  }
  return r;
};
const polite = region('announce-answer', 'polite', 'status');
const alert = region('announce-error', 'assertive', 'alert');
let said = element.querySelectorAll('.msg.bot').length;
const announce = () => {
  const bots = element.querySelectorAll('.msg.bot');
  if (bots.length < said) said = 0;  // the chat was cleared
  const last = bots[bots.length - 1];
  if (!last || last.classList.contains('streaming') || bots.length === said) return;
  said = bots.length;
  const text = last.querySelector('.bubble').innerText.replace(/\\s+/g, ' ').trim();
  if (last.classList.contains('error')) { alert.textContent = text; polite.textContent = ''; }
  else { polite.textContent = text; alert.textContent = ''; }
};
watch('value', () => requestAnimationFrame(announce));
"""
