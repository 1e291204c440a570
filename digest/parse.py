"""Pure parsers: response bytes (or arXiv results) in, Entry records out; no network, no DB."""

from __future__ import annotations

import calendar
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from digest.errors import FetchError
from digest.normalize import (
    ANNOUNCE_PREFIX,
    arxiv_ids_in,
    arxiv_listing_id,
    bound_html,
    clean_text,
    code_urls_in,
    content_hash,
    entry_key,
    html_to_text,
    parse_arxiv_id,
    safe_url,
    sanitize_html,
)

TITLE_MAX = 1_000
SUMMARY_MAX = 20_000  # characters of text
SUMMARY_HTML_MAX = 200_000  # characters of sanitised HTML kept beside it (coverage links are read from it)


@dataclass
class Entry:
    """One paper or post as read from a source, before it meets the database."""

    key: str
    title: str
    url: str
    summary: str
    summary_html: str = ""
    kind: str = "post"
    authors: list[str] = field(default_factory=list)
    published: datetime | None = None
    updated: datetime | None = None
    arxiv_id: str | None = None
    arxiv_version: int | None = None
    pdf_url: str = ""
    tags: list[str] = field(default_factory=list)
    linked_arxiv_ids: list[str] = field(default_factory=list)
    code_urls: list[str] = field(default_factory=list)
    doi: str = ""  # arXiv's <arxiv:doi>: the DOI of the published version

    @property
    def content_hash(self) -> str:
        return content_hash(self.title, self.summary)


@dataclass
class ParseResult:
    entries: list[Entry]
    warning: str = ""  # non-fatal problem worth reporting (bozo feed, skipped entries)


def make_entry(
    *,
    title: str,
    link: str,
    summary_html: str,
    base_url: str,
    guid: str = "",
    authors: list[str] | None = None,
    published: datetime | None = None,
    updated: datetime | None = None,
    tags: list[str] | None = None,
    now: datetime | None = None,
    guid_is_link: bool = False,
) -> Entry:
    """Shared by the RSS and HTML parsers: sanitise, fill fallbacks, compute the stable key."""
    if not link and guid_is_link:
        link = guid
    url = safe_url(link, base_url)
    clean_html = sanitize_html(summary_html or "")
    summary = html_to_text(clean_html)[:SUMMARY_MAX]  # the cap counts text, not markup
    if len(clean_html) > SUMMARY_HTML_MAX:  # cut, then sanitised again so every tag is closed
        clean_html = sanitize_html(clean_html[:SUMMARY_HTML_MAX])
    title_text = _title_text(title or "")[:TITLE_MAX] or _fallback_title(summary, url)
    published, updated = plausible_date(published, now), plausible_date(updated, now)
    authors = [_author_name(name) for a in authors or [] for name in split_authors(a)]
    key = entry_key(arxiv_id=None, guid=guid, link=url, title=title_text, content=summary)
    raw_text = f"{summary_html} {link}"
    # Only arXiv's own listings are the papers they link (an oai:arXiv.org guid, or a feed served by arxiv.org);
    # a blog post or index card that links straight to an abstract is coverage, never the paper itself.
    listing = arxiv_listing_id(guid, link) if _from_arxiv(guid, base_url) else None
    if listing is not None:
        return _listing_entry(listing, title_text, summary, clean_html, authors, published, updated, tags, now)
    return Entry(
        key=key,
        title=title_text,
        url=url,
        summary=summary,
        summary_html=clean_html,
        authors=[clean_text(a, 200) for a in authors or [] if a.strip()],
        published=published or updated or now or _utcnow(),
        updated=updated,
        tags=[clean_text(t, 100) for t in tags or [] if t and t.strip()][:30],
        linked_arxiv_ids=arxiv_ids_in(raw_text),
        code_urls=code_urls_in(raw_text),
    )


def _from_arxiv(guid: str, base_url: str) -> bool:
    if (guid or "").strip().lower().startswith("oai:arxiv.org:"):
        return True
    host = (urlsplit(base_url or "").hostname or "").lower()
    return host == "arxiv.org" or host.endswith(".arxiv.org")


def _listing_entry(listing, title, summary, clean_html, authors, published, updated, tags, now) -> Entry:
    """An arXiv listing item as the paper it announces: keyed by its arXiv id (one finding with the API's row),
    its version from the guid or the 'arXiv:IDvN Announce Type: ...' line, which is dropped from the abstract.
    Listing feeds join all authors in one dc:creator ("A, B, C"): split them."""
    arxiv_id, version = listing
    announce = ANNOUNCE_PREFIX.match(summary)
    if announce:
        version = version or (int(announce.group("ver")) if announce.group("ver") else None)
        summary = summary[announce.end() :]
        clean_html = ANNOUNCE_PREFIX.sub("", clean_html, count=1)
    names = [n.strip() for a in authors or [] for n in re.split(r",\s*|\s+and\s+", a) if n.strip()]
    return Entry(
        key=entry_key(arxiv_id=arxiv_id, guid="", link="", title="", content=""),
        title=title,
        url=f"https://arxiv.org/abs/{arxiv_id}",
        summary=summary,
        summary_html=clean_html,
        kind="paper",
        authors=[clean_text(n, 200) for n in names],
        published=published or updated or now or _utcnow(),
        updated=updated,
        arxiv_id=arxiv_id,
        arxiv_version=version or 1,
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        tags=[clean_text(t, 100) for t in tags or [] if t and t.strip()][:30],
        linked_arxiv_ids=[],
        code_urls=code_urls_in(summary),
    )


# Titles are text unless they carry real HTML elements (feedparser's rule): "Why the &lt;eos&gt; token matters" keeps
# its "<eos>", while "Bold &lt;b&gt;claim&lt;/b&gt;" loses its tags.
_HTML_ELEMENT = re.compile(
    r"</?(?:a|abbr|acronym|b|big|br|cite|code|del|dfn|div|em|font|h[1-6]|i|img|ins|kbd|li|mark|ol|p|pre|q|s|samp|"
    r"small|span|strike|strong|sub|sup|tt|u|ul|var|script|style|iframe|object|embed|svg|math|form|input|button|"
    r"textarea|select|link|meta|base|noscript|template|frame|frameset|applet|table|tr|td|th)(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
EARLIEST = datetime(1990, 1, 1)


def _title_text(title: str) -> str:
    return html_to_text(title) if _HTML_ELEMENT.search(title) or "&" in title else clean_text(title, TITLE_MAX)


def plausible_date(value: datetime | None, now: datetime | None = None) -> datetime | None:
    """A date before 1990 or more than a day ahead is a feed's mistake (year 0001, epoch 0, a typo): missing."""
    if value is None:
        return None
    latest = (now or _utcnow()) + timedelta(days=1)
    return value if EARLIEST <= value <= latest else None


_EMAIL_NAME = re.compile(r"^\s*[^\s@()<>]+@[^\s@()<>]+\s*\((?P<name>[^()]+)\)\s*$")
_NAME_EMAIL = re.compile(r"^\s*(?P<name>[^<>()]+?)\s*[<(][^\s@<>()]+@[^\s@<>()]+[>)]\s*$")


def split_authors(raw: str) -> list[str]:
    """One author field that joins several names ("Ada Lovelace, Alan Turing, Grace Hopper", "A B; C D",
    "A B and C D") as a list; "Smith, John" and "Smith, J., Doe, A." stay as they are."""
    raw = (raw or "").strip()
    if ";" in raw:
        parts = raw.split(";")
    elif raw.count(",") >= 2 or (raw.count(",") == 1 and " and " in raw):
        parts = re.split(r",\s*(?:and\s+)?|\s+and\s+", raw)
    elif " and " in raw and "," not in raw:
        parts = raw.split(" and ")
    else:
        parts = [raw]
    names = [p.strip() for p in parts if p.strip()]
    if len(names) > 1 and not all(" " in n for n in names):  # "Smith, J., Doe, A.": surnames and initials
        return [raw]
    return names


def _author_name(raw: str) -> str:
    """RSS's `email (Name)` and `Name <email>` keep the name only."""
    match = _EMAIL_NAME.match(raw) or _NAME_EMAIL.match(raw)
    return match.group("name").strip() if match else raw


def parse_feed(body: bytes, headers: dict[str, str], base_url: str, max_entries: int = 500) -> ParseResult:
    """RSS/Atom bytes: lxml for well-formed feeds, feedparser for the rest (a broken feed keeps its good entries)."""
    body, headers = _prefer_utf8(body, dict(headers or {}))
    fast = feed_items_lxml(body, max_entries)
    feed_link, raws, warning = fast if fast is not None else feed_items_feedparser(body, headers)
    feed_link = feed_link or base_url
    entries: list[Entry] = []
    seen: set[str] = set()
    for raw in raws[:max_entries]:
        entry = make_entry(base_url=feed_link, **raw)
        if entry.key in seen:  # a feed that repeats a guid: first one wins
            continue
        seen.add(entry.key)
        entries.append(entry)
    return ParseResult(entries, warning)


def feed_items_feedparser(body: bytes, headers: dict[str, str]) -> tuple[str, list[dict], str]:
    """feedparser's lenient reading, for feeds lxml refuses; bozo errors other than encoding become a warning."""
    import feedparser

    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False)  # nh3 sanitises later
    warning = ""
    if parsed.bozo:
        exc = parsed.get("bozo_exception")
        encoding_only = (
            feedparser.CharacterEncodingOverride | feedparser.CharacterEncodingUnknown | feedparser.NonXMLContentType
        )
        if not isinstance(exc, encoding_only):
            warning = f"malformed feed: {type(exc).__name__}: {clean_text(str(exc), 200)}"
        if not parsed.entries:
            raise FetchError(f"not a feed ({warning or 'no entries'})")
    if not parsed.version and not parsed.entries:
        raise FetchError("not a feed (no RSS or Atom root element)")
    raws = [
        {
            "title": raw.get("title", ""),
            "link": raw.get("link", ""),
            "summary_html": _entry_html(raw),
            "guid": raw.get("id", "") or "",
            "guid_is_link": bool(raw.get("guidislink")),
            "authors": [a.get("name", "") for a in raw.get("authors", []) if isinstance(a, dict)],
            "published": _struct_to_dt(dict.get(raw, "published_parsed")),
            "updated": _struct_to_dt(dict.get(raw, "updated_parsed")),
            "tags": [t.get("term", "") for t in raw.get("tags", []) or []],
        }
        for raw in parsed.entries
    ]
    return parsed.feed.get("link", ""), raws, warning


RDF_NS = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
RSS1 = "{http://purl.org/rss/1.0/}"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
XHTML_BODY = "{http://www.w3.org/1999/xhtml}body"
RSS090 = "{http://my.netscape.com/rdf/simple/0.9/}"


def _xml_root(body: bytes, huge: bool):
    """lxml's tree of a feed; a feed nesting elements past libxml2's depth limit (256, or 2048 with `huge`)
    is refused at once: no feed needs that, and feedparser would read it at about 0.6 CPU s a MB."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=huge, recover=False)
    try:
        return etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        if "Excessive depth" in str(exc):
            raise FetchError(f"feed refused: elements nested more than {2048 if huge else 256} deep") from None
        raise


def feed_items_lxml(body: bytes, limit: int | None = None) -> tuple[str, list[dict], str] | None:
    """Well-formed RSS 2.0, RSS 1.0 or Atom in one lxml pass (~5x feedparser); None sends it to feedparser.
    Only the first `limit` items are read (a 15 MB feed of 1.1 million empty items: 4.3 CPU s read whole)."""
    from itertools import islice

    from lxml import etree

    try:
        root = _xml_root(body, huge=False)
    except etree.XMLSyntaxError as exc:
        if "too big" not in str(exc) and "huge" not in str(exc).lower():
            return None
        try:  # one text node over libxml2's 10 MB limit (a 15 MB description): lift that limit, in C
            root = _xml_root(body, huge=True)
        except etree.XMLSyntaxError:
            return None
    except ValueError:
        return None
    if root is None or not _plain_vocabulary(root, body):
        return None
    if root.tag == f"{ATOM}feed":
        link = _atom_link(root)
        return link, [_atom_item(e) for e in islice(root.iterfind(f"{ATOM}entry"), limit)], ""
    if root.tag == "rss":
        channel = root.find("channel")
        if channel is None:
            return None
        return channel.findtext("link") or "", [_rss_item(i, "") for i in islice(channel.iterfind("item"), limit)], ""
    if root.tag == f"{RDF_NS}RDF":
        ns = RSS090 if root.find(f"{RSS090}channel") is not None or root.find(f"{RSS090}item") is not None else RSS1
        channel = root.find(f"{ns}channel")
        link = channel.findtext(f"{ns}link") if channel is not None else ""
        return link or "", [_rss_item(i, ns) for i in islice(root.iterfind(f"{ns}item"), limit)], ""
    return None


# The fast path reads only the vocabulary it maps exactly as feedparser does; a feed with anything else in its
# entries (xml:base, base64 or escaped-mode content, Atom 0.3, dcterms, media:, itunes:, out-of-namespace
# elements...) goes to feedparser whole. tests/test_feed_fidelity.py holds the two paths equal on feedparser's own
# corpus and on real feeds.
_DCNS = "{http://purl.org/dc/elements/1.1/}"
_RSS_ITEM_TAGS = {
    "title",
    "link",
    "description",
    "guid",
    "pubDate",
    "category",
    "author",
    "comments",
    "enclosure",
    "source",
    CONTENT_ENCODED,
    f"{_DCNS}creator",
    f"{_DCNS}date",
    f"{_DCNS}subject",
    f"{_DCNS}description",
}
_RSS1_ITEM_TAGS = (
    {f"{RSS1}{t}" for t in ("title", "link", "description")}
    | {f"{RSS090}{t}" for t in ("title", "link", "description")}
    | {CONTENT_ENCODED, f"{_DCNS}creator", f"{_DCNS}date", f"{_DCNS}subject", f"{_DCNS}description"}
)
_ATOM_ENTRY_TAGS = {
    f"{{http://www.w3.org/2005/Atom}}{t}"
    for t in (
        "id",
        "title",
        "link",
        "summary",
        "content",
        "author",
        "name",
        "email",
        "uri",
        "published",
        "updated",
        "category",
        "rights",
        "contributor",
    )
}
_ALLOWED_ATTRS = {
    "isPermaLink",
    "domain",
    "url",
    "length",
    "type",
    "href",
    "rel",
    "title",
    "hreflang",
    "term",
    "scheme",
    "label",
    f"{RDF_NS}about",
    f"{RDF_NS}resource",
}
_TEXT_TYPES = {None, "text", "html", "xhtml"}
_REPEATABLE = {
    "category",
    f"{_DCNS}subject",
    "author",
    f"{_DCNS}creator",
    "enclosure",
    "{http://www.w3.org/2005/Atom}link",
    "{http://www.w3.org/2005/Atom}category",
    "{http://www.w3.org/2005/Atom}author",
    "{http://www.w3.org/2005/Atom}contributor",
}
_NESTED = {"{http://www.w3.org/2005/Atom}author", "{http://www.w3.org/2005/Atom}contributor"}


# Dates the fast path reads exactly as feedparser does; any other spelling ('Nov 1, 2026', '2026/11/01', '2026-W44-7',
# a '+2400' zone, nanoseconds, 'GMT+2', a military zone letter) sends the document to feedparser, whose readings
# of those differ from email.utils' and dateutil's.
_PLAIN_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}(?::\d{2})? (?:GMT|UTC?|Z|[ECMP][SD]T|[+-](?:0\d|1[0-4])[0-5]\d)"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-](?:0\d|1[0-4]):?[0-5]\d)?)?"
)
_DATE_TAGS = {
    "pubDate",
    f"{_DCNS}date",
    "{http://www.w3.org/2005/Atom}published",
    "{http://www.w3.org/2005/Atom}updated",
}


_URL_TAGS = {"link", "guid", "{http://www.w3.org/2005/Atom}id", f"{RSS1}link", f"{RSS090}link"}
_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def _plain_vocabulary(root, body: bytes) -> bool:
    """Whether every entry of the document uses only what the fast path maps exactly like feedparser."""
    if b"xml:base" in body or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return False
    if root.tag == f"{ATOM}feed":
        if root.find(f"{ATOM}item") is not None:  # feedparser reads a stray <item> as an entry
            return False
        if any(link.get("href") is None for link in root.iter(f"{ATOM}link")):
            return False  # feedparser reads an href-less <link> by its text, and drops the link it had
        entries, allowed = root.iterfind(f"{ATOM}entry"), _ATOM_ENTRY_TAGS
    elif root.tag == "rss":
        if root.get("version") not in ("2.0", "0.92", "0.91") or root.find("item") is not None:
            return False
        entries, allowed = root.iterfind("channel/item"), _RSS_ITEM_TAGS
    else:
        entries = [*root.iterfind(f"{RSS1}item"), *root.iterfind(f"{RSS090}item")]
        allowed = _RSS1_ITEM_TAGS
    for entry in entries:
        if not set(entry.keys()) <= _ALLOWED_ATTRS:
            return False
        singles = [c.tag for c in entry if isinstance(c.tag, str) and c.tag not in _REPEATABLE]
        if len(singles) != len(set(singles)):  # two <updated>: feedparser keeps the last one
            return False
        if f"{_DCNS}description" in singles and {"description", f"{RSS1}description", f"{RSS090}description"} & set(
            singles
        ):
            return False  # both are feedparser's summary: the later one wins there, <description> here
        for child in entry:
            if isinstance(child.tag, str) and len(child) and child.tag not in _NESTED and child.get("type") != "xhtml":
                return False  # markup as child elements of a text field (<description><p>..</p>)
        for node in entry.iterdescendants():
            if not isinstance(node.tag, str):
                continue
            if node.getparent() is entry:
                if node.tag not in allowed or not set(node.keys()) <= _ALLOWED_ATTRS:
                    return False
                if node.get("type") not in _TEXT_TYPES or node.get("src") is not None:
                    return False
                text = node.text or ""
                if node.tag in _DATE_TAGS and text.strip() and not _PLAIN_DATE.fullmatch(text.strip()):
                    return False
                if node.tag in _URL_TAGS and _ENTITY.search(text):  # '&amp;amp;': feedparser decodes it again
                    return False
                if any("\x80" <= ch <= "\x9f" for ch in text):  # cp1252 bytes read as Latin-1: feedparser repairs
                    return False
            elif (
                node.getparent().getparent() is entry
                and entry.tag == f"{ATOM}entry"
                and node.tag not in allowed
                and node.getparent().get("type") != "xhtml"
            ):
                return False
    return True


def _rss_item(node, ns: str) -> dict:
    permalink = True
    seen_tags: set[tuple[str, str | None]] = set()
    fields: dict[str, str] = {}
    tags: list[str] = []
    authors: list[str] = []
    for child in node:
        if not isinstance(child.tag, str):
            continue
        tag = child.tag[len(ns) :] if ns and child.tag.startswith(ns) else child.tag
        if tag == "category" or tag == f"{DC}subject":
            term = (child.text or "").strip()
            if (term, child.get("domain")) not in seen_tags:  # feedparser keeps a (term, scheme) once
                seen_tags.add((term, child.get("domain")))
                tags.append(term)
        elif tag in ("author", f"{DC}creator"):
            authors.append(_rss_author(child.text or ""))
        elif tag == XHTML_BODY and tag not in fields:
            fields[tag] = _inner_xml(child)
        elif tag not in fields:
            fields[tag] = child.text or ""
            if tag == "guid":  # feedparser: a permalink is isPermaLink exactly "true" (or absent), and the guid
                # stands in for the link only when no <link> came before it
                permalink = child.get("isPermaLink", "true") == "true" and "link" not in fields
    guid = (fields.get("guid") or node.get(f"{RDF_NS}about") or "").strip()
    content = (
        fields.get(CONTENT_ENCODED)
        or fields.get(XHTML_BODY)
        or fields.get("body")
        or fields.get("fullitem")
        or fields.get("description")
        or fields.get(f"{DC}description", "")
    )
    return {  # the same mapping as feedparser: pubDate -> published, dc:date -> updated, rdf:about -> guid
        "title": fields.get("title", ""),
        "link": fields.get("link", "").strip(),
        "summary_html": content,
        "guid": guid,
        # feedparser takes any permalink guid as the link (a relative one resolved), not only an absolute URL
        "guid_is_link": "guid" in fields and permalink and bool(guid),
        "authors": authors,
        "published": _feed_date(fields.get("pubDate")),
        "updated": _feed_date(fields.get(f"{DC}date") or fields.get(f"{ATOM}updated")),
        "tags": tags,
    }


# feedparser's own e-mail pattern (mixin._sync_author_detail): an RSS author is split into e-mail and name by it
_FP_EMAIL = re.compile(
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"
    r"([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)


def _rss_author(text: str) -> str:
    """The name feedparser keeps of an RSS `<author>`: its e-mail cut out ('' for a bare address)."""
    author = text.strip()
    match = _FP_EMAIL.search(author)
    if match:
        author = author.replace(match.group(0), "").replace("()", "").replace("<>", "").strip()
        author = author[1:] if author.startswith("(") else author
        author = (author[:-1] if author.endswith(")") else author).strip()
    return author


def _atom_item(node) -> dict:
    link_before_id = False
    seen_tags: set[tuple[str, str | None, str | None]] = set()
    fields: dict[str, str] = {}
    tags: list[str] = []
    authors: list[str] = []
    for child in node:
        if not isinstance(child.tag, str):
            continue
        name = child.tag.removeprefix(ATOM)
        if name == "category":
            tag_key = (child.get("term") or "", child.get("scheme"), child.get("label"))
            if tag_key not in seen_tags:  # feedparser keeps a (term, scheme, label) once
                seen_tags.add(tag_key)
                tags.append(child.get("term") or "")
        elif name == "author":
            names = child.findall(f"{ATOM}name")  # two <name>s: feedparser keeps the last
            authors.append((names[-1].text if names else "") or "")
        elif name in ("title", "summary", "content") and name not in fields:
            fields[name] = _atom_text(child)
        elif name == "link" and "id" not in fields and _is_page_link(child):
            link_before_id = True
        elif name not in fields and name != "link":
            fields[name] = child.text or ""
    guid = fields.get("id", "").strip()
    return {
        "title": fields.get("title", ""),
        "link": _atom_link(node),
        "summary_html": fields.get("content") or fields.get("summary", ""),
        "guid": guid,
        "guid_is_link": bool(guid) and not link_before_id,  # feedparser: the id stands in for a missing link
        "authors": authors,
        "published": _feed_date(fields.get("published")),
        "updated": _feed_date(fields.get("updated")),
        "tags": tags,
    }


def _inner_xml(node) -> str:
    """The markup inside an element (xhtml:body), namespace declarations and prefixes dropped."""
    from lxml import etree

    inner = (node.text or "") + "".join(etree.tostring(c, encoding="unicode") for c in node)
    return re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", inner).replace("html:", "").replace("xhtml:", "")


def _atom_text(node) -> str:
    """Atom text constructs: type="xhtml" carries markup as child elements, the others as text."""
    if node.get("type") == "xhtml":
        from lxml import etree

        div = node.find("{http://www.w3.org/1999/xhtml}div")
        target = div if div is not None else node
        text = (target.text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        inner = text + "".join(etree.tostring(c, encoding="unicode") for c in target)
        return re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", inner).replace("html:", "")
    return node.text or ""


def _atom_link(node) -> str:
    """The link feedparser reads: the last rel="alternate" link (the default rel, any case) of an HTML type (none,
    "html" or "xhtml"; "text" is text/plain); license, self, enclosure or related links are not the page."""
    found = ""
    for link in node.iterfind(f"{ATOM}link"):
        if _is_page_link(link):
            found = link.get("href").strip()
    return found


def _is_page_link(link) -> bool:
    rel, kind = link.get("rel", "alternate").lower(), link.get("type", "html").lower()
    return rel == "alternate" and kind in ("html", "xhtml") and link.get("href") is not None


def _feed_date(raw: str | None) -> datetime | None:
    """RFC 822 (RSS) or ISO 8601 (Atom, Dublin Core) to naive UTC."""
    if not raw:
        return None
    raw = raw.strip()
    if raw[:4].isdigit():
        return _iso_dt(raw) or parse_date(raw)
    if re.search(r"\b\d{1,2}\s+[A-Za-z]{3,}\.?\s+0\d{3}\b", raw):
        return None  # "Mon, 01 Jan 0001": email.utils reads the year as 2001
    try:
        from email.utils import parsedate_to_datetime

        value = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return parse_date(raw)
    return _naive_utc(value) if value.tzinfo else value


def parse_html(body: bytes, selectors: dict[str, str], base_url: str, max_entries: int = 500) -> ParseResult:
    """An HTML index page through the source's CSS selectors; nothing matched means the layout changed."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(bound_html(_decode_html(body), limit=None), "html.parser")  # nesting bounded: linear
    nodes = soup.select(selectors["item"])
    if not nodes:
        raise FetchError(f"selector {selectors['item']!r} matched nothing: the page layout may have changed")
    import soupsieve

    entries: list[Entry] = []
    seen: set[str] = set()
    no_link = no_date = 0
    for node in nodes[:max_entries]:
        title_node = node.select_one(selectors["title"])
        if title_node is None and soupsieve.match(selectors["title"], node):
            title_node = node  # a card that is itself the title
        link_node = node.select_one(selectors["link"])
        if link_node is None and soupsieve.match(selectors["link"], node):
            link_node = node  # a card that is itself the <a>
        if link_node is not None and link_node.name != "a":
            link_node = link_node.find("a") or link_node
        summary_node = node.select_one(selectors["summary"]) if selectors.get("summary") else None
        date_node = node.select_one(selectors["date"]) if selectors.get("date") else None
        tags = [t.get_text(" ", strip=True) for t in node.select(selectors["tags"])] if selectors.get("tags") else []
        entry = make_entry(
            title=title_node.get_text(" ", strip=True) if title_node else "",
            link=link_node.get("href", "") if link_node is not None else "",
            summary_html=summary_node.decode_contents() if summary_node else "",
            base_url=base_url,
            published=_parse_date_node(date_node),
            tags=tags,
        )
        if not entry.url and not entry.title:
            continue
        if entry.key in seen:
            continue
        seen.add(entry.key)
        no_link += not entry.url
        no_date += selectors.get("date") is not None and _parse_date_node(date_node) is None
        entries.append(entry)
    if not entries:
        raise FetchError(f"selector {selectors['item']!r} matched {len(nodes)} nodes but none had a title or link")
    problems = [
        f"{n} of {len(entries)} items have no {what}" for n, what in ((no_link, "link"), (no_date, "date")) if n
    ]
    return ParseResult(entries, "; ".join(problems) + (" (check the selectors)" if problems else ""))


@dataclass
class ArxivPage:
    """One page of arXiv API results: the opensearch counters and the papers on it."""

    total: int
    start: int
    entries: list[Entry]
    skipped: int = 0  # entries without an id or dates


ATOM = "{http://www.w3.org/2005/Atom}"
ATOM_NAME = f"{ATOM}name"
ARXIV_NS = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"


# arXiv hard-wraps abstracts; a hyphen at the end of a line belongs to the word ("memory-\n  bound" is
# "memory-bound"), while whitespace collapsing alone would give "memory- bound".
_LINEBREAK_HYPHEN = re.compile(rb"(?<=[A-Za-z0-9])-[ \t]*\r?\n[ \t]*(?=[A-Za-z0-9])")


def parse_arxiv_page(body: bytes) -> ArxivPage:
    """arXiv API Atom bytes -> Entries straight from lxml (no feedparser, no arxiv.Result in between)."""
    from lxml import etree

    if b"-\n" in body or b"-\r\n" in body or b"- \n" in body:
        body = _LINEBREAK_HYPHEN.sub(b"-", body)

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise FetchError(f"arXiv API answered malformed XML ({clean_text(str(exc), 200)})") from None
    if root is None or root.tag != f"{ATOM}feed":
        raise FetchError("arXiv API answered something that is not an Atom feed")
    flat = _arxiv_entries_flat(root, body)
    if flat is not None:
        entries, skipped = flat
    else:
        entries, skipped = [], 0
        for node in root.iterchildren(f"{ATOM}entry"):
            entry = _arxiv_entry(node)
            if entry is None:
                skipped += 1
            else:
                entries.append(entry)
    return ArxivPage(
        total=_int(root.findtext(f"{OPENSEARCH}totalResults")),
        start=_int(root.findtext(f"{OPENSEARCH}startIndex")),
        entries=entries,
        skipped=skipped,
    )


# Separators for the flat form of a page: private-use characters, used only when the page cannot contain them
# (neither their UTF-8 bytes nor any character reference "&#" occurs in the body).
_FIELD, _RECORD, _ITEM = "\ue000", "\ue001", "\ue002"
_ARXIV_FLAT_XSLT = f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
 xmlns:a="http://www.w3.org/2005/Atom" xmlns:x="http://arxiv.org/schemas/atom"><xsl:output method="text"
 encoding="UTF-8"/><xsl:template match="/"><xsl:for-each select="a:feed/a:entry"><xsl:value-of
 select="normalize-space(a:id)"/>{_FIELD}<xsl:value-of select="normalize-space(a:published)"/>{_FIELD}<xsl:value-of
 select="normalize-space(a:updated)"/>{_FIELD}<xsl:value-of select="normalize-space(a:title)"/>{_FIELD}<xsl:value-of
 select="normalize-space(a:summary)"/>{_FIELD}<xsl:value-of select="x:comment"/>{_FIELD}<xsl:for-each
 select="a:author"><xsl:value-of select="normalize-space(a:name)"/>{_ITEM}</xsl:for-each>{_FIELD}<xsl:for-each
 select="a:category[@term != '']"><xsl:value-of select="@term"/>{_ITEM}</xsl:for-each>{_FIELD}<xsl:value-of
 select="x:primary_category/@term"/>{_FIELD}<xsl:value-of select="normalize-space(x:doi)"/>{_RECORD}</xsl:for-each>
 </xsl:template></xsl:stylesheet>"""
_PRIVATE_USE_PREFIX = b"\xee\x80"  # UTF-8 of U+E000..U+E03F, the separators among them
_xslt_cache = threading.local()  # an lxml XSLT object belongs to the thread that made it


def _arxiv_entries_flat(root, body: bytes) -> tuple[list[Entry], int] | None:
    """Every entry's fields in one XSLT pass as one delimited string: ~25% less CPU than visiting each element
    from Python, and the XSLT half of it runs without the GIL, beside the writer thread. None (use
    `_arxiv_entry`) when the page could contain a separator."""
    ascii_only = body.isascii()
    if b"&#" in body or (not ascii_only and _PRIVATE_USE_PREFIX in body):
        return None
    from lxml import etree

    xslt = getattr(_xslt_cache, "xslt", None)
    if xslt is None:
        stylesheet = etree.XML(_ARXIV_FLAT_XSLT.encode())
        xslt = _xslt_cache.xslt = etree.XSLT(stylesheet, access_control=etree.XSLTAccessControl.DENY_ALL)
    flat = bytes(xslt(root)).decode("utf-8")
    # normalize-space() collapses XML's four whitespace characters. Without character references, other
    # whitespace or DEL (XML 1.0 allows no other control) only come as non-ASCII bytes or 0x7f in the body:
    # then clean_text runs on each field as well.
    trusted = ascii_only and b"\x7f" not in body
    entries: list[Entry] = []
    skipped = 0
    for record in flat.split(_RECORD)[:-1]:
        try:
            entry_id, published_text, updated_text, title, summary, comment, names, terms, primary, doi = record.split(
                _FIELD
            )
        except ValueError:
            return None
        published = _iso_dt(published_text)
        if not entry_id or published is None:
            skipped += 1
            continue
        authors = names.split(_ITEM)[:-1]
        if trusted:
            title, summary = title[:TITLE_MAX], summary[:SUMMARY_MAX]
            authors = [a[:200] for a in authors]
        else:
            title, summary = clean_text(title, TITLE_MAX), clean_text(summary, SUMMARY_MAX)
            authors = [clean_text(a, 200) for a in authors]
        arxiv_id, version = parse_arxiv_id(entry_id) or (entry_id, None)
        entries.append(
            Entry(
                key=entry_key(arxiv_id=arxiv_id, guid="", link="", title="", content=""),
                kind="paper",
                title=title,
                url=f"https://arxiv.org/abs/{arxiv_id}",
                pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
                summary=summary,
                authors=authors,
                published=published,
                updated=_iso_dt(updated_text) or published,
                arxiv_id=arxiv_id,
                arxiv_version=version or 1,
                tags=primary_first(terms.split(_ITEM)[:-1], primary),
                code_urls=code_urls_in(summary, comment),
                doi=clean_text(doi, 300),
            )
        )
    return entries, skipped


def primary_first(categories: list[str], primary: str) -> list[str]:
    """arXiv's categories with the primary one (arxiv:primary_category) first: stored so, it is the paper's
    primaryClass in BibTeX."""
    primary = primary.strip()
    if not primary:
        return categories
    return [primary, *(c for c in categories if c != primary)]


def _arxiv_entry(node) -> Entry | None:
    """One <entry> in a single pass over its children (lxml's find() per field costs 3x more), keyed by its
    version-less arXiv id; None without an id or a date."""
    from lxml.etree import Element

    fields: dict[str, str] = {}
    authors: list[str] = []
    categories: list[str] = []
    primary = ""
    for child in node.iterchildren(Element):  # elements only: no comments or processing instructions
        name = child.tag.rpartition("}")[2]
        if name == "author":  # lxml's findtext() goes through Python ElementPath: 2x slower
            first = next(child.iterchildren(ATOM_NAME), None)
            authors.append(clean_text(first.text if first is not None else "", 200))
        elif name == "category":
            term = child.get("term")
            if term:
                categories.append(term)
        elif name == "primary_category":
            primary = child.get("term") or ""
        elif name != "link":
            fields[name] = child.text or ""
    entry_id = fields.get("id", "").strip()
    published = _iso_dt(fields.get("published"))
    if not entry_id or published is None:
        return None
    arxiv_id, version = parse_arxiv_id(entry_id) or (entry_id, None)
    summary = clean_text(fields.get("summary", ""), SUMMARY_MAX)
    return Entry(
        key=entry_key(arxiv_id=arxiv_id, guid="", link="", title="", content=""),
        kind="paper",
        title=clean_text(fields.get("title", ""), TITLE_MAX),
        url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        summary=summary,
        authors=authors,
        published=published,
        updated=_iso_dt(fields.get("updated")) or published,
        arxiv_id=arxiv_id,
        arxiv_version=version or 1,
        tags=primary_first(categories, primary),
        doi=clean_text(fields.get("doi", ""), 300),
        code_urls=code_urls_in(summary, fields.get("comment", "")),
    )


def _iso_dt(text: str | None) -> datetime | None:
    if not text:
        return None
    text = text.strip()
    try:
        if text.endswith("Z"):  # arXiv's form: already UTC, no time zone arithmetic needed
            return datetime.fromisoformat(text[:-1])
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _naive_utc(value) if value.tzinfo else value


def _int(text: str | None) -> int:
    try:
        return int((text or "0").strip())
    except ValueError:
        return 0


XML_DECL_RE = re.compile(rb"^(\s*<\?xml[^>]*?encoding=)([\"'])[^\"']*\2", re.IGNORECASE)


def _prefer_utf8(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """Bytes that are valid non-ASCII UTF-8 are read as UTF-8 whatever charset the feed or server declares."""
    if body.isascii():
        return body, headers
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return body, headers
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    headers["content-type"] = "application/xml; charset=utf-8"
    return XML_DECL_RE.sub(rb"\1\2utf-8\2", body, count=1), headers


def _entry_html(raw) -> str:
    content = raw.get("content") or []
    if content and content[0].get("value"):
        return content[0]["value"]
    return raw.get("summary", "") or ""


def _decode_html(body: bytes) -> str:
    """Valid UTF-8 wins over whatever charset the page declares."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        from bs4 import UnicodeDammit

        return UnicodeDammit(body).unicode_markup or body.decode("latin-1")


def _parse_date_node(node) -> datetime | None:
    """A date element: its machine-readable attributes first (datetime, title, content, also on a <time> inside),
    then its text."""
    if node is None:
        return None
    for candidate in (node, node.find("time")):
        if candidate is None:
            continue
        for attr in ("datetime", "title", "content"):
            value = candidate.get(attr)
            if value and (found := parse_date(value)) is not None:
                return found
    return parse_date(node.get_text(" ", strip=True))


def parse_date(raw: str | None) -> datetime | None:
    """ISO dates, RFC 822 dates and 'May 27, 2026' -> naive UTC datetime, else None."""
    if not raw:
        return None
    raw = raw.strip()
    try:
        return _naive_utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return _naive_utc(parsedate_to_datetime(raw))
    except (TypeError, ValueError, IndexError):
        pass
    for fmt in ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%Y/%m/%d"):
        try:
            return datetime.strptime(raw, fmt)
        except ValueError:
            continue
    return _dateparser(raw)


_DATEPARSER_SETTINGS = {
    "RETURN_AS_TIMEZONE_AWARE": True,
    "PREFER_DATES_FROM": "past",
    "REQUIRE_PARTS": ["day", "month", "year"],
}


def _dateparser(raw: str) -> datetime | None:
    """The long tail of page dates ("Nov. 25, 2020", "Thu 13 September 2018"): dateparser, English, a full date
    required. Only reached when the forms above fail (its first call loads its tables, ~0.4 s)."""
    if len(raw) > 60 or not re.search(r"\d", raw):
        return None
    import dateparser

    try:
        value = dateparser.parse(raw, languages=["en"], settings=_DATEPARSER_SETTINGS)
    except (ValueError, OverflowError):
        return None
    return _naive_utc(value) if value is not None else None


def _struct_to_dt(value) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), UTC).replace(tzinfo=None)


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _fallback_title(summary: str, url: str) -> str:
    if summary:
        words = summary.split()
        return " ".join(words[:12]) + ("…" if len(words) > 12 else "")
    return url or "(untitled)"
