"""The demo, end to end, with the real bundled model: snapshot -> loopback HTTP -> DB -> site + newsletter."""

import email
import os

import pytest

from digest.cli import main
from tests.conftest import ROOT, open_tag_then_item

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from click.testing import CliRunner

    ws = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(main, ["demo", "--workspace", str(ws)], catch_exceptions=False)
    return result, ws


def test_demo_prints_where_outputs_are(demo_run):
    result, ws = demo_run
    assert result.exit_code == 0, result.output
    assert f"Site: {ws / 'site' / 'index.html'}" in result.output
    assert "Newsletter: " in result.output
    assert "Reproduction hooks: 2 diverged, 3 reproduced" in result.output


def test_demo_site_shows_repro_verdicts(demo_run):
    _, ws = demo_run
    pages = "\n".join(p.read_text() for p in (ws / "site" / "items").glob("*.html"))
    assert 'class="verdict verdict-reproduced"' in pages and 'class="verdict verdict-diverged"' in pages


def test_demo_site_has_items_and_tags(demo_run):
    _, ws = demo_run
    site = ws / "site"
    assert len(list((site / "items").glob("*.html"))) >= 150
    assert len([p for p in (site / "tags").glob("*.html") if p.name != "index.html"]) >= 8
    pages = "\n".join(p.read_text() for p in site.rglob("*.html"))
    for needle in ("https://fonts.googleapis", "cdn.", '<script src="http'):
        assert needle not in pages


def test_every_seed_item_appears(demo_run):
    _, ws = demo_run
    import html

    pages = html.unescape("\n".join(p.read_text() for p in (ws / "site" / "items").glob("*.html")))
    titles = (ROOT / "data" / "snapshot" / "expected_titles.txt").read_text().splitlines()
    missing = [t for t in titles if t.strip() and t.strip() not in pages]
    assert not missing, missing[:5]


def test_demo_db_has_real_embeddings_tags_and_claims(demo_run):
    _, ws = demo_run
    from tests.conftest import DB

    db = DB(f"sqlite:///{ws / 'digest.db'}")
    assert db.one("SELECT count(*) FROM item WHERE kind='paper'") >= 150
    model, dim = db.rows("SELECT model, dim FROM embedding LIMIT 1")[0]
    assert (model, dim) == ("all-MiniLM-L6-v2", 384)
    assert db.one("SELECT count(DISTINCT topic_slug) FROM itemtopic") >= 8
    assert db.one("SELECT count(*) FROM claim") >= 50
    # Blog posts about a paper on arXiv are folded into that paper as coverage.
    assert db.one("SELECT count(*) FROM item WHERE covers_item_id IS NOT NULL") >= 3


def test_demo_newsletter_parses(demo_run):
    _, ws = demo_run
    eml = next((ws / "newsletter").glob("*.eml"))
    msg = email.message_from_bytes(eml.read_bytes())
    assert msg["Subject"].startswith("Digest, week ")
    assert [p.get_content_type() for p in msg.walk() if not p.is_multipart()] == ["text/plain", "text/html"]


def test_site_in_headless_chromium(browser, demo_run, tmp_path):
    """The built site in a real browser: no console errors, tag links resolve.

    Screenshots go to a temporary folder; DIGEST_SCREENSHOTS=1 writes them over the tracked docs/*.png instead.
    """
    from tests.conftest import serve_folder

    _, ws = demo_run
    shots = ROOT / "docs" if os.environ.get("DIGEST_SCREENSHOTS") == "1" else tmp_path
    errors: list[str] = []
    with serve_folder(ws / "site") as base:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/index.html")
        assert page.locator("article.finding").count() > 10
        page.screenshot(path=str(shots / "screenshot-home.png"))
        open_tag_then_item(page)
        page.screenshot(path=str(shots / "screenshot-item.png"), full_page=False)
        # Client-side search (Pagefind) finds a known finding by a word of its title.
        page.goto(f"{base}/search.html?q=DFlash")
        page.wait_for_selector("#search-results li a", timeout=15000)
        assert any("DFlash" in t for t in page.locator("#search-results li a").all_inner_texts())
        page.screenshot(path=str(shots / "screenshot-search.png"), full_page=False)
    assert not errors, errors
