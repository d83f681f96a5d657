"""Conversations, feedback, corpus management and the chat fixes of issue 17 in headless Chromium.

One app per module over a copy of the UI index plus a small Markdown document (tides.md). The
tests run in file order and build on each other: the 8-question conversation of the first test is
rated, reopened after a restart and exported by the next ones; the last one deletes tides.md.
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import open_app

pytestmark = [pytest.mark.browser, pytest.mark.real_model]

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "app.png"  # the README's picture of the app
ARTIFACTS = ROOT / "tests" / "artifacts"  # git-ignored
TIDES = ("# Tides and the Moon\n\nTides are caused mainly by the gravitational pull of the Moon on the oceans.\n\n"
         "## Spring tides\n\nSpring tides happen twice a month, when the Sun, the Earth and the Moon line up.\n\n"
         "<script>window.__pwned = 1</script> <img src=x onerror=\"window.__pwned = 2\">\n\n"
         "[a harmless looking link](javascript:window.__pwned=3)\n")
QUESTIONS = [  # alternating documents, so the viewer has to move each time
    ("What causes tides?", "Tides and the Moon"),
    ("What has Made in China 2025 aimed to transform China into at its core?", "Made in China 2025, Explained"),
    ("When do spring tides happen?", "Tides and the Moon"),
    ("When was Made in China 2025 launched?", "Made in China 2025, Explained"),
    ("Which country's program inspired Made in China 2025?", "Made in China 2025, Explained"),
    ("What pulls on the oceans to make tides?", "Tides and the Moon"),
    ("How often do spring tides happen?", "Tides and the Moon"),
    ("What does Made in China 2025 want to reduce dependence on?", "Made in China 2025, Explained"),
]
# The scrolling box around the chat (gradio's container) and where the newest message sits in it.
SCROLL = """() => {
  const chat = document.querySelector('#chat');
  const boxes = [chat, ...chat.querySelectorAll('*')].filter((e) => {
    const y = getComputedStyle(e).overflowY;
    return (y === 'auto' || y === 'scroll') && e.scrollHeight > e.clientHeight + 1;
  });
  const box = boxes[0], last = [...chat.querySelectorAll('.msg')].pop();
  const b = box.getBoundingClientRect(), m = last.getBoundingClientRect();
  return {top: box.scrollTop, height: box.scrollHeight, client: box.clientHeight, boxTop: b.top,
          boxBottom: b.bottom, msgTop: m.top, msgBottom: m.bottom, window: window.innerHeight};
}"""


def _reports(folder: Path) -> None:
    """An eval report as `rag eval` writes it: eval-hybrid.json, .md (a Markdown table) and .png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True)
    (folder / "eval-hybrid.json").write_text(json.dumps(
        {"metrics": {"retrieval": {"hit@5": 0.875, "mrr": 0.71}, "answer": {"accuracy": 0.62}},
         "gate": {"passed": True}}))
    (folder / "eval-hybrid.md").write_text("# Eval report\n\n**Gate: PASS** (against eval/baseline.json).\n\n"
                                           "| metric | now |\n| --- | ---: |\n| hit@5 | 0.875 |\n")
    fig, ax = plt.subplots(figsize=(12, 7))
    ax.plot([1, 2, 3], [0.5, 0.7, 0.9])
    ax.set_title("hit@k by k")
    fig.savefig(folder / "eval-hybrid.png", dpi=110)
    plt.close(fig)


class App:
    """The launched app; `restart` stops it and starts a fresh Rag and app on the same folders."""

    def __init__(self, settings, embedder, reports):
        self.settings, self.embedder, self.reports, self.demo = settings, embedder, reports, None

    def start(self):
        from conftest import free_port

        from rag.pipeline import Rag
        from rag.ui import build_app, launch

        self.settings = self.settings.replace(port=free_port())
        self.rag = Rag(self.settings, embedder=self.embedder)
        self.rag.build(log=lambda *_: None)
        self.demo = build_app(self.rag, reports_dir=self.reports)
        self.url = launch(self.demo, self.settings)
        return self

    def restart(self):
        self.demo.close()
        return self.start()


@pytest.fixture(scope="module")
def app(ui_rag, tmp_path_factory):
    root = tmp_path_factory.mktemp("conversations")
    shutil.copytree(ui_rag.settings.corpus_dir, root / "corpus")
    shutil.copytree(ui_rag.settings.index_dir, root / "index", symlinks=True)
    (root / "corpus" / "tides.md").write_text(TIDES)
    _reports(root / "reports")
    settings = ui_rag.settings.replace(corpus_dir=root / "corpus", index_dir=root / "index", data_dir=root / "data")
    running = App(settings, ui_rag.embedder, root / "reports").start()
    yield running
    running.demo.close()


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    context.route(lambda url: not url.startswith(("http://127.0.0.1", "data:", "blob:")), lambda r: r.abort())
    page = context.new_page()
    open_app(page, app.url)
    yield page
    context.close()


def ask(page, question, answered: int):
    from playwright.sync_api import expect

    page.streams.settle()  # the load event, or the last answer's chained events, have run
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    expect(page.locator("#chat .msg.bot:not(.streaming)")).to_have_count(answered, timeout=30_000)


def test_the_chat_scrolls_to_the_newest_message_and_the_viewer_follows_the_latest_answer(page):
    from playwright.sync_api import expect

    for i, (question, title) in enumerate(QUESTIONS, start=1):
        ask(page, question, i)
        if i <= 2:  # the viewer shows the newest answer's first cited passage, not the first answer's
            expect(page.locator("#viewer .doc-head")).to_contain_text(title, timeout=15_000)
            expect(page.locator("#viewer mark#focus")).to_be_visible()
    expect(page.locator("#viewer .doc-head")).to_contain_text(QUESTIONS[-1][1], timeout=15_000)
    page.wait_for_function(f"() => {{ const s = ({SCROLL})(); return s.top + s.client >= s.height - 2; }}",
                           timeout=10_000)
    s = page.evaluate(SCROLL)
    print(f"\nchat after {len(QUESTIONS)} questions: scrollTop {s['top']:.0f} + {s['client']} of {s['height']} px")
    assert s["height"] > s["client"] * 1.5, "8 answers should overflow the chat box"
    assert s["top"] + s["client"] >= s["height"] - 2  # scrolled to the end
    assert s["boxTop"] - 1 <= s["msgTop"] and s["msgBottom"] <= s["boxBottom"] + 1  # newest message in view
    assert 0 <= s["msgTop"] and s["msgBottom"] <= s["window"]
    assert page.evaluate("window.scrollY") == 0  # the viewer followed each answer without moving the page


def test_thumbs_down_becomes_a_candidate_and_the_eval_panel_lists_it(page, app, tmp_path):
    from playwright.sync_api import expect

    from rag.cli import main
    from rag.feedback import read_jsonl

    ask(page, QUESTIONS[0][0], 1)
    page.locator("#feedback-comment textarea").fill("should say the Sun too")
    page.locator("#thumbs-down").click()
    expect(page.locator("#feedback-status")).to_contain_text("\U0001f44e recorded for the latest answer")

    candidates, s = tmp_path / "candidates.jsonl", app.settings
    assert main(["feedback", "to-gold", "--candidates", str(candidates), "--corpus-dir", str(s.corpus_dir),
                 "--index-dir", str(s.index_dir), "--data-dir", str(s.data_dir)]) == 0
    (c,) = read_jsonl(candidates)
    assert c["question"] == QUESTIONS[0][0] and c["needs_review"] is True and c["passages"]
    assert c["source"]["comment"] == "should say the Sun too" and c["given_citations"][0]["doc_id"] == "tides.md"

    page.get_by_role("tab", name="Eval").click()
    panel = page.locator("#eval-feedback")
    expect(panel).to_contain_text("\U0001f44e 1")
    expect(panel).to_contain_text(QUESTIONS[0][0])
    expect(panel).to_contain_text("should say the Sun too")
    # the metrics table is an HTML table, the gate is bold text, and the Markdown report is rendered
    expect(page.locator("#eval table.metrics tr", has_text="retrieval.hit@5")).to_contain_text("0.8750")
    expect(page.locator("#eval b", has_text="Gate: PASS").first).to_be_visible()
    assert "**" not in page.locator("#eval").inner_text() and "| ---" not in page.locator("#eval").inner_html()
    page.set_viewport_size({"width": 420, "height": 860})
    plot = page.evaluate("""() => { const i = document.querySelector('#eval img.plot'), b = i.closest('.plot-box');
        return {shown: i.clientWidth, natural: i.naturalWidth, box: b.clientWidth, scroll: b.scrollWidth}; }""")
    print(f"\nplot at 420 px: shown {plot['shown']} of {plot['natural']} px in a {plot['box']} px box")
    assert plot["shown"] == plot["natural"] > plot["box"] and plot["scroll"] > plot["box"]  # scrolls, not shrunk
    page.set_viewport_size({"width": 1280, "height": 860})

    panel.locator("a.reopen").first.click()  # the 👎 answer's conversation, back in the chat
    expect(page.locator("#chat .msg.bot")).to_have_count(1, timeout=15_000)
    expect(page.locator("#chat .msg.user")).to_contain_text(QUESTIONS[0][0])


def test_a_conversation_reopens_after_a_restart_exports_renames_and_deletes(browser, app):
    from playwright.sync_api import expect

    app.restart()
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = context.new_page()
    try:
        open_app(page, app.url)
        page.get_by_role("tab", name="Conversations").click()
        listed = page.locator("#conversations a.reopen", has_text=QUESTIONS[0][0])
        expect(listed).to_have_count(2, timeout=30_000)  # the 8-question one and the rated one
        eight = page.locator("td.num", has_text=re.compile(r"^8$"))
        page.locator("#conversations tr").filter(has=eight).locator("a.reopen").click()
        expect(page.locator("#chat .msg.bot")).to_have_count(8, timeout=15_000)
        assert page.locator("#chat a.cite").count() >= 8  # citations are links again
        expect(page.locator("#sources .src").first).to_be_visible()
        expect(page.locator("#viewer .doc-head")).to_contain_text(QUESTIONS[-1][1])
        page.wait_for_timeout(500)
        assert page.evaluate("window.scrollY") == 0  # following the newest answer never moved the page
        # docs/app.png only when missing or with RAG_UPDATE_DOCS=1 (as docs/tour.png): a new picture on every
        # run would leave the work tree dirty; otherwise it goes to tests/artifacts/ to compare by eye
        shot = SCREENSHOT if os.environ.get("RAG_UPDATE_DOCS") == "1" or not SCREENSHOT.exists() else ARTIFACTS / "app.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
        _shrink(shot)
        assert SCREENSHOT.exists() and SCREENSHOT.stat().st_size < 400_000

        page.get_by_role("tab", name="Conversations").click()
        with page.expect_download() as got:
            page.locator("#conv-md").click()
        md = Path(got.value.path()).read_text()
        assert md.startswith(f"# {QUESTIONS[0][0]}") and "[^1]: \u201c" in md and "## 8. " in md
        with page.expect_download() as got:
            page.locator("#conv-json").click()
        turns = json.loads(Path(got.value.path()).read_text())
        assert [t["question"] for t in turns] == [q for q, _ in QUESTIONS]
        assert turns[0]["citations"] and not any(c["stale"] for t in turns for c in t["citations"])

        page.locator("#conv-title input, #conv-title textarea").first.fill("Tides and industry")
        page.locator("#conv-rename").click()
        expect(page.locator("#conversations a.reopen", has_text="Tides and industry")).to_have_count(1)
        page.locator("#conv-delete").click()
        expect(page.locator("#conv-confirm")).to_be_visible()
        page.locator("#conv-delete-yes").click()
        expect(page.locator("#conversations a.reopen", has_text="Tides and industry")).to_have_count(0)
        expect(page.locator("#conversations a.reopen")).to_have_count(1)
    finally:
        context.close()


def _shrink(path: Path) -> None:
    """A 256-colour PNG: the README picture stays small in git."""
    from PIL import Image

    Image.open(path).convert("RGB").quantize(colors=256).save(path, optimize=True)


def test_delete_a_document_and_replace_an_upload_from_the_corpus_tab(page, app, tmp_path):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Corpus").click()
    row = page.locator("#corpus tr", has_text="tides.md")
    expect(row).to_contain_text("MD")
    row.locator("a.doc-open").click()
    viewer = page.locator("#doc-viewer")
    expect(viewer.locator("h1")).to_have_text("Tides and the Moon")  # rendered Markdown, not '# Tides'
    expect(viewer.locator("h2")).to_have_text("Spring tides")
    expect(viewer).to_contain_text("<script>window.__pwned = 1</script>")  # shown as text, never run
    assert viewer.locator("script, img").count() == 0 and viewer.locator("a[href^=javascript]").count() == 0
    assert page.evaluate("window.__pwned === undefined")

    row.locator("a.doc-delete").click()
    expect(page.locator("#doc-confirm")).to_contain_text("Delete tides.md")
    page.locator("#doc-delete-yes").click()
    expect(page.locator("#upload-status")).to_contain_text("Deleted tides.md", timeout=30_000)
    expect(page.locator("#corpus tr", has_text="tides.md")).to_have_count(0)
    page.get_by_role("tab", name="Chat").click()
    ask(page, "What causes tides?", 1)
    assert "gravitational pull" not in page.locator("#chat .msg.bot").inner_text()
    assert "tides.md" not in page.locator("#sources").inner_text()

    page.get_by_role("tab", name="Corpus").click()
    upload, status = page.locator("#upload input[type=file]"), page.locator("#upload-status")
    first, second = tmp_path / "a" / "notes.md", tmp_path / "b" / "notes.md"
    for path, text in ((first, "# Notes\n\nOtters hold hands while they sleep."),
                       (second, "# Notes\n\nWombats leave cube shaped droppings.")):
        path.parent.mkdir()
        path.write_text(text)
    upload.set_input_files(str(first))
    expect(status).to_contain_text("Added notes.md", timeout=30_000)
    page.locator("#upload button[aria-label=Clear]").click()
    expect(status).to_have_text("")  # the old success line goes with the file
    upload.set_input_files(str(second))
    expect(status).to_contain_text("notes.md already exists with different content", timeout=30_000)
    page.locator("#replace-yes").click()
    expect(status).to_contain_text("Replaced notes.md", timeout=30_000)
    assert (app.settings.corpus_dir / "notes.md").read_text() == second.read_text()

    page.locator("#upload button[aria-label=Clear]").click()
    bad = tmp_path / "bad.sh"
    bad.write_text("echo hi")
    upload.set_input_files(str(bad))  # gradio refuses it with its own toast
    expect(page.locator("body")).to_contain_text("Invalid file type")
    expect(status).to_have_text("")  # no green line left beside the error
