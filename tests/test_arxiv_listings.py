"""arXiv's own RSS/Atom listings are papers (issue #15 point 2): keyed by arXiv id, versioned, one finding with
the API's row for the same paper. Checked on a real rss.arxiv.org capture against feedparser."""

from __future__ import annotations

from pathlib import Path

import feedparser

from digest import store
from digest.normalize import arxiv_listing_id
from digest.parse import parse_arxiv_page, parse_feed

REAL = Path(__file__).parent / "data" / "real" / "feeds"
FIXTURES = Path(__file__).parent / "fixtures"

LISTING = """<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">
<channel><title>cs.CL updates on arXiv.org</title><link>http://rss.arxiv.org/rss/cs.CL</link>
<item><title>{title}</title><link>https://arxiv.org/abs/2602.06036</link>
<description>arXiv:2602.06036v{v} Announce Type: {kind} &#10;Abstract: {abstract}</description>
<guid isPermaLink="false">oai:arXiv.org:2602.06036v{v}</guid><category>cs.CL</category>
<pubDate>{date} 00:00:00 -0500</pubDate><arxiv:announce_type>{kind}</arxiv:announce_type>
<dc:creator>Jian Chen, Yesheng Liang, Zhijian Liu</dc:creator></item>
</channel></rss>"""

ATOM_LISTING = b"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title>cs.LG updates on arXiv.org</title><id>http://rss.arxiv.org/atom/cs.LG</id>
  <link href="http://rss.arxiv.org/atom/cs.LG" rel="self" type="application/atom+xml"/>
  <updated>2026-02-10T05:00:00Z</updated>
  <entry><id>oai:arXiv.org:2611.00001v3</id><title>A cross-listed paper</title>
    <updated>2026-02-10T00:00:00-05:00</updated>
    <link href="https://arxiv.org/abs/2611.00001" rel="alternate" type="text/html"/>
    <summary>arXiv:2611.00001v3 Announce Type: replace-cross
Abstract: We report a 2x speedup.</summary>
    <author><name>Ada Lovelace</name></author><arxiv:announce_type>replace-cross</arxiv:announce_type>
  </entry>
</feed>"""


def test_real_arxiv_rss_capture_is_a_paper_and_agrees_with_feedparser():
    body = (REAL / "arxiv-rss-cs-ai.xml").read_bytes()
    (entry,) = parse_feed(body, {}, "http://rss.arxiv.org/rss/cs.AI").entries
    (reference,) = feedparser.parse(body).entries
    assert entry.key == "arxiv:2509.13332" and entry.kind == "paper"
    assert (entry.arxiv_id, entry.arxiv_version) == ("2509.13332", 1)
    assert entry.title == reference.title
    assert entry.url == "https://arxiv.org/abs/2509.13332" and entry.pdf_url == "https://arxiv.org/pdf/2509.13332"
    assert entry.summary.startswith("As Large Language Models (LLMs) are increasingly adopted")
    assert "Announce Type" not in entry.summary and "Announce Type" not in entry.summary_html
    assert entry.linked_arxiv_ids == []  # the paper itself, not a post covering it


def test_listing_ids():
    assert arxiv_listing_id("oai:arXiv.org:2604.21952v2", "") == ("2604.21952", 2)
    assert arxiv_listing_id("", "https://arxiv.org/abs/2604.21952v3") == ("2604.21952", 3)
    assert arxiv_listing_id("", "http://export.arxiv.org/abs/hep-th/9901001") == ("hep-th/9901001", None)
    # A blog post that links to a paper is coverage, not the paper.
    assert arxiv_listing_id("post-7", "https://blog.example/dflash") is None
    assert arxiv_listing_id("", "https://blog.example/?u=https://arxiv.org/abs/2604.21952") is None


def test_atom_listing_with_replace_cross():
    (entry,) = parse_feed(ATOM_LISTING, {}, "http://rss.arxiv.org/atom/cs.LG").entries
    assert (entry.key, entry.arxiv_version, entry.kind) == ("arxiv:2611.00001", 3, "paper")
    assert entry.summary == "We report a 2x speedup." and entry.authors == ["Ada Lovelace"]


def test_v1_then_replace_v2_then_the_api_is_one_finding(db):
    engine = store.open_engine(db.url)
    store.init_db(engine)
    v1 = LISTING.format(title="DFlash", v=1, kind="new", abstract="Block diffusion drafts.", date="Mon, 09 Feb 2026")
    (first,) = parse_feed(v1.encode(), {}, "http://rss.arxiv.org/rss/cs.CL").entries
    assert first.authors == ["Jian Chen", "Yesheng Liang", "Zhijian Liu"]
    store.save_entries(engine, "arxiv-rss-cl", [first])
    v2 = LISTING.format(
        title="DFlash: block diffusion drafting", v=2, kind="replace", abstract="Now 6x.", date="Tue, 17 Feb 2026"
    )
    store.save_entries(engine, "arxiv-rss-cl", parse_feed(v2.encode(), {}, "http://rss.arxiv.org/rss/cs.CL").entries)
    rows = db.rows("SELECT key, kind, arxiv_version, title, published FROM item")
    assert len(rows) == 1
    key, kind, version, title, published = rows[0]
    assert (key, kind, version, title) == ("arxiv:2602.06036", "paper", 2, "DFlash: block diffusion drafting")
    assert str(published).startswith("2026-02-09")  # a replacement keeps the paper's first announcement date
    page = parse_arxiv_page((FIXTURES / "arxiv.xml").read_bytes())
    api = [e for e in page.entries if e.arxiv_id == "2602.06036"]
    store.save_entries(engine, "arxiv-api", api)
    assert db.rows("SELECT count(*) FROM item WHERE arxiv_id = '2602.06036'") == [(1,)]
    engine.dispose()


def test_a_blog_linking_straight_to_an_abstract_is_coverage_not_the_paper():
    """A blog's feed or index card whose link is an arxiv.org/abs page (the demo's findings-links blog) must not
    overwrite the paper: only arXiv's own listings (oai guid, or served by arxiv.org) are the paper."""
    from digest.parse import parse_html

    blog = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Links</title><link>https://links.example/</link>
    <item><title>DFlash is neat</title><link>https://arxiv.org/abs/2602.06036</link><guid>post-9</guid>
    <description>Our note on it.</description></item></channel></rss>"""
    (entry,) = parse_feed(blog, {}, "https://links.example/feed.xml").entries
    assert entry.kind == "post" and entry.arxiv_id is None and entry.key != "arxiv:2602.06036"
    assert entry.linked_arxiv_ids == ["2602.06036"]  # coverage of the paper
    page = b'<div class="f"><h3><a href="https://arxiv.org/abs/2602.06036">DFlash</a></h3></div>'
    (card,) = parse_html(page, {"item": "div.f", "title": "h3", "link": "h3 a"}, "https://links.example/").entries
    assert card.kind == "post" and card.arxiv_id is None
