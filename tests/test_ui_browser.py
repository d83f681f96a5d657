"""One real-browser flow through the chat app in headless Debian Chromium, with an offline check."""

from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import open_app

pytestmark = [pytest.mark.browser, pytest.mark.real_model]

LOCAL = {"127.0.0.1", "localhost", "::1", "[::1]"}
SCREENSHOT = Path(__file__).resolve().parent / "artifacts" / "ui-chat.png"  # tests/artifacts/ is git-ignored

# Count how many different partial answers the page shows while the answer streams.
WATCH_STREAM = """() => {
  window.__partials = new Set();
  const chat = document.querySelector('#chat');
  new MutationObserver(() => {
    const s = chat.querySelector('.msg.streaming .answer-text');
    if (s) window.__partials.add(s.textContent);
  }).observe(chat, {childList: true, subtree: true, characterData: true});
}"""
IN_VIEW = """(m) => {
  const r = m.getBoundingClientRect(), box = m.closest('.doc-text').getBoundingClientRect();
  return r.top >= box.top && r.bottom <= box.bottom + 1 && r.top >= 0 && r.bottom <= window.innerHeight;
}"""


def test_ask_click_citation_and_stay_offline(browser, ui_url):
    from playwright.sync_api import expect

    requests = []
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    # Anything external is recorded and refused, so the test never waits on the internet.
    context.route(lambda url: urlparse(url).hostname not in LOCAL and urlparse(url).scheme in ("http", "https"),
                  lambda route: route.abort())
    try:
        open_app(page, ui_url)
        box = page.locator("#question textarea")
        page.evaluate(WATCH_STREAM)
        box.fill("What has Made in China 2025 aimed to transform China into at its core?")
        page.locator("#ask").click()

        answer = page.locator("#chat .msg.bot.answer")
        expect(answer).to_contain_text("manufacturing superpower", timeout=30_000)
        assert page.evaluate("window.__partials.size") >= 3, "the answer should build up in several steps"
        cite = answer.locator("a.cite").first
        expect(cite).to_be_visible()
        source_span = page.locator("#sources mark.span", has_text="manufacturing superpower")
        expect(source_span).to_be_visible()

        # open the citation behind the answering sentence: its [n] in the answer, not the sources panel
        cited = page.locator("#sources .src").filter(has=page.locator("mark.span", has_text="manufacturing superpower"))
        n = cited.locator("a.src-n").get_attribute("data-n")
        page.streams.settle()  # the answer's chained events (viewer, Explain) have run
        answer.locator(f'a.cite[data-n="{n}"]').click()
        focus = page.locator("#viewer mark#focus")
        expect(focus).to_contain_text("manufacturing superpower", timeout=15_000)
        expect(page.locator("#viewer .doc-head")).to_contain_text("Made in China 2025, Explained")
        expect(page.locator("#sources .src.active mark.span")).to_contain_text("manufacturing superpower")  # its source card too
        page.wait_for_function("() => document.querySelector('#viewer .doc-text').scrollTop > 0")
        page.wait_for_function(f"() => ({IN_VIEW})(document.querySelector('#viewer mark#focus'))")
        # the whole document is there, not just the passage
        assert len(page.locator("#viewer .doc-text").inner_text()) > 20_000

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    finally:
        context.close()
    loopback = [u for u in requests if urlparse(u).hostname in LOCAL]
    external = [u for u in requests if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname not in LOCAL]
    assert loopback, "no requests were recorded at all"
    assert not external, f"the page fetched from outside this machine: {external[:5]}"
