"""The built site in Debian's headless Chromium via Playwright: CSP-clean, search works, links resolve."""

from __future__ import annotations

import pytest

from digest.cli import main
from tests.conftest import open_tag_then_item, serve_folder
from tests.publish_data import published


@pytest.fixture
def served_site(runner, httpserver, tmp_path, db):
    cfg = published(httpserver, tmp_path)
    out = tmp_path / "site"
    result = runner.invoke(main, ["--config", str(cfg), "build", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with serve_folder(out) as base:
        yield base


def test_site_in_chromium_search_and_links(browser, served_site):  # browser first: no build when it skips
    base = served_site
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))

    page.goto(f"{base}/index.html")
    assert page.locator("article.finding").count() == 4
    # Every tag link on the home page resolves.
    hrefs = page.locator("a.tag").evaluate_all("els => els.map(e => e.href)")
    assert len(hrefs) >= 2
    for href in set(hrefs):
        assert page.request.get(href).status == 200, href
    open_tag_then_item(page)
    # Nothing overflows sideways on a phone, even with a 10,000-character title somewhere.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    # Search from the header box: Pagefind's WebAssembly runs under the page's CSP.
    page.goto(f"{base}/index.html")
    page.fill("header form.search input", "FastSpec")
    page.press("header form.search input", "Enter")
    page.wait_for_selector("#search-results li a", timeout=15000)
    first = page.locator("#search-results li a").first
    assert "FastSpec" in first.inner_text()
    first.click()
    page.wait_for_load_state()
    assert "/items/" in page.url and "FastSpec" in page.locator("h1").inner_text()
    page.goto(f"{base}/search.html?q=quantization")
    page.wait_for_selector("#search-status:has-text('1 result for')", timeout=15000)
    assert page.locator("#search-results li a").all_inner_texts() == ["KV cache quantization to 2 bits keeps accuracy"]
    page.close()
    assert not errors, errors
    assert not failed, failed
