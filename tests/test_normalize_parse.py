from datetime import datetime

import pytest

from digest.errors import FetchError
from digest.normalize import arxiv_ids_in, code_urls_in, entry_key, parse_arxiv_id, safe_url, sanitize_html, slugify
from digest.parse import parse_date, parse_feed, parse_html


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2602.06036v2", ("2602.06036", 2)),
        ("http://arxiv.org/abs/2602.06036", ("2602.06036", None)),
        ("https://arxiv.org/pdf/2611.01234v3", ("2611.01234", 3)),
        ("hep-th/9901001", ("hep-th/9901001", None)),
        ("http://arxiv.org/abs/math.ca/0611800v1", ("math.CA/0611800", 1)),
        ("arXiv:1706.03762", ("1706.03762", None)),
        ("not an id", None),
    ],
)
def test_parse_arxiv_id(raw, expected):
    assert parse_arxiv_id(raw) == expected


def test_safe_url_drops_unsafe_schemes_and_tracking():
    assert safe_url("javascript:alert(1)") == ""
    assert safe_url("data:text/html,hi") == ""
    assert safe_url("/p/1?utm_source=x&id=3#frag", "https://Blog.test/") == "https://blog.test/p/1?id=3"
    assert safe_url("https://x.test/a\r\nb") == ""


def test_sanitize_html_is_inert():
    html = sanitize_html('<p onclick="x()">hi <a href="javascript:alert(1)">l</a></p><script>bad()</script>')
    assert "onclick" not in html and "javascript" not in html and "script" not in html
    assert "<p>hi" in html


def test_entry_key_fallbacks():
    assert entry_key(arxiv_id="2602.06036", guid="g", link="l", title="t", content="c") == "arxiv:2602.06036"
    assert entry_key(arxiv_id=None, guid="g", link="l", title="t", content="c") == "guid:g"
    assert entry_key(arxiv_id=None, guid="", link="https://x.test/", title="t", content="c") == "url:https://x.test/"
    assert entry_key(arxiv_id=None, guid="", link="", title="t", content="c").startswith("hash:")


def test_links_found_in_text():
    text = 'see <a href="https://arxiv.org/abs/2602.06036v1">x</a> and https://github.com/z-lab/dflash.'
    assert arxiv_ids_in(text) == ["2602.06036"]
    assert code_urls_in(text) == ["https://github.com/z-lab/dflash"]
    comment = "Code: https://github.com/z-lab/dflash.git, weights https://huggingface.co/z-lab/dflash-8b"
    assert code_urls_in("no links here", text, comment) == [
        "https://github.com/z-lab/dflash",
        "https://huggingface.co/z-lab/dflash-8b",
    ]
    assert slugify("../../etc/passwd <b>") == "etc-passwd-b"


def test_parse_feed_dedupes_guid_and_keeps_tags(fixture_bytes):
    result = parse_feed(fixture_bytes("feed.xml"), {}, "https://blog.test/")
    assert [e.key for e in result.entries] == ["guid:post-1", "guid:post-2"]
    first = result.entries[0]
    assert first.url == "https://blog.test/posts/dflash"
    assert first.tags == ["Speculative Decoding", "vLLM"]
    assert first.linked_arxiv_ids == ["2602.06036"]
    assert first.published == datetime(2026, 11, 23, 10, 0)
    assert result.entries[1].code_urls == ["https://github.com/larql/larql"]


def test_parse_feed_hostile_entry_is_inert(fixture_bytes):
    entry = parse_feed(fixture_bytes("hostile.xml"), {}, "https://evil.test/").entries[0]
    assert entry.url == ""
    assert "<script" not in entry.title and "alert(1)" not in entry.title
    assert "onclick" not in entry.summary_html and "javascript" not in entry.summary_html
    assert "onerror" not in entry.summary_html


def test_parse_feed_rejects_non_feed():
    with pytest.raises(FetchError, match="not a feed"):
        parse_feed(b"<html><body>hello</body></html>", {}, "https://x.test/")


def test_parse_html_with_selectors_prefers_valid_utf8(fixture_bytes):
    selectors = {
        "item": "article.post",
        "title": "h2",
        "link": "h2 a",
        "summary": "p.teaser",
        "date": "time",
        "tags": "ul.tags li",
    }
    entries = parse_html(fixture_bytes("blog.html"), selectors, "https://blog.test/").entries
    assert len(entries) == 2
    assert entries[0].title == "The KV cache is not a detail — control plane"  # UTF-8 despite iso-8859-1 meta
    assert entries[0].url == "https://blog.test/posts/kv"
    assert entries[0].tags == ["KV Cache", "Serving"]
    assert entries[1].published == datetime(2026, 11, 18, 8, 0)


def test_parse_html_selectors_matching_nothing_is_broken(fixture_bytes):
    with pytest.raises(FetchError, match="matched nothing"):
        parse_html(fixture_bytes("blog.html"), {"item": "div.gone", "title": "h2", "link": "a"}, "https://b.test/")


def test_parse_date_forms():
    assert parse_date("May 27, 2026") == datetime(2026, 5, 27)
    assert parse_date("Mon, 23 Nov 2026 10:00:00 GMT") == datetime(2026, 11, 23, 10)
    assert parse_date("2026-11-20T10:00:00+01:00") == datetime(2026, 11, 20, 9)
    assert parse_date("someday") is None


ATOM_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><link href="https://atom.test/"/>
<id>urn:feed</id><updated>2026-11-20T10:00:00Z</updated>
<entry><id>urn:e1</id><title type="html">KV &lt;em&gt;cache&lt;/em&gt; notes</title>
<link rel="alternate" href="/posts/kv"/><published>2026-11-19T08:30:00+01:00</published>
<updated>2026-11-20T10:00:00Z</updated><author><name>Ada</name></author><category term="KV Cache"/>
<content type="html">&lt;p&gt;See &lt;a href="https://arxiv.org/abs/2602.06036v2"&gt;DFlash&lt;/a&gt;&lt;/p&gt;</content></entry>
<entry><id>urn:e2</id><title>Plain</title><link href="https://atom.test/p2"/>
<updated>2026-11-18T10:00:00Z</updated><summary>Only a summary.</summary></entry>
</feed>"""

RDF_FEED = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://rdf.test/"><title>R</title><link>https://rdf.test/</link></channel>
<item rdf:about="https://rdf.test/1"><title>One</title><link>https://rdf.test/1</link>
<description>First.</description><dc:date>2026-11-17T10:00:00Z</dc:date><dc:creator>Bo</dc:creator></item>
</rdf:RDF>"""


@pytest.mark.parametrize(
    "body", ["feed.xml", "hostile.xml", ATOM_FEED, RDF_FEED], ids=["rss", "hostile", "atom", "rdf"]
)
def test_lxml_fast_path_agrees_with_feedparser(body, fixture_bytes):
    from digest.parse import feed_items_feedparser, feed_items_lxml, make_entry

    body = fixture_bytes(body) if isinstance(body, str) else body

    def entries(items):
        link, raws, warning = items
        assert warning == ""
        return [make_entry(base_url=link or "https://base.test/", **raw) for raw in raws]

    fast = entries(feed_items_lxml(body))
    assert fast and fast == entries(feed_items_feedparser(body, {}))


def test_not_well_formed_feed_goes_to_feedparser_and_keeps_good_entries(fixture_bytes):
    from digest.parse import feed_items_lxml

    broken = fixture_bytes("feed.xml").replace(b"</channel>\n</rss>", b"<item><title>cut &nbsp; off")
    assert feed_items_lxml(broken) is None
    result = parse_feed(broken, {}, "https://blog.test/")
    assert "malformed feed" in result.warning and len(result.entries) >= 2


ARXIV_PAGE = (
    '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
    'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom">'
    "<opensearch:totalResults>9</opensearch:totalResults><opensearch:startIndex>0</opensearch:startIndex>{}</feed>"
)
ARXIV_ENTRIES = [
    "<entry><id> http://arxiv.org/abs/hep-th/9901001v3 </id><published>2026-01-01T00:00:00Z</published>"
    "<updated>2026-01-05T08:00:00+02:00</updated><title>  Sparse\n   attention\tat scale </title>"
    "<summary>\n  We show\r\n a 2.5x speedup. Code: https://github.com/lab/sparse.git\n</summary>"
    "<author><name> A. Author </name></author><author><name>B.\nBauthor</name></author><author/>"
    "<category term='hep-th'/><category term=''/><category/><arxiv:comment>see https://gitlab.com/q/r</arxiv:comment>"
    "<link href='http://arxiv.org/abs/hep-th/9901001v3' rel='alternate'/></entry>",
    "<entry><id>http://arxiv.org/abs/2611.00002v1</id><published>2026-11-02T10:00:00Z</published>"
    "<title>Caf\u00e9\u00a0au\u2003lait\x7f and <![CDATA[<b>tags</b>]]></title><summary>Non-ASCII\u00a0spaces</summary>"
    "<author><name>J\u00e9r\u00f4me</name></author></entry>",
    "<entry><id></id><published>2026-11-02T10:00:00Z</published><title>no id</title></entry>",
    "<entry><id>http://arxiv.org/abs/2611.00003v2</id><title>no date</title></entry>",
]


def _element_path(body: bytes):
    """The per-element reader, the reference the one-pass XSLT reader must agree with."""
    from lxml import etree

    from digest.parse import ATOM, _arxiv_entry

    root = etree.fromstring(body)
    return [e for e in map(_arxiv_entry, root.iterchildren(f"{ATOM}entry")) if e is not None]


@pytest.mark.parametrize("entries", [ARXIV_ENTRIES[:1], ARXIV_ENTRIES])
def test_arxiv_one_pass_reader_matches_the_element_reader(entries):
    from lxml import etree

    from digest.parse import _arxiv_entries_flat, parse_arxiv_page

    body = ARXIV_PAGE.format("".join(entries)).encode()
    flat = _arxiv_entries_flat(etree.fromstring(body), body)
    assert flat is not None  # the fast path ran (ASCII-only and non-ASCII pages alike)
    assert flat[0] == _element_path(body)
    page = parse_arxiv_page(body)
    assert page.entries == flat[0] and page.skipped == len(entries) - len(flat[0]) and page.total == 9
    first = page.entries[0]
    assert (first.key, first.arxiv_version, first.title) == ("arxiv:hep-th/9901001", 3, "Sparse attention at scale")
    assert first.summary == "We show a 2.5x speedup. Code: https://github.com/lab/sparse.git"
    assert first.authors == ["A. Author", "B. Bauthor", ""] and first.tags == ["hep-th"]
    assert first.code_urls == ["https://github.com/lab/sparse", "https://gitlab.com/q/r"]
    assert first.updated == datetime(2026, 1, 5, 6, 0)
    if len(entries) > 1:
        assert page.entries[1].title == "Café au lait and <b>tags</b>"


@pytest.mark.parametrize("text", ["&#65;lpha", "&#xE000;", "\ue000", "\ue001x\ue002"])
def test_arxiv_pages_that_could_hold_a_separator_take_the_element_reader(text):
    from lxml import etree

    from digest.parse import _arxiv_entries_flat, parse_arxiv_page

    body = ARXIV_PAGE.format(ARXIV_ENTRIES[0].replace("Sparse", text, 1)).encode()
    assert _arxiv_entries_flat(etree.fromstring(body), body) is None
    page = parse_arxiv_page(body)
    assert page.entries == _element_path(body)
    expected = text.replace("&#65;", "A").replace("&#xE000;", "\ue000")
    assert page.entries[0].title == f"{expected} attention at scale"
