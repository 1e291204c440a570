"""Pure helpers: canonical arXiv ids, safe canonical URLs, clean text, stable keys and hashes."""

from __future__ import annotations

import hashlib
import html as htmllib
import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import nh3

# New-style ids (2602.06036v2) and old-style ids (hep-th/9901001, math.CA/0611800v1).
_NEW_ID = r"(?P<new>\d{4}\.\d{4,5})"
_OLD_ID = r"(?P<old>[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7})"
ARXIV_ID_RE = re.compile(rf"^(?:arxiv:)?(?:{_NEW_ID}|{_OLD_ID})(?:v(?P<ver>\d+))?$", re.IGNORECASE)
ARXIV_URL_RE = re.compile(rf"arxiv\.org/(?:abs|pdf|html)/(?:{_NEW_ID}|{_OLD_ID})(?:v(?P<ver>\d+))?", re.IGNORECASE)
CODE_URL_RE = re.compile(
    r"https?://(?:www\.)?(?:github\.com|gitlab\.com|huggingface\.co)/[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+",
)
TRACKING_PARAMS = re.compile(r"^(utm_.*|fbclid|gclid|mc_cid|mc_eid|ref)$", re.IGNORECASE)
SAFE_SCHEMES = ("http", "https")
TAG_RE = re.compile(r"<[^>]*>")
ALLOWED_TAGS = {"a", "p", "br", "ul", "ol", "li", "em", "strong", "b", "i", "code", "pre", "blockquote", "sub", "sup"}


def parse_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """'2602.06036v2' / 'http://arxiv.org/abs/hep-th/9901001' -> ('2602.06036', 2) / ('hep-th/9901001', None)."""
    text = text.strip()
    match = ARXIV_URL_RE.search(text) or ARXIV_ID_RE.match(text)
    if not match:
        return None
    if match.group("new"):
        base = match.group("new")
    else:
        archive, number = match.group("old").split("/")
        head, _, sub = archive.partition(".")
        base = f"{head.lower()}{'.' + sub.upper() if sub else ''}/{number}"
    version = int(match.group("ver")) if match.group("ver") else None
    return base, version


_OAI_PREFIX = re.compile(r"^oai:arxiv\.org:", re.IGNORECASE)
ANNOUNCE_PREFIX = re.compile(
    r"^\s*arXiv:(?P<id>\S+?)(?:v(?P<ver>\d+))?\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*)?", re.IGNORECASE
)


def arxiv_listing_id(guid: str, link: str) -> tuple[str, int | None] | None:
    """The paper an arXiv listing item is (rss.arxiv.org / export.arxiv.org/rss): its guid is
    `oai:arXiv.org:ID vN` or its link is an arxiv.org/abs page. A post that only links to a paper is not one."""
    guid = (guid or "").strip()
    if _OAI_PREFIX.match(guid):
        return parse_arxiv_id(_OAI_PREFIX.sub("", guid))
    link = (link or "").strip()
    if re.match(r"^https?://(?:www\.|export\.)?arxiv\.org/abs/", link, re.IGNORECASE):
        return parse_arxiv_id(link)
    return None


def arxiv_ids_in(text: str) -> list[str]:
    """Every arXiv id linked from a piece of text or HTML, first seen first."""
    seen: dict[str, None] = {}
    for match in ARXIV_URL_RE.finditer(text):
        parsed = parse_arxiv_id(match.group(0))
        if parsed:
            seen.setdefault(parsed[0], None)
    return list(seen)


def code_urls_in(*texts: str) -> list[str]:
    """GitHub, GitLab and Hugging Face repository links in the texts, de-duplicated, in order.

    A text without "://" is skipped before the regex: most abstracts hold no link, and the substring test
    costs a small fraction of a regex scan (arXiv ingest reads ~10,000 of them per second)."""
    seen: dict[str, None] = {}
    for text in texts:
        if "://" in text:
            for match in CODE_URL_RE.finditer(text):
                seen.setdefault(match.group(0).rstrip(".").removesuffix(".git"), None)
    return list(seen)


def safe_url(href: str | None, base: str = "") -> str:
    """An absolute http(s) URL without tracking params or fragment, else '' (javascript:, data:, ...)."""
    if not href:
        return ""
    href = href.strip()
    if any(ch in href for ch in "\r\n\t\x00"):
        return ""
    try:
        absolute = urljoin(base, href) if base else href
        parts = urlsplit(absolute)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:  # "http://[oops/", a port of letters: not a link we can follow
        return ""
    if parts.scheme.lower() not in SAFE_SCHEMES or not parts.netloc:
        return ""
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k)]
    )
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))


HTML_INPUT_MAX = 1_000_000  # characters of markup sanitised per field (5x the HTML kept: caps count text)
MAX_DEPTH = 128  # open elements kept nested; deeper start and end tags are dropped (their text stays)
# Elements whose end tag is optional: the parser closes them itself, so they never pile up (not counted).
SELF_CLOSING = {"p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rb", "rt", "rp", "rtc", "thead",
                "tbody", "tfoot", "colgroup", "caption", "html", "head", "body"}  # fmt: skip
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
        "wbr", "keygen", "frame", "basefont", "bgsound", "isindex"}  # fmt: skip
# A tag's scan stops at the next '<' (as well as at '>'), so a run of '<' without '>' costs linear time.
_BOUND_TAG_RE = re.compile(r"(<(/?)([A-Za-z][^\s/<>]{0,63})[^<>]{0,4096}>)")
_UNCOUNTED = {n for name in VOID | SELF_CLOSING for n in (name, name.upper(), name.capitalize())}


def bound_html(html: str, limit: int | None = HTML_INPUT_MAX, depth: int = MAX_DEPTH) -> str:
    """Cap markup at `limit` characters and drop tags nested deeper than `depth`, in one linear pass.

    An HTML tree builder checks the stack of open elements at many start tags, so 50,000 nested <div>s
    cost it quadratic time (12 CPU s for a 0.55 MB feed); with at most `depth` open, each tag costs O(1).
    Only tags are dropped, never text; what is kept is still sanitised afterwards."""
    if limit is not None:
        html = html[:limit]
    if html.count("<") <= depth:  # cannot nest deeper than it has tags
        return html
    pieces = _BOUND_TAG_RE.split(html)  # text, tag, '/' or '', name, text, tag, ...
    opened = excess = dropped = 0
    uncounted = _UNCOUNTED
    for i in range(1, len(pieces), 4):
        name = pieces[i + 2]
        if name in uncounted or pieces[i].endswith("/>") or name.lower() in uncounted:
            continue
        if not pieces[i + 1]:  # a start tag
            if opened < depth:
                opened += 1
                continue
            excess += 1
        elif excess:  # the end tag of a dropped start tag (by count: the parser would not match them either)
            excess -= 1
        else:
            if opened:
                opened -= 1
            continue
        pieces[i] = ""
        dropped += 1
    if not dropped:
        return html
    pieces[2::4] = [""] * len(pieces[2::4])  # the captured '/' and name: already part of the tag
    pieces[3::4] = [""] * len(pieces[3::4])
    return "".join(pieces)


TEXT_RUN_MAX = 512  # characters of text between two tags before an empty comment splits them
# A run of text longer than TEXT_RUN_MAX, tried only where text starts (after '>', at the start, or after a
# '<' that opens no tag), so the scan is linear.
_LONG_TEXT_RE = re.compile(rf"(?:(?<=>)|^|(?<=<)(?=[^A-Za-z/!?]))[^<>]{{{TEXT_RUN_MAX + 1},}}")
# Elements whose content html5ever reads as one raw text node (RCDATA, RAWTEXT), where a comment is text.
_RAW_TEXT_TAG_RE = re.compile(
    r"</?(?:textarea|title|xmp|iframe|noembed|noframes|noscript|plaintext)(?![A-Za-z0-9-])[^<>]{0,4096}>",
    re.IGNORECASE,
)


def _split_text(match: re.Match) -> str:
    """The run cut every TEXT_RUN_MAX characters, never inside a character reference ('&amp;')."""
    run, parts, start = match.group(0), [], 0
    while len(run) - start > TEXT_RUN_MAX:
        cut = start + TEXT_RUN_MAX
        amp = run.rfind("&", cut - 40, cut)  # the longest reference name is 32 characters
        if amp > start and run.find(";", amp, cut) == -1:
            cut = amp
        parts.append(run[start:cut])
        start = cut
    parts.append(run[start:])
    return "<!---->".join(parts)


def short_text_nodes(html: str) -> str:
    """Markup html5ever (nh3) reads in linear time, showing the same text once sanitised.

    html5ever grows a text node by copying it at each '&', '©' and the like: 1,000,000 '©' cost 22 CPU s,
    1,000,000 '&' 10 s. An empty comment every TEXT_RUN_MAX characters ends the node (the sanitiser drops
    comments, so the text reads the same); the tags that would make their content one raw text node
    (textarea, title, xmp, iframe, noembed, noframes, noscript, plaintext; none is allowed, their text is
    kept either way) are dropped first, so that the comments work there too."""
    if len(html) <= TEXT_RUN_MAX:
        return html
    return _LONG_TEXT_RE.sub(_split_text, _RAW_TEXT_TAG_RE.sub("", html))


def sanitize_html(html: str) -> str:
    """Allow-listed HTML with http/https/mailto links only; scripts and handlers removed. Linear time: the
    input is capped and its nesting bounded first (bound_html)."""
    return nh3.clean(
        short_text_nodes(bound_html(html)),
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
        attribute_filter=_trim_attribute,
    ).strip()


def _trim_attribute(element: str, attribute: str, value: str) -> str:
    """href=" /a " is the link /a (as feedparser reads it)."""
    return value.strip()


def html_to_text(html: str) -> str:
    """Visible text of a fragment, whitespace collapsed; markup and entities resolved."""
    if "<" not in html and "&" not in html:
        return clean_text(html)
    # nh3 drops scripts and styles with their content and escapes stray '<', so what is left between
    # tags is text: replacing each tag by a space then unescaping is exact and ~20x faster than a DOM.
    cleaned = nh3.clean(short_text_nodes(bound_html(html)), tags=ALLOWED_TAGS - {"a"}, attributes={})
    return clean_text(htmllib.unescape(TAG_RE.sub(" ", cleaned)))


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(text: str, limit: int = 20_000) -> str:
    """Single-spaced text with control characters removed, capped at `limit` characters."""
    text = text or ""
    if not text.isprintable() and _CONTROL_RE.search(text):  # isprintable(): a C scan, 3x cheaper than the regex
        text = _CONTROL_RE.sub(" ", text)
    return " ".join(text.split())[:limit]


def content_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def entry_key(*, arxiv_id: str | None, guid: str, link: str, title: str, content: str) -> str:
    """arxiv:ID, else guid, else canonical link, else a hash of title and content (as miniflux does)."""
    if arxiv_id:
        return f"arxiv:{arxiv_id}"
    if guid:
        return f"guid:{guid.strip()[:500]}"
    if link:
        return f"url:{link}"
    return f"hash:{content_hash(title, content)}"


def slugify(text: str, limit: int = 80) -> str:
    """[a-z0-9-] only, length-capped: safe as a file name under the output folder."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "item"
