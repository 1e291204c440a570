"""Finding a blog's feed and reading/writing OPML subscription lists (issue #15). Pure: bytes in, data out.

A page advertises its feed with `<link rel="alternate" type="application/rss+xml">` (or atom/json); when it does
not, the usual paths are tried (`/feed`, `/rss.xml`, `/index.xml`, `/atom.xml`, ...). Whether a response is a
feed is decided by feedparser, the reference parser, not by its Content-Type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree

from digest.errors import DigestError

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
)
COMMON_PATHS = ("feed", "feed.xml", "rss.xml", "index.xml", "atom.xml", "rss", "feed/", "atom", "feeds/posts/default")


@dataclass(frozen=True)
class FeedInfo:
    title: str
    entries: int
    newest_title: str = ""
    newest_date: datetime | None = None


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    title: str = ""
    html_url: str = ""
    folders: tuple[str, ...] = field(default_factory=tuple)


def feed_info(body: bytes, headers: dict[str, str] | None = None) -> FeedInfo | None:
    """Title, entry count and newest entry when `body` is an RSS/Atom/RDF feed feedparser recognises; else None."""
    import feedparser

    parsed = feedparser.parse(body, response_headers=headers or {})
    if not parsed.get("version") or (parsed.get("bozo") and not parsed.entries):
        return None
    newest, newest_date = None, None
    for entry in parsed.entries:
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        stamp = datetime(*when[:6]) if when else None
        if newest is None or (stamp and (newest_date is None or stamp > newest_date)):
            newest, newest_date = entry, stamp
    title = re.sub(r"\s+", " ", parsed.feed.get("title", "")).strip()
    newest_title = re.sub(r"\s+", " ", newest.get("title", "")).strip() if newest is not None else ""
    return FeedInfo(title, len(parsed.entries), newest_title, newest_date)


def advertised_feeds(html: bytes, base_url: str) -> list[str]:
    """Feed URLs a page names in `<link rel="alternate" type="...">`, absolute, in page order, http(s) only."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    base = soup.find("base", href=True)
    base_url = urljoin(base_url, base["href"]) if base else base_url
    out: dict[str, None] = {}
    for link in soup.find_all("link", href=True):
        rel = [r.lower() for r in (link.get("rel") or [])]
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        if "alternate" in rel and kind in FEED_TYPES and "comments" not in (link.get("title") or "").lower():
            url = urljoin(base_url, link["href"].strip())
            if urlsplit(url).scheme in ("http", "https"):
                out.setdefault(url, None)
    return list(out)


def guessed_feeds(page_url: str) -> list[str]:
    """The usual feed paths, under the page's own folder first and then at the site's root."""
    parts = urlsplit(page_url)
    root = f"{parts.scheme}://{parts.netloc}/"
    folder = page_url if page_url.endswith("/") else page_url.rsplit("/", 1)[0] + "/"
    out: dict[str, None] = {}
    for base in (folder, root):
        for path in COMMON_PATHS:
            out.setdefault(urljoin(base, path), None)
    out.pop(page_url, None)
    return list(out)


def read_opml(data: bytes) -> list[OpmlFeed]:
    """Every feed of an OPML file once (by URL), with its folders; outlines without an http(s) xmlUrl are skipped."""
    import listparser

    result = listparser.parse(data)
    if not result.get("version"):
        raise DigestError(f"not an OPML file ({result.get('bozo_exception') or 'no <opml> document'})")
    out: dict[str, OpmlFeed] = {}
    for feed in result.feeds:
        url = (feed.get("url") or "").strip()
        if urlsplit(url).scheme not in ("http", "https") or url in out:
            continue
        folders = tuple(dict.fromkeys(c for tags in feed.get("categories", []) for c in tags if c))
        out[url] = OpmlFeed(url, (feed.get("title") or "").strip(), "", folders)
    return list(out.values())


def write_opml(feeds: list[OpmlFeed], title: str) -> str:
    """An OPML 2.0 document of the feeds, one folder level from each feed's first folder."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    body = ElementTree.SubElement(root, "body")
    folders: dict[str, ElementTree.Element] = {}
    for f in feeds:
        parent = body
        if f.folders:
            name = f.folders[0]
            if name not in folders:
                folders[name] = ElementTree.SubElement(body, "outline", text=name, title=name)
            parent = folders[name]
        attrs = {"type": "rss", "text": f.title or f.url, "title": f.title or f.url, "xmlUrl": f.url}
        if f.html_url:
            attrs["htmlUrl"] = f.html_url
        ElementTree.SubElement(parent, "outline", attrs)
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def source_name(title: str, url: str, taken: set[str], next_n: dict[str, int] | None = None) -> str:
    """A config name for a new source: the slug of its title (else its host), unique among `taken`. `next_n`
    (kept by a caller naming many sources while `taken` only grows) remembers each base's next free number, so
    thousands of feeds of one host are named in linear time."""
    from digest.normalize import slugify

    host = urlsplit(url).netloc.removeprefix("www.")
    base = slugify(title, 40).strip("-") if re.search(r"[A-Za-z0-9]", title) else ""
    base = base or (slugify(host, 40).strip("-") if re.search(r"[A-Za-z0-9]", host) else "") or "feed"
    n = 2 if next_n is None else next_n.get(base, 2)
    name = base if n == 2 else f"{base}-{n}"
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    if next_n is not None:
        next_n[base] = n
    return name
