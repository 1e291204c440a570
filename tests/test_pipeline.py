"""The whole pipeline through the CLI against a loopback server, with the fast fake embedder."""

import email
import email.policy
import json

import pytest

from digest.cli import main
from tests.conftest import FIXTURES, write_config


@pytest.fixture
def site(httpserver, tmp_path):
    httpserver.expect_request("/feed.xml").respond_with_data(
        (FIXTURES / "feed.xml").read_bytes(), content_type="application/rss+xml", headers={"ETag": '"f1"'}
    )
    httpserver.expect_request("/blog/").respond_with_data(
        (FIXTURES / "blog.html").read_bytes(), content_type="text/html"
    )
    httpserver.expect_request("/api/query").respond_with_data(
        (FIXTURES / "arxiv.xml").read_bytes(), content_type="application/atom+xml"
    )
    cfg = write_config(
        tmp_path,
        f"""
        [[source]]
        name = "arxiv-test"
        kind = "arxiv"
        allow_private = true
        query = "cat:cs.CL"
        [[source]]
        name = "blog-rss"
        kind = "rss"
        url = "{httpserver.url_for("/feed.xml")}"
        allow_private = true
        [[source]]
        name = "blog-html"
        kind = "html"
        url = "{httpserver.url_for("/blog/")}"
        allow_private = true
        item = "article.post"
        title = "h2"
        link = "h2 a"
        summary = "p.teaser"
        date = "time"
        tags = "ul.tags li"
        """,
        fetch=f'arxiv_api = "{httpserver.url_for("/api/query")}?{{}}"',
    )
    return cfg, tmp_path


def run(runner, cfg, *args):
    result = runner.invoke(main, ["--config", str(cfg), *args], catch_exceptions=False)
    return result


def test_ingest_tag_claims_build_newsletter_export(runner, site, db):
    cfg, tmp = site
    result = run(runner, cfg, "ingest")
    assert result.exit_code == 0, result.output
    assert "blog-rss" in result.output and "new=2" in result.output

    if db.dialect == "sqlite":
        assert db.one("PRAGMA journal_mode") == "wal"
    rows = db.rows("SELECT key, kind, arxiv_id, arxiv_version, covers_item_id FROM item ORDER BY key")
    keys = [r[0] for r in rows]
    assert "arxiv:2602.06036" in keys and "arxiv:hep-th/9901001" in keys
    paper_id = db.one("SELECT id FROM item WHERE arxiv_id='2602.06036'")
    # The blog post linking DFlash's arXiv page is coverage of the paper, not a second finding.
    assert db.one("SELECT covers_item_id FROM item WHERE key='blog-rss|guid:post-1'") == paper_id
    assert db.one("SELECT etag FROM fetchstate WHERE source='blog-rss'") == '"f1"'

    # A second run changes nothing: no duplicates.
    before = db.one("SELECT count(*) FROM item")
    assert run(runner, cfg, "ingest").exit_code == 0
    assert db.one("SELECT count(*) FROM item") == before

    assert run(runner, cfg, "tag").exit_code == 0
    assert db.one("SELECT count(*) FROM itemtopic") > 0
    result = run(runner, cfg, "claims")
    assert result.exit_code == 0
    units = {r[0] for r in db.rows("SELECT unit FROM claim")}
    assert "x" in units

    out = tmp / "site"
    result = run(runner, cfg, "build", "--out", str(out))
    assert result.exit_code == 0 and (out / "index.html").exists()
    item_pages = list((out / "items").glob("*.html"))
    assert len(item_pages) == before - 1  # the covering post folds into its paper
    dflash = next(p for p in item_pages if "2602-06036" in p.name).read_text()
    assert "6.17" in dflash and "Blog coverage</h2>" in dflash and "https://github.com/z-lab/dflash" in dflash
    assert 'name="citation_arxiv_id" content="2602.06036"' in dflash
    assert (out / "tags" / "speculative-decoding.html").exists()
    # A rebuild with nothing new rewrites nothing.
    assert "(0 files written)" in run(runner, cfg, "build", "--out", str(out)).output

    result = run(runner, cfg, "newsletter", "--week", "2026-W47", "--out", str(tmp / "nl"))
    assert result.exit_code == 0
    msg = email.message_from_bytes((tmp / "nl" / "digest-2026-W47.eml").read_bytes(), policy=email.policy.default)
    assert msg["Subject"].startswith("Digest, week 2026-W47: 5 findings in ")
    assert msg["List-Unsubscribe"] and msg["Message-ID"]
    parts = [p.get_content_type() for p in msg.walk() if not p.is_multipart()]
    assert parts == ["text/plain", "text/html"]
    html = msg.get_body(("html",)).get_content()
    assert "https://digest.test/items/" in html and "style=" in html

    lines = run(runner, cfg, "export", "--format", "jsonl").output.strip().splitlines()
    rows = [json.loads(line) for line in lines]
    assert {"id", "title", "url", "arxiv_id", "source", "published", "tags", "claims"} <= set(rows[0])
    dflash_row = next(r for r in rows if r["arxiv_id"] == "2602.06036")
    assert any(c["unit"] == "x" and c["value"] == 6.17 for c in dflash_row["claims"])

    found = json.loads(run(runner, cfg, "search", "speculative", "--json").output)
    assert [r["arxiv_id"] for r in found] == ["2602.06036"]
    assert "No results." in run(runner, cfg, "search", "nonexistentword").output


def test_hostile_feed_renders_inert(runner, httpserver, tmp_path, db):
    httpserver.expect_request("/evil.xml").respond_with_data((FIXTURES / "hostile.xml").read_bytes())
    cfg = write_config(
        tmp_path,
        f"""
        [[source]]
        name = "evil"
        kind = "rss"
        url = "{httpserver.url_for("/evil.xml")}"
        allow_private = true
        """,
    )
    for args in (["ingest"], ["tag"], ["claims"], ["build", "--out", str(tmp_path / "s")]):
        assert run(runner, cfg, *args).exit_code == 0
    for page in (tmp_path / "s").rglob("*.html"):
        # The only script is the site's own search.js (search.html); none comes from the feed.
        html = page.read_text().replace('<script src="search.js" type="module"></script>', "")
        assert "<script" not in html and "javascript:" not in html and "onerror" not in html
        assert "onclick" not in html


def test_broken_source_reports_and_keeps_others(runner, httpserver, tmp_path, db):
    httpserver.expect_request("/feed.xml").respond_with_data((FIXTURES / "feed.xml").read_bytes())
    cfg = write_config(
        tmp_path,
        f"""
        [[source]]
        name = "good"
        kind = "rss"
        url = "{httpserver.url_for("/feed.xml")}"
        allow_private = true
        [[source]]
        name = "down"
        kind = "rss"
        url = "http://127.0.0.1:9/feed.xml"
        allow_private = true
        """,
    )
    result = runner.invoke(main, ["--config", str(cfg), "ingest"])
    assert result.exit_code == 1
    assert "Error: 1 source(s) broken: down (http://127.0.0.1:9/feed.xml: cannot connect" in result.output
    status = runner.invoke(main, ["--config", str(cfg), "status"])
    assert status.exit_code == 1
    assert status.output.splitlines()[0].startswith("STATUS") and status.output.splitlines()[1].startswith("broken")
    assert db.one("SELECT count(*) FROM item WHERE source='good'") == 2
