"""The built site in Debian's headless Chromium via Playwright: CSP-clean, search works, links resolve."""

from __future__ import annotations

import xml.etree.ElementTree as ET

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


def axe_violations(page) -> list[str]:
    """axe-core (bundled by axe-playwright-python) on the page as shown: one line per violated rule and node."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {n['target']} {n.get('failureSummary', '')[:200]}"
        for v in results.response["violations"]
        for n in v["nodes"]
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_violation(served_site, browser, scheme):
    """Every page of the site (home, items, tags, weeks, archive, search with results) under axe-core."""
    base = served_site
    page = browser.new_page()
    page.emulate_media(color_scheme=scheme)
    sitemap = ET.fromstring(page.request.get(f"{base}/sitemap.xml").body())
    paths = [loc.text.split("/", 3)[3] for loc in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    kinds = {p.split("/")[0] for p in paths if "/" in p}
    assert {"items", "tags", "weeks"} <= kinds and "index.html" in paths and "weeks/index.html" in paths
    found = {}
    for path in [*paths, "search.html?q=quantization"]:
        page.goto(f"{base}/{path}")
        if "?q=" in path:
            page.wait_for_selector("#search-results li a", timeout=15000)
        found[path] = axe_violations(page)
    page.close()
    assert found == {path: [] for path in found}, found


def test_search_runs_as_you_type_and_shows_each_results_facts(served_site, browser):
    page = browser.new_page()
    page.goto(f"{served_site}/search.html")
    page.type("#search-q", "quantization", delay=20)  # no Enter: the debounced input handler searches
    page.wait_for_selector("#search-status:has-text('1 result for')", timeout=15000)
    assert "q=quantization" in page.url
    hit = page.locator("#search-results li").first
    meta = hit.locator("p.meta").inner_text()
    assert "2026-11-24" in meta and "KV cache" in meta, meta  # date and topic
    assert "80%" in hit.locator("p.headline").inner_text()
    # Page chrome is not indexed: no indexed text holds the headings, scores or links around the findings.
    indexed = page.evaluate(
        """async () => {
          const pf = await import(new URL("pagefind/pagefind.js", location.href).href);
          const texts = [];
          for (const q of ["cache", "decoding", "evil", "draft"]) {
            const found = await pf.search(q);
            for (const r of found.results) texts.push((await r.data()).content);
          }
          return texts;
        }"""
    )
    assert len(indexed) >= 4
    for text in indexed:
        for chrome in ("Key points", "Headline numbers", "Topics", "JSON Feed", "Archive", "0.", "Links", "BibTeX"):
            assert chrome not in text, (chrome, text)
    page.close()
