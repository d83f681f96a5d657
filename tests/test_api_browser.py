"""`rag serve` (app + API) in headless Debian Chromium: the app works under its Content-Security-Policy, the
browser reports no violation, and no request leaves 127.0.0.1."""

from urllib.parse import urlparse

import pytest

from conftest import ARGS, CHROMIUM, open_app

pytestmark = [pytest.mark.browser, pytest.mark.real_model]

# Recorded before any page script runs: every CSP violation the browser reports.
RECORD_VIOLATIONS = """window.__violations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"""


def test_app_and_docs_work_under_the_csp_and_stay_local(api_server):
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing; run `make browser` (apt-get install chromium)")
    requests, refused = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        context.add_init_script(RECORD_VIOLATIONS)
        context.on("request", lambda r: requests.append(r.url))
        context.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page = context.new_page()
        page.on("websocket", lambda ws: requests.append(ws.url))
        context.route(lambda url: urlparse(url).hostname != "127.0.0.1" and urlparse(url).scheme != "data",
                      lambda route: route.abort())  # recorded above, refused here: never waits on the internet
        try:
            response = open_app(page, api_server.url)
            csp = response.headers.get("content-security-policy", "")
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert response.headers.get("x-frame-options") == "DENY"

            page.locator("#question textarea").fill("What has Made in China 2025 aimed to transform China into at its core?")
            page.locator("#ask").click()
            answer = page.locator("#chat .msg.bot.answer")
            expect(answer).to_contain_text("manufacturing superpower", timeout=30_000)
            cited = page.locator("#sources .src").filter(
                has=page.locator("mark.span", has_text="manufacturing superpower"))
            n = cited.locator("a.src-n").get_attribute("data-n")
            page.streams.settle()
            answer.locator(f'a.cite[data-n="{n}"]').click()  # citations open under the policy (js_on_load)
            expect(page.locator("#viewer mark#focus")).to_contain_text("manufacturing superpower", timeout=15_000)
            page.streams.settle()
            page.get_by_role("tab", name="Corpus").click()
            expect(page.locator("#corpus")).to_contain_text("made-in-china-2025-explained.txt", timeout=15_000)
            assert page.evaluate("window.__violations") == []

            docs = page.goto(api_server.url + "api/docs")
            assert "default-src 'self'" in docs.headers.get("content-security-policy", "")
            expect(page.locator("h1")).to_contain_text("rag HTTP API")
            assert page.evaluate("window.__violations") == []
        finally:
            context.close()
            browser.close()
    assert refused == [], refused
    outside = [u for u in requests if urlparse(u).hostname != "127.0.0.1" and not u.startswith("data:")]
    assert requests and outside == [], outside
