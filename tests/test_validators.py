"""What validators check, without a browser: meta descriptions, Atom's author rule (RFC 4287 4.1.1), the
archive and week navigation, the tags index order. axe-core itself runs in tests/test_browser.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser

from digest import render
from digest.models import Topic
from tests.test_site import SITE, TOPICS, view

ATOM = "{http://www.w3.org/2005/Atom}"


class Heads(HTMLParser):
    """A page's meta description and its heading levels, in order."""

    def __init__(self, html: str):
        super().__init__()
        self.description: list[str] = []
        self.levels: list[int] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "meta" and a.get("name") == "description":
            self.description.append(a.get("content") or "")
        if len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
            self.levels.append(int(tag[1]))


def blog_post(n: int, **kw):
    """A blog post: no authors, no arXiv id (the entries that made feeds invalid)."""
    v = view(n, authors=[], url=f"https://blog.test/{n}", **kw)
    v.item.arxiv_id, v.item.arxiv_version, v.item.kind, v.item.title = None, None, "post", f"Post {n}"
    return v


def pages_of(views, site=SITE, topics=TOPICS):
    return render.site_pages(views, topics, site)


def test_every_page_has_a_meta_description_and_headings_in_order():
    pages = pages_of([view(1), view(2, tags=(("kv-cache", 0.8),)), blog_post(3, day=10)])
    html = {p: b.decode() for p, b in pages.items() if p.endswith(".html")}
    assert {"index.html", "search.html", "tags/index.html", "weeks/index.html", "weeks/2026-w46.html"} <= set(html)
    for path, text in html.items():
        heads = Heads(text)
        assert len(heads.description) == 1 and heads.description[0].strip(), path
        assert heads.levels[0] == 1, (path, heads.levels)
        jumps = [(a, b) for a, b in zip(heads.levels, heads.levels[1:], strict=False) if b > a + 1]
        assert not jumps, (path, heads.levels)  # axe heading-order: never h1 then h3
    item = Heads(html[render.item_path(view(1))]).description[0]
    assert item == render.Finding(view(1), {}, SITE).one_line, item  # an item's own one-liner (its result)
    assert item.startswith("It achieves a 2.1x speedup"), item


def check_atom_authors(feed: bytes) -> int:
    """RFC 4287 4.1.1: an atom:feed has an author unless every entry has one. Returns the entry count."""
    root = ET.fromstring(feed)
    entries = root.findall(f"{ATOM}entry")
    feed_author = [a.findtext(f"{ATOM}name") for a in root.findall(f"{ATOM}author")]
    if not all(n and n.strip() for n in feed_author) or not feed_author:
        missing = [e.findtext(f"{ATOM}title") for e in entries if not e.findall(f"{ATOM}author/{ATOM}name")]
        assert not missing, f"entries without an author in a feed without one: {missing}"
    return len(entries)


def test_atom_feeds_satisfy_the_author_rule_with_authorless_blog_posts():
    views = [view(1), blog_post(2, tags=(("kv-cache", 0.8),)), blog_post(3)]
    pages = pages_of(views)
    feeds = [p for p in pages if p.endswith(".atom")]
    assert {"feed.atom", "tags/kv-cache.atom", "tags/speculative-decoding.atom"} <= set(feeds)
    assert sum(check_atom_authors(pages[p]) for p in feeds) >= 5
    # The feed's author is the site's title by default, [site] author when set.
    root = ET.fromstring(pages["feed.atom"])
    assert root.findtext(f"{ATOM}author/{ATOM}name") == SITE.title
    signed = pages_of(views, replace(SITE, author="The Lab <lab@example.org> & co"))
    for path in ("feed.atom", "tags/kv-cache.atom"):
        root = ET.fromstring(signed[path])
        assert root.findtext(f"{ATOM}author/{ATOM}name") == "The Lab <lab@example.org> & co"
    # Papers keep their own authors.
    root = ET.fromstring(signed["feed.atom"])
    entry = next(e for e in root.iter(f"{ATOM}entry") if "Paper 1" in (e.findtext(f"{ATOM}title") or ""))
    assert [a.findtext(f"{ATOM}name") for a in entry.findall(f"{ATOM}author")] == ["Ada Lovelace", "Alan Turing"]


def test_atom_author_check_catches_a_feed_without_fallback():
    bare = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><id>x</id><title>t</title><updated>2026-01-01T00:00:00Z</updated>'
        b"<entry><id>e</id><title>Post</title><updated>2026-01-01T00:00:00Z</updated></entry></feed>"
    )
    try:
        check_atom_authors(bare)
    except AssertionError as exc:
        assert "Post" in str(exc)
    else:
        raise AssertionError("a feed whose entries lack authors passed")


def test_week_pages_link_previous_and_next_and_the_archive_lists_every_week():
    views = [view(1, day=24), view(2, day=17), view(3, day=10)]  # weeks 48, 47, 46
    pages = {p: b.decode() for p, b in pages_of(views).items() if p.endswith(".html")}
    middle = pages["weeks/2026-w47.html"]
    assert 'rel="prev" href="../weeks/2026-w46.html"' in middle and 'rel="next" href="../weeks/2026-w48.html"' in middle
    assert 'rel="next"' not in pages["weeks/2026-w48.html"] and 'rel="prev"' not in pages["weeks/2026-w46.html"]
    archive = pages["weeks/index.html"]
    assert archive.index("2026-W48") < archive.index("2026-W47") < archive.index("2026-W46")
    assert 'href="weeks/index.html">Archive</a>' in pages["index.html"]  # the nav, on every page
    assert 'href="../weeks/index.html">Archive</a>' in middle


def test_tags_index_is_sorted_by_name_not_slug():
    topics = [
        Topic(slug="a-zeta", name="Zeta models", description="", keywords="[]"),
        Topic(slug="z-alpha", name="alpha tricks", description="", keywords="[]"),
        Topic(slug="m-beta", name="Beta", description="", keywords="[]"),
    ]
    views = [view(1, tags=(("a-zeta", 0.9), ("z-alpha", 0.8), ("m-beta", 0.7)))]
    page = pages_of(views, topics=topics)["tags/index.html"].decode()
    assert page.index("alpha tricks") < page.index("Beta") < page.index("Zeta models")


def test_list_id_is_ascii_and_names_the_site():
    from pathlib import Path

    from digest.config import Config, FetchConfig, NewsletterConfig, SiteConfig

    def config(title: str) -> Config:
        site = SiteConfig(title=title, base_url="https://digest.example.org/")
        return Config(Path("x.toml"), site, FetchConfig(), NewsletterConfig(), Path("t"), Path("w"), "", ())

    assert render.list_id(config("Digest · ML findings")) == '"Digest ML findings" <newsletter.digest.example.org>'
    assert render.list_id(config('Café "Lab" \\ notes')) == '"Cafe Lab notes" <newsletter.digest.example.org>'
    assert render.list_id(config("日本")) == "<newsletter.digest.example.org>"
