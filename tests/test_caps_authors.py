"""Caps count text, not markup; coverage links survive long posts; author lists kept whole (issue #15 point 4)."""

from __future__ import annotations

import pytest

from digest import store
from digest.parse import SUMMARY_MAX, parse_feed, split_authors

FEED = """<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title>t</title><link>https://b.test/</link><item><title>{title}</title><link>https://b.test/{slug}</link>
<description>{body}</description><dc:creator>{creator}</dc:creator></item></channel></rss>"""


def feed(body: str, creator: str = "Ada Lovelace", slug: str = "p", title: str = "A post") -> bytes:
    from html import escape

    return FEED.format(title=title, slug=slug, body=escape(body), creator=escape(creator)).encode()


def test_the_cap_counts_text_and_keeps_links_past_it(db):
    # 30,000 characters of markup-heavy text, then the arXiv link the post is about.
    body = "<p>" + "<b>x</b> " * 3_000 + "</p>" + '<p>See <a href="https://arxiv.org/abs/2602.06036">the paper</a>.</p>'
    (entry,) = parse_feed(feed(body), {}, "https://b.test/").entries
    assert len(entry.summary) <= SUMMARY_MAX and "the paper" in entry.summary  # 6,000 characters of text: all kept
    assert entry.linked_arxiv_ids == ["2602.06036"]
    assert entry.summary_html.endswith("</p>") and "arxiv.org/abs/2602.06036" in entry.summary_html
    engine = store.open_engine(db.url)
    store.init_db(engine)
    from datetime import datetime

    from digest.parse import Entry

    paper = Entry(
        key="arxiv:2602.06036",
        title="DFlash",
        url="https://arxiv.org/abs/2602.06036",
        summary="s",
        kind="paper",
        arxiv_id="2602.06036",
        arxiv_version=1,
        published=datetime(2026, 2, 9),
    )
    store.save_entries(engine, "blog", [entry])
    store.save_entries(engine, "arxiv", [paper])
    store.relink_coverage(engine)
    assert db.rows("SELECT count(*) FROM item WHERE covers_item_id IS NOT NULL") == [(1,)]
    engine.dispose()


def test_long_text_is_cut_on_text():
    body = "<p>" + "word " * 10_000 + "</p>"
    (entry,) = parse_feed(feed(body), {}, "https://b.test/").entries
    assert len(entry.summary) == SUMMARY_MAX


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("Jian Chen, Yesheng Liang, Zhijian Liu", ["Jian Chen", "Yesheng Liang", "Zhijian Liu"]),
        ("Ada Lovelace and Alan Turing", ["Ada Lovelace", "Alan Turing"]),
        ("Ada Lovelace, Alan Turing, and Grace Hopper", ["Ada Lovelace", "Alan Turing", "Grace Hopper"]),
        ("Ada Lovelace; Alan Turing", ["Ada Lovelace", "Alan Turing"]),
        ("Lovelace, Ada", ["Lovelace, Ada"]),
        ("Smith, J., Doe, A.", ["Smith, J., Doe, A."]),
        ("The Team", ["The Team"]),
    ],
)
def test_split_authors(raw, names):
    assert split_authors(raw) == names


def test_a_long_author_list_is_kept_whole():
    names = [f"Author Number{i} Surname{i}" for i in range(40)]  # 1,200 characters in one dc:creator
    (entry,) = parse_feed(feed("x", creator=", ".join(names)), {}, "https://b.test/").entries
    assert entry.authors == names
