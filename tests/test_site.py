"""The static site: pages, feeds, sitemap, claims.json, BibTeX, verdict badges, incremental rebuilds, safety."""

from __future__ import annotations

import email.policy
import json
import os
import xml.etree.ElementTree as ET
from datetime import datetime

import feedparser
import pytest

from digest import render, write
from digest.config import Config, NewsletterConfig, SiteConfig
from digest.errors import DigestError
from digest.models import Claim, Item, Topic
from digest.store import ItemView
from tests.conftest import FIXTURES
from tests.publish_data import BASE, LONG_TITLE, assert_inert, elements, published

SITE = SiteConfig(title="Test Digest", base_url=BASE)
TOPICS = [
    Topic(slug="kv-cache", name="KV cache", description="Key-value cache.", keywords="[]"),
    Topic(slug="speculative-decoding", name="Speculative decoding", description="Drafts.", keywords="[]"),
]
HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>"><svg onload=alert(3)>\r\nBcc: x@evil.test'


def view(n: int, title: str = "", *, tags=(("speculative-decoding", 0.9),), verdicts=None, day=24, **kw) -> ItemView:
    item = Item(
        id=n,
        key=f"k{n}",
        kind="paper",
        source="arxiv-test",
        title=title or f"Paper {n} on speculative decoding",
        summary=kw.pop("summary", f"We propose method {n}. It achieves a 2.{n}x speedup on Llama. More text here."),
        url=kw.pop("url", f"https://arxiv.org/abs/2611.{n:05d}"),
        pdf_url=f"https://arxiv.org/pdf/2611.{n:05d}",
        arxiv_id=f"2611.{n:05d}",
        arxiv_version=1,
        authors=json.dumps(kw.pop("authors", ["Ada Lovelace", "Alan Turing"])),
        code_urls=json.dumps(kw.pop("code_urls", [f"https://github.com/example/m{n}"])),
        published=datetime(2026, 11, day, 10),
        **kw,
    )
    claims = [Claim(id=n * 10, item_id=n, value=2 + n / 10, unit="x", kind="speedup", text=f"2.{n}x speedup")]
    return ItemView(item, list(tags), claims, [], verdicts or {})


def test_pages_feeds_sitemap_claims_and_bibtex():
    views = [
        view(1, verdicts={10: "reproduced"}),
        view(2, tags=(("kv-cache", 0.8),), verdicts={20: "diverged"}),
        view(3, day=10),
    ]
    pages = render.site_pages(views, TOPICS, SITE)
    for path in ("index.html", "tags/index.html", "tags/kv-cache.html", "weeks/2026-w48.html", "weeks/2026-w46.html"):
        assert path in pages, path
    home = pages["index.html"].decode()
    # This week's findings by topic, the tag list with counts, the archive.
    assert "Paper 1" in home and "Paper 2" in home and "Paper 3" not in home
    assert home.index("Speculative decoding") < home.index("KV cache <span")
    assert 'href="tags/speculative-decoding.html">Speculative decoding <span class="count">2</span>' in home
    assert 'href="weeks/2026-w46.html"' in home
    item = pages[render.item_path(views[0])].decode()
    assert '<span class="verdict verdict-reproduced"' in item and "https://github.com/example/m1" in item
    assert 'name="citation_author" content="Ada Lovelace"' in item
    assert "@misc{turing" not in item and "@misc{lovelace2026261100001," in item
    assert "author = {Ada Lovelace and Alan Turing}" in item and "eprint = {2611.00001}" in item
    assert "verdict-diverged" in pages[render.item_path(views[1])].decode()
    assert 'class="verdict' not in pages[render.item_path(views[2])].decode()  # no verdict, no badge
    assert "data-pagefind-body" in item and "data-pagefind-body" not in home

    for path in ("feed.atom", "tags/speculative-decoding.atom", "tags/kv-cache.atom"):
        parsed = feedparser.parse(pages[path])
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert all(e.link.startswith(BASE + "items/") for e in parsed.entries)
    assert [e.title for e in feedparser.parse(pages["tags/kv-cache.atom"]).entries] == [
        "Paper 2 on speculative decoding"
    ]
    assert len(feedparser.parse(pages["feed.atom"]).entries) == 3
    jf = json.loads(pages["feed.json"])
    assert jf["version"] == "https://jsonfeed.org/version/1.1" and len(jf["items"]) == 3
    assert jf["items"][0]["url"].startswith(BASE) and jf["items"][0]["tags"] == ["Speculative decoding"]

    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locs = [e.text for e in ET.fromstring(pages["sitemap.xml"]).findall("s:url/s:loc", ns)]
    assert BASE + render.item_path(views[0]) in locs and BASE + "index.html" in locs
    assert all(loc.startswith(BASE) and loc.endswith(".html") for loc in locs)

    claims = json.loads(pages["claims.json"])
    assert {(c["item_id"], c["value"], c["unit"], c["kind"], c["verdict"]) for c in claims} == {
        (1, 2.1, "x", "speedup", "reproduced"),
        (2, 2.2, "x", "speedup", "diverged"),
        (3, 2.3, "x", "speedup", None),
    }
    assert claims[0]["sentence"] == "2.1x speedup" and claims[0]["item_url"].startswith(BASE + "items/")


def test_hostile_strings_render_inert_in_site_feeds_and_email():
    """Raw hostile strings straight into the renderer (no parse-time cleaning): everything stays text."""
    evil = view(
        7,
        HOSTILE,
        url="javascript:alert(1)",
        summary=HOSTILE + " We achieve a 3x speedup. " + HOSTILE,
        authors=[HOSTILE],
        code_urls=[],
        verdicts={70: '"><script>alert(9)</script>'},
    )
    long = view(8, LONG_TITLE)
    pages = render.site_pages([evil, long], TOPICS, SITE)
    for path, data in pages.items():
        if path.endswith(".html"):
            assert_inert(data.decode(), own_scripts=("search.js",))
    item = pages[render.item_path(evil)].decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in item
    # The javascript: URL is never a link (the store only ever holds safe_url output; the renderer doesn't trust it).
    assert all(not a.get("href", "").startswith("javascript:") for _, a in elements(item))
    assert len(render.item_path(long)) < 90  # slugs are capped
    for path in ("feed.atom", "tags/speculative-decoding.atom"):
        parsed = feedparser.parse(pages[path])
        assert not parsed.bozo and "\n" not in parsed.entries[-1].title
    json.loads(pages["feed.json"])

    config = Config(
        path=FIXTURES,
        site=SITE,
        fetch=None,
        newsletter=NewsletterConfig(sender="Digest <d@digest.test>"),
        topics_file=FIXTURES,
        workspace=FIXTURES,
        embed_model="fake-hash-64",
        sources=(),
    )
    issue = render.newsletter_message("2026-W48", [evil, long], TOPICS, config)
    msg = render.for_recipient(issue, config, "2026-W48", "r@example.org", "tok")
    raw = bytes(msg)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["To"] == "r@example.org"
    headers = raw.split(b"\n\n", 1)[0].decode()
    assert "evil.test" not in headers and "script" not in headers
    html = parsed.get_body(("html",)).get_content()
    assert_inert(html)
    assert "&lt;script&gt;" in html and LONG_TITLE not in html  # long titles are cut for the email


def test_verdicts_of_the_week_appear_in_the_newsletter():
    config = Config(FIXTURES, SITE, None, NewsletterConfig(), FIXTURES, FIXTURES, "fake-hash-64", ())
    views = [view(1, verdicts={10: "reproduced"}), view(2, verdicts={20: "failed"}), view(3)]
    runs = [(views[0], views[0].claims[0], "reproduced"), (views[1], views[1].claims[0], "failed")]
    msg = render.newsletter_message("2026-W48", views, TOPICS, config, reproductions=runs)
    text = msg.get_body(("plain",)).get_content()
    assert "Reproduced: 2.1x in Paper 1" in text and "Failed: 2.2x in Paper 2" in text
    assert "2.3x in Paper 3" not in text.split("Reproductions this week")[1]
    assert msg["Subject"] == "Digest, week 2026-W48: 3 findings in Speculative decoding"


def test_rebuild_renders_only_changed_pages(tmp_path):
    views = [view(n, day=10 + n % 14) for n in range(1, 40)]
    out = tmp_path / "site"
    rendered, written = write.write_site(out, render.plan_site(views, TOPICS, SITE))
    assert rendered == written > 50
    untouched = out / render.item_path(views[5])
    before = untouched.stat().st_mtime_ns
    assert write.write_site(out, render.plan_site(views, TOPICS, SITE)) == (0, 0)
    new = view(99, day=24, tags=(("kv-cache", 0.7),))
    rendered, written = write.write_site(out, render.plan_site([new, *views], TOPICS, SITE))
    changed = {"index.html", render.item_path(new), "tags/kv-cache.html", "tags/kv-cache.atom", "weeks/2026-w48.html"}
    changed |= {"tags/index.html", "feed.atom", "feed.json", "sitemap.xml", "claims.json", "claims/2026-w48.json"}
    changed.add("weeks/index.html")  # the archive counts each week's findings
    assert rendered == len(changed), rendered
    assert untouched.stat().st_mtime_ns == before
    # A new reproduction verdict re-renders that item's page (and the pages listing it), nothing else.
    views[5].verdicts = {views[5].claims[0].id: "reproduced"}
    rendered, _ = write.write_site(out, render.plan_site([new, *views], TOPICS, SITE))
    assert "verdict-reproduced" in untouched.read_text()
    assert rendered < 10
    before = untouched.stat().st_mtime_ns
    # A deleted output file is written again even though its inputs did not change.
    untouched.unlink()
    assert write.write_site(out, render.plan_site([new, *views], TOPICS, SITE)) == (1, 1)
    # An item that disappears takes its page with it.
    write.write_site(out, render.plan_site(views, TOPICS, SITE))
    assert not (out / render.item_path(new)).exists()


def test_paths_stay_inside_the_output_folder(tmp_path):
    page = render.Page("k", lambda: b"x")
    with pytest.raises(DigestError, match="outside the output folder"):
        write.write_site(tmp_path / "out", {"../escape.html": page})
    assert not (tmp_path / "escape.html").exists()


def test_build_from_a_hostile_feed_via_cli(runner, httpserver, tmp_path, db):
    from digest.cli import main

    cfg = published(httpserver, tmp_path)
    out = tmp_path / "site"
    result = runner.invoke(main, ["--config", str(cfg), "build", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Search index: " in result.output and (out / "pagefind" / "pagefind.js").exists()
    for page in out.rglob("*.html"):
        assert_inert(page.read_text(), own_scripts=("search.js",))
    csp = "content=\"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
    assert csp in (out / "index.html").read_text()
    assert "script-src 'self' 'wasm-unsafe-eval';" in (out / "search.html").read_text()
    for feed in [out / "feed.atom", *(out / "tags").glob("*.atom")]:
        assert not feedparser.parse(feed.read_bytes()).bozo, feed
    again = runner.invoke(main, ["--config", str(cfg), "build", "--out", str(out)])
    assert "(0 files written)" in again.output and "Search index" not in again.output


def test_written_files_are_readable_by_the_web_server(tmp_path):
    """Site pages, rewritten pages and the manifest get 0666 less the umask; a user's file keeps its own mode."""
    old = os.umask(0o022)
    try:
        views = [view(n, day=10 + n % 14) for n in range(1, 6)]
        out = tmp_path / "site"
        write.write_site(out, render.plan_site(views, TOPICS, SITE))
        views[0].verdicts = {views[0].claims[0].id: "reproduced"}  # rewrites existing pages in place
        write.write_site(out, render.plan_site(views, TOPICS, SITE))
        modes = {p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()}
        assert modes == {0o644}, modes
        private = tmp_path / "topics.toml"
        private.write_text("a")
        private.chmod(0o600)
        assert write.write_bytes(private, b"b") and private.stat().st_mode & 0o777 == 0o600
        assert write.write_bytes(tmp_path / "new.eml", b"x") and (tmp_path / "new.eml").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


def test_escaping_in_python_equals_jinja_autoescape():
    """_esc (the card-root rewrite, the sitemap) must escape exactly as Jinja's autoescape does."""
    from markupsafe import Markup, escape

    values = [HOSTILE, LONG_TITLE, "a & b <c> 'd' \"e\" &amp;", "naïve ρ → 76%", "", None, 42, 2.5]
    env = render.environment()
    for value in values:
        jinja = env.from_string("{{ v }}").render(v=value)
        assert render._esc(value) == jinja == str(escape(value))
        if isinstance(value, str):
            assert render._escape_str(value) == render._escape_py(value) == jinja
    assert render._esc(Markup("<b>kept</b>")) == "<b>kept</b>"
