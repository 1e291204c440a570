"""Pure rendering: item views in, a plan of pages (input key + lazy renderer) and email messages out."""

from __future__ import annotations

import email.policy
import hashlib
import json
import marshal
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache, lru_cache
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from jinja2 import Environment, FileSystemLoader, select_autoescape
from jinja2.filters import do_truncate
from markupsafe import Markup

from digest.config import REPO_ROOT, Config, SiteConfig
from digest.headline import Headline, choose_headline, format_claim
from digest.models import Topic
from digest.normalize import clean_text, slugify
from digest.store import ItemView, SiteSignatures
from digest.summarize import ONE_LINE_HEAD, key_points, one_line, sentences

TEMPLATES = REPO_ROOT / "templates"
CSS = "style.css"
SEARCH_JS = "search.js"
STATIC = (CSS, SEARCH_JS)
FEED_ITEMS = 50
TAG_FEED_ITEMS = 20
VERDICT_LABELS = {"reproduced": "reproduced", "diverged": "diverged", "failed": "failed", "skipped": "not checked"}


@cache
def environment(extra: str | None = None) -> Environment:
    """User templates first (extra), then the packaged ones: the pelican override chain."""
    paths = [p for p in (extra, str(TEMPLATES)) if p]
    env = Environment(
        loader=FileSystemLoader(paths),
        autoescape=select_autoescape(["html", "xml"]),
        auto_reload=False,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["date"] = lambda d: d.strftime("%Y-%m-%d") if d else ""
    env.filters["claim"] = format_claim
    env.filters["href"] = external_url
    env.filters["verdict_label"] = verdict_label
    env.filters["verdict_badge"] = verdict_badge
    return env


def _bytecode_cache():
    """Compiled templates kept between runs (Jinja's per-user temp folder): compiling costs ~0.1 s a build."""
    from jinja2 import FileSystemBytecodeCache

    try:
        return FileSystemBytecodeCache()
    except RuntimeError:  # no usable private temp folder: compile every run
        return None


def verdict_label(verdict: str) -> str:
    return VERDICT_LABELS.get(verdict, clean_text(verdict, 40))


def verdict_badge(verdict: str | None) -> Markup:
    """A claim's latest reproduction verdict as a small badge; nothing when no run exists."""
    if not verdict:
        return Markup("")
    return Markup(' <span class="verdict verdict-{}" title="Latest reproduction run">{}</span>').format(
        slugify(verdict, 20), verdict_label(verdict)
    )


HTTP_URL = re.compile(r"https?://[^\x00-\x20\x7f/][^\x00-\x20\x7f]*", re.IGNORECASE)


def external_url(url: str | None) -> str:
    """An http(s) URL or '': the renderer does not trust even stored URLs to be safe."""
    url = (url or "").strip()
    return url if HTTP_URL.fullmatch(url) else ""


def _escape_py(s: str) -> str:
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("'", "&#39;").replace('"', "&#34;")


try:  # markupsafe.escape's C loop, without the Markup object it wraps each result in (4x cheaper than _escape_py)
    from markupsafe._speedups import _escape_inner as _escape_str
except ImportError:  # markupsafe without its C extension, or another version
    _escape_str = _escape_py


def _esc(value) -> str:
    """markupsafe.escape's output (what Jinja's autoescape writes) as a plain str: & < > ' " become entities."""
    if isinstance(value, Markup):
        return str(value)
    return _escape_str(str(value))


def finding_card(f: Finding, root: str) -> Markup:
    """A finding's card on the home, topic and week pages. Built here, not in a template: a full build
    renders ~20,000 of them and a Jinja macro call costs 3x more. Every value goes through _esc()."""
    e = _esc
    out = [
        f'<article class="finding">\n  <h3><a href="{e(root)}{e(f.path)}">{e(f.title_300)}</a></h3>\n'
        f'  <p class="meta">{e(f.date)} · {e(f.item.source)}'
    ]
    if f.item.arxiv_id:
        out.append(f" · arXiv:{e(f.item.arxiv_id)}")
    out.append(f'</p>\n  <p class="one-line">{e(f.one_line)}</p>\n  ')
    if f.headline:
        out.append(f'<p class="headline"><span class="num">{e(f.headline.text)}</span>{e(f.headline_badge)}</p>')
    out.append("\n  ")
    if f.tag_links:
        tags = "".join(f'<a class="tag" href="{e(root)}{e(href)}">{e(name)}</a> ' for href, name, _ in f.tag_links)
        out.append(f'<p class="tags">{tags}</p>')
    out.append("\n</article>")
    return Markup("".join(out))


ITEM_SLOT = re.compile("\x00(title|head|main)\x00")


def item_shell(env: Environment, common: dict) -> list[str]:
    """templates/item.html (the page chrome of base.html) rendered once with markers where an item's title, head
    and article go, split there: even entries are constant text, odd ones the slot names."""
    marks = {name: Markup(f"\x00{name}\x00") for name in ("title", "head", "main")}
    return ITEM_SLOT.split(env.get_template("item.html").render(root="../", **common, **marks))


def item_slots(f: Finding, base: str, root: str = "../") -> dict[str, str]:
    """An item page's title, head (citation_* meta tags, what Zotero saves, and the canonical link) and article,
    for item_shell's slots. Built here, not in a template: item pages are 90% of a build and a template costs
    ~5x more per page. Feed values go through _esc(), text between tags in one call (escaping is per character,
    so escaping the joined text equals joining the escaped parts); links through external_url() too. `base`:
    the escaped base URL. Paths (item_path, tag_path) and dates are [a-z0-9./-] by construction."""
    e, item, view, authors = _esc, f.item, f.view, f.authors
    title = e(item.title)
    url, pdf_url = (e(u) for u in f.links)
    head = [f'<meta name="citation_title" content="{title}">\n']
    head += [f'<meta name="citation_author" content="{e(a)}">\n' for a in authors]
    head.append(f'<meta name="citation_publication_date" content="{_slashed(item.published, f.date)}">\n')
    if item.arxiv_id:
        head.append(f'<meta name="citation_arxiv_id" content="{e(item.arxiv_id)}">\n')
        if pdf_url:
            head.append(f'<meta name="citation_pdf_url" content="{pdf_url}">')
        head.append("\n")
        if url:
            head.append(f'<meta name="citation_abstract_html_url" content="{url}">')
    head.append(f'\n<link rel="canonical" href="{base}{f.path}">')

    meta = [", ".join(map(str, authors[:6])) + (" et al. · " if len(authors) > 6 else " · ")] if authors else []
    meta.append(f"{f.date} · {item.source}")
    if item.arxiv_id:
        meta.append(f" · arXiv:{item.arxiv_id}" + (f"v{item.arxiv_version}" if item.arxiv_version else ""))
    out = [
        f'<article class="item" data-pagefind-body>\n<h1>{title}</h1>\n<p class="meta" data-pagefind-ignore>'
        f'{e("".join(meta))}</p>\n<p class="one-line">{e(f.one_line)}</p>\n'
    ]
    if f.points:
        out.append('<h2>Key points</h2>\n<ul class="points">')
        out += [f"<li>{e(p)}</li>" for p in f.points]
        out.append("</ul>")
    out.append("\n")
    if view.claims:
        verdicts = view.verdicts
        out.append('<h2>Headline numbers</h2>\n<ul class="claims">')
        for c in view.claims:
            cid, verdict = c.id, verdicts.get(c.id)
            more = (f" · {c.subject}" if c.subject else "") + (f" · {c.context}" if c.context else "")
            out.append(
                f'<li id="claim-{cid if type(cid) is int else e(cid)}"><span class="num">{e(format_claim(c))}</span> '
                f'<span class="kind">{e(c.kind)}</span>{e(more) if more else ""}'
                f"{verdict_badge(verdict) if verdict else ''}<blockquote>{e(c.text)}</blockquote></li>"
            )
        out.append("</ul>")
    out.append("\n")
    if f.tag_links:
        root = e(root)
        out.append('<h2>Topics</h2>\n<p class="tags">')
        out += [
            f'<a class="tag" href="{root}{href}">{_esc_label(name)} <span class="count">{score:.2f}</span></a> '
            for href, name, score in f.tag_links
        ]
        out.append("</p>")
    out.append("\n")
    if not item.arxiv_id and f.blog_tags:
        out.append(f'<p class="blog-tags">Source tags: {e(" · ".join(map(str, f.blog_tags)))}</p>')
    out.append('\n<h2>Links</h2>\n<ul class="links" data-pagefind-ignore>\n')
    if url:
        label = "arXiv abstract" if item.arxiv_id else "Original post"
        out.append(f'<li><a href="{url}" rel="noopener noreferrer">{label}</a></li>')
    out.append("\n")
    if pdf_url:
        out.append(f'<li><a href="{pdf_url}" rel="noopener noreferrer">PDF</a></li>')
    out.append("\n</ul>\n")
    if f.code_urls:
        out.append('<h2>Code</h2>\n<ul class="links code" data-pagefind-ignore>')
        shown = [e(u) for u in f.code_urls if external_url(u)]
        out += [f'<li><a href="{u}" rel="noopener noreferrer">Code: {u}</a></li>' for u in shown]
        out.append("</ul>")
    out.append("\n")
    if view.coverage:
        out.append('<h2>Blog coverage</h2>\n<ul class="links coverage" data-pagefind-ignore>')
        for post in view.coverage:
            href, text = external_url(post.url), f"Coverage: {e(post.title)}"
            link = f'<a href="{e(href)}" rel="noopener noreferrer">{text}</a>' if href else text
            when = post.published.strftime("%Y-%m-%d") if post.published else ""
            out.append(f'<li>{link} <span class="meta">({e(f"{post.source}, {when}")})</span></li>')
        out.append("</ul>")
    out.append("\n")
    if f.bibtex:
        out.append(
            f'<details class="bibtex" data-pagefind-ignore><summary>BibTeX</summary><pre>{e(f.bibtex)}</pre></details>'
        )
    out.append("\n")
    if item.summary:
        out.append(f"<details data-pagefind-ignore><summary>Full abstract</summary><p>{e(item.summary)}</p></details>")
    out.append("\n</article>")
    return {"title": title, "head": "".join(head), "main": "".join(out)}


@lru_cache(maxsize=4096)
def _esc_label(name: str) -> str:
    """A topic name escaped once per build, not once per finding that shows it."""
    return _esc(name)


def _slashed(when: datetime, iso: str) -> str:
    """YYYY/MM/DD from the ISO date already made (strftime, 20x dearer, writes years before 1000 unpadded)."""
    return iso.replace("-", "/") if when.year >= 1000 else when.strftime("%Y/%m/%d")


@cache
def templates_digest() -> str:
    """Any change to a template or static file invalidates every page built from it."""
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(TEMPLATES.iterdir()):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def item_path(view_or_item) -> str:
    item = getattr(view_or_item, "item", view_or_item)
    stem = item.arxiv_id if item.arxiv_id else item.title
    return f"items/{item.id}-{slugify(stem, 60)}.html"


@cache
def tag_path(slug: str) -> str:
    return f"tags/{slugify(slug)}.html"


@cache
def tag_feed_path(slug: str) -> str:
    return f"tags/{slugify(slug)}.atom"


@cache
def week_path(week: str) -> str:
    return f"weeks/{slugify(week)}.html"


def week_of(view: ItemView) -> str:
    year, week, _ = view.item.published.date().isocalendar()
    return f"{year}-W{week:02d}"


def bibtex(view: ItemView, authors: list[str] | None = None) -> str:
    """A BibTeX @misc entry for an arXiv item (braces and backslashes from feed text removed); `authors`: the
    view's, when already parsed."""
    item = view.item

    def field(text: str) -> str:
        return clean_text(re.sub(r"[{}\\]", "", text), 2000)

    authors = view.authors if authors is None else authors  # view.authors: parsed from JSON on each access
    first = (authors[0].split()[-1] if authors and authors[0].split() else "anon").lower()
    key = (
        f"{slugify(first, 30).replace('-', '')}{item.published.year}{slugify(item.arxiv_id or '', 20).replace('-', '')}"
    )
    lines = [
        f"@misc{{{key},",
        f"  title = {{{{{field(item.title)}}}}},",
        f"  author = {{{field(' and '.join(authors)) or 'Anonymous'}}},",
        f"  year = {{{item.published.year}}},",
        f"  eprint = {{{field(item.arxiv_id or '')}}},",
        "  archivePrefix = {arXiv},",
        f"  url = {{https://arxiv.org/abs/{field(item.arxiv_id or '')}}}",
        "}",
    ]
    return "\n".join(lines)


class _once:
    """functools.cached_property without its lock: Python 3.11 takes one on each first access, ~110,000 of them a
    full build. Computes on first access and stores the value on the instance, which later reads find first."""

    def __init__(self, func: Callable):
        self.func, self.name, self.__doc__ = func, func.__name__, func.__doc__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


class Finding:
    """One finding as pages show it; the summary work is done only for pages actually rendered."""

    def __init__(self, view: ItemView, names: dict[str, str]):
        self.view = view
        self.item = view.item
        self.path = item_path(view)
        self.week = week_of(view)
        self.names = names

    @_once
    def headline(self) -> Headline | None:
        """The main result (digest.headline's choice, shared with the newsletter, export and search)."""
        return choose_headline(self.view.claims, self.item.summary or "")

    @_once
    def headline_claim(self):
        return self.headline.claim if self.headline else None

    @_once
    def _sentences(self) -> list[str] | None:
        """The summary split once for both one_line and key_points (when one_line would split the same text)."""
        summary = self.item.summary or ""
        return sentences(summary) if len(summary) <= ONE_LINE_HEAD else None

    @_once
    def one_line(self) -> str:
        return one_line(self.item.summary, parts=self._sentences)

    @_once
    def points(self) -> list[str]:
        return key_points(self.item.summary, [c.text for c in self.view.claims], parts=self._sentences)

    @_once
    def title_300(self) -> str:
        return do_truncate(environment(), self.item.title, 300, True)

    @_once
    def date(self) -> str:
        return self.item.published.date().isoformat()  # YYYY-MM-DD, 20x cheaper than strftime

    @_once
    def links(self) -> tuple[str, str]:
        """The abstract (or post) and PDF links, each '' unless http(s)."""
        return external_url(self.item.url), external_url(self.item.pdf_url)

    @_once
    def tag_links(self) -> list[tuple[str, str, float]]:
        """(page path, topic name, score) per tag, best first."""
        return [(tag_path(slug), self.names.get(slug, slug), score) for slug, score in self.view.tags]

    @_once
    def atom_entry(self) -> dict:
        """This finding as an Atom entry (templates/atom.xml); one finding sits in several feeds."""
        return {
            "f": self,
            "title": _xml_text(self.item.title, 500),
            "published": self.item.published.replace(tzinfo=UTC).isoformat(),
            "updated": _when(self).isoformat(),
            "summary": _xml_text(self.one_line, 1000) or _xml_text(self.item.title, 500),
            "authors": [_xml_text(a, 200) for a in self.authors[:10]],
            "categories": [(slug, _xml_text(self.names.get(slug, slug), 200)) for slug, _ in self.view.tags],
        }

    @_once
    def headline_badge(self) -> Markup:
        return verdict_badge(self.view.verdicts.get(self.headline_claim.id)) if self.headline_claim else Markup("")

    @_once
    def bibtex(self) -> str:
        return bibtex(self.view, self.authors) if self.item.arxiv_id else ""

    @_once
    def authors(self) -> list[str]:
        return self.view.authors

    @_once
    def code_urls(self) -> list[str]:
        return [] if self.item.code_urls in ("[]", "", None) else self.view.code_urls  # most have none

    @_once
    def blog_tags(self) -> list[str]:
        return self.view.blog_tags


def finding(view: ItemView, names: dict[str, str] | None = None) -> Finding:
    return Finding(view, names or {})


@dataclass
class Page:
    """One output file: `key` digests its inputs, `render` produces its bytes only when asked.

    `needs`: the findings `render` reads (loaded just before rendering); `cards` and `entries`: the findings
    whose card or Atom entry it shows (taken from the fragment cache, else loaded). A page with `parts` is
    the `join` of those pages' bytes: it is assembled after them, from the files just written.
    """

    key: str
    render: Callable[[], bytes]
    needs: tuple[int, ...] = ()
    parts: tuple[str, ...] = ()
    join: Callable[[list[bytes]], bytes] | None = None
    cards: tuple[int, ...] = ()
    entries: tuple[int, ...] = ()


class ItemPage:
    """An item page, as write_site sees a Page: 10,000 of them are planned on every build, so no closures."""

    __slots__ = ("_render", "id", "key")
    parts: tuple[str, ...] = ()
    join = None
    cards: tuple[int, ...] = ()
    entries: tuple[int, ...] = ()

    def __init__(self, key: str, iid: int, render: Callable[[int], bytes]):
        self.key, self.id, self._render = key, iid, render

    @property
    def needs(self) -> tuple[int, ...]:
        return (self.id,)

    def render(self) -> bytes:
        return self._render(self.id)


@dataclass(slots=True)
class Listing:
    """What list pages need of a finding without loading it: its input key, page, week and tags."""

    id: int
    key: str
    path: str
    week: str
    tags: list[tuple[int, str, float]]  # (item id, topic slug, score), best first


@dataclass
class Build:
    """A planned site: its pages, how to load the findings they need, per-finding manifest rows, and the
    fragments (cards, feed entries) rendered in this process that the fragment cache lacks."""

    pages: dict[str, Page]
    load: Callable[..., None]
    items: dict[str, list[str]]  # item id -> [key, path, week], kept in the build manifest
    fragments: Callable[[], dict[tuple[int, str], tuple[str, str]]] = dict  # drains {(id, kind): (key, body)}
    groups: dict[str, str] = field(default_factory=dict)  # id // GROUP -> digest of its findings' signatures


GROUP = 64  # findings (by id) whose signatures are digested together: only a changed group is keyed finding by finding
CARD_ROOT = "../"  # cards are cached as tag and week pages show them; other depths rewrite the prefix


def _key(*parts) -> str:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).hexdigest()


def signature_key(salt: str, parts) -> str:
    """The digest of change signatures (one finding's, or a group's): equal keys mean an equal item page and equal
    cards and feed entries."""
    try:
        data = marshal.dumps((salt, parts), 2)  # version 2: no back-references, so equal values give equal bytes
    except ValueError:  # datetimes (PostgreSQL rows, hand-built views)
        data = repr((salt, parts)).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def site_salt(site: SiteConfig, topics: list[Topic]) -> str:
    """What every page depends on: renderer code, templates, site settings and the taxonomy's names."""
    return _key(code_digest(), site.title, site.base_url, site.timezone, [(t.slug, t.name) for t in topics])


def signatures_of(views: list[ItemView]) -> SiteSignatures:
    """The change signatures of hand-built views (tests, previews), shaped like store.site_signatures'."""

    def content(i) -> str:
        fields = (i.title, i.summary, i.url, i.pdf_url, i.authors, i.code_urls, i.blog_tags, i.source, i.kind)
        return getattr(i, "content_hash", "") or _key(*fields)

    items, tags, claims, runs, coverage = [], {}, {}, {}, {}
    for v in views:
        i = v.item
        items.append((i.id, i.published, i.updated, content(i), i.arxiv_version, i.arxiv_id))
        tags[i.id] = [(i.id, slug, score) for slug, score in v.tags]
        claims[i.id] = [(i.id, c.id, c.value, c.value_hi, c.unit, c.kind, c.start, c.text) for c in v.claims]
        runs.update(v.verdicts)
        coverage[i.id] = [(p.id, content(p), p.published, p.updated) for p in v.coverage]
    return SiteSignatures(items, tags, claims, runs, coverage)


def plan_build(
    sigs: SiteSignatures,
    topics: list[Topic],
    site: SiteConfig,
    cached: dict[str, list],
    load: Callable[[list[int] | None], list[ItemView]],
    old_groups: dict[str, str] | None = None,
) -> Build:
    """Key every page from the change signatures; load (via `load`) only findings that changed, and later those
    that the pages to re-render list. `cached` is the last build's item manifest (id -> [key, path, week]),
    `old_groups` its digest per group of GROUP findings by id: a finding in an unchanged group keeps its key
    without being hashed on its own."""
    names = {t.slug: t.name for t in topics}
    found: dict[int, Finding] = {}
    total = len(sigs.items)

    def fetch(ids: Iterable[int]) -> None:
        missing = [i for i in ids if i not in found]
        if not missing:
            return
        for view in load(None if len(missing) > total // 2 else missing):
            if view.item.id not in found:
                found[view.item.id] = Finding(view, names)

    salt = site_salt(site, topics)
    none: list = []
    runs, coverage = sigs.runs, sigs.coverage
    tags_of, claims_of, coverage_of, hit_of = sigs.tags.get, sigs.claims.get, coverage.get, cached.get
    rows, groups = [], defaultdict(list)
    for row in sigs.items:  # this loop runs over every finding on every build: nothing in it but lookups
        iid = row[0]
        claims = claims_of(iid, none)
        verdicts = [runs[c[1]] for c in claims if c[1] in runs] if runs else none
        parts = (row, tags_of(iid, none), claims, verdicts, coverage_of(iid, none) if coverage else none)
        rows.append(parts)
        groups[iid // GROUP].append(parts)
    # A group whose digest equals the last build's holds findings whose keys are those in the manifest.
    digests = {str(g): signature_key(salt, members) for g, members in groups.items()}
    same = {int(g) for g, d in digests.items() if (old_groups or {}).get(g) == d}
    listings, items, keys, stale = [], {}, {}, []
    for parts in rows:
        iid, tags = parts[0][0], parts[1]
        sid = str(iid)
        hit = hit_of(sid)
        if hit is not None and iid // GROUP in same:
            key = hit[0]
        else:
            key = signature_key(salt, parts)
            if hit is not None and hit[0] != key:
                hit = None
        if hit is None:
            stale.append(len(listings))
            listings.append(Listing(iid, key, "", "", tags))
        else:
            listings.append(Listing(iid, key, hit[1], hit[2], tags))
        items[sid] = hit
        keys[iid] = key
    if stale:
        fetch([listings[n].id for n in stale])
        for n in stale:
            x = listings[n]
            f = found.get(x.id)
            if f is None:  # deleted since the signatures were read
                listings[n] = None  # type: ignore[call-overload]
                del items[str(x.id)], keys[x.id]
                continue
            x.path, x.week = f.path, f.week
            items[str(x.id)] = [x.key, f.path, f.week]
        listings = [x for x in listings if x is not None]

    frags: dict[tuple[int, str], str] = {}  # (id, "card" | "entry") -> body, valid for this build
    fresh: dict[tuple[int, str], tuple[str, str]] = {}  # the ones rendered here: (id, kind) -> (key, body)
    makers = {"card": lambda f: str(finding_card(f, CARD_ROOT)), "entry": lambda f: atom_entry(site, f)}

    def fragment(iid: int, kind: str) -> str:
        """A finding's card or feed entry: from the cache when its signature matches, else rendered now."""
        body = frags.get((iid, kind))
        if body is None:
            body = frags[iid, kind] = makers[kind](found[iid])
            fresh[iid, kind] = (keys[iid], body)
        return body

    def load_pages(needs: Iterable[int], cards: Iterable[int] = (), entries: Iterable[int] = (), cached=None) -> None:
        """Load what the pages to render read: the findings in `needs`, and those in `cards` / `entries` whose
        fragment `cached(ids)` (rows of id, kind, key, body) lacks or holds for an older signature."""
        want = set(needs)
        wanted = [(i, "card") for i in cards] + [(i, "entry") for i in entries]
        wanted = [k for k in wanted if k not in frags]
        if wanted and cached is not None:
            for iid, kind, key, body in cached(sorted({i for i, _ in wanted})):
                if keys.get(iid) == key:
                    frags[iid, kind] = body
        want.update(i for i, kind in wanted if (i, kind) not in frags)
        fetch(want)

    def drain() -> dict[tuple[int, str], tuple[str, str]]:
        taken = dict(fresh)
        fresh.clear()
        return taken

    return Build(plan(listings, topics, site, found, salt, fragment), load_pages, items, drain, digests)


@cache
def code_digest() -> str:
    """The renderer's own code and templates: a change to either re-renders every page (sources read, not
    imported: importing digest.claims costs ~50 ms that a build never needs; digest.sentences splits summaries)."""
    here = Path(__file__).parent
    h = hashlib.blake2b(templates_digest().encode(), digest_size=16)
    for name in ("claims.py", "headline.py", "modelnames.py", "sentences.py", "summarize.py"):
        h.update((here / name).read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def plan(
    listings: list[Listing],
    topics: list[Topic],
    site: SiteConfig,
    found: dict[int, Finding],
    salt: str,
    fragment: Callable[[int, str], str],
) -> dict[str, Page]:
    """Every page of the site keyed by its inputs (listing keys carry `salt`); renderers read `found` and
    `fragment(id, "card" | "entry")` when run."""
    env = environment()
    names = {t.slug: t.name for t in topics}
    by_tag: dict[str, list[Listing]] = defaultdict(list)
    by_week: dict[str, list[Listing]] = defaultdict(list)
    for x in listings:
        by_week[x.week].append(x)
        for _id, slug, _score in x.tags:
            by_tag[slug].append(x)
    tag_counts = Counter({slug: len(xs) for slug, xs in by_tag.items()})
    weeks = sorted(by_week, reverse=True)
    base = site.base_url
    common = {
        "site": site,
        "topic_names": names,
        "tag_path": tag_path,
        "tag_feed_path": tag_feed_path,
        "week_path": week_path,
        "css": CSS,
    }

    def cards(xs: list[Listing], root: str) -> Markup:
        """The findings' cards as the page at depth `root` shows them (cached for CARD_ROOT; hrefs start with
        root): one call from a template, not one per finding."""
        body = "".join([fragment(x.id, "card") for x in xs])
        return Markup(body if root == CARD_ROOT else body.replace(f'href="{CARD_ROOT}', f'href="{_esc(root)}'))

    def members(xs: list[Listing]) -> list[Finding]:
        return [found[x.id] for x in xs]

    def ids(xs: list[Listing]) -> tuple[int, ...]:
        return tuple([x.id for x in xs])

    loaded = {}

    def html(path: str, template: str, ctx: Callable[[], dict]) -> Callable[[], bytes]:
        def render() -> bytes:
            root = "../" * path.count("/")
            if template not in loaded:
                loaded[template] = env.get_template(template)
            return loaded[template].render(root=root, cards=cards, **common, **ctx()).encode("utf-8")

        return render

    shell: list[str] = []
    base_esc = _esc(base)

    def item_page(iid: int) -> bytes:
        if not shell:
            shell.extend(item_shell(env, common))
        slots = item_slots(found[iid], base_esc)
        return "".join([slots[part] if n % 2 else part for n, part in enumerate(shell)]).encode("utf-8")

    pages: dict[str, Page | ItemPage] = {}
    tag_list = [(t, names.get(t, t), n) for t, n in sorted(tag_counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    this_week = weeks[0] if weeks else ""
    home = by_week.get(this_week, [])
    sections: dict[str, list[Listing]] = defaultdict(list)
    for x in home:
        sections[x.tags[0][1] if x.tags else ""].append(x)
    ordered = sorted(sections.items(), key=lambda kv: (kv[0] == "", -len(kv[1]), kv[0]))
    home_sections = [(slug, names.get(slug, "Other"), xs) for slug, xs in ordered]
    pages["index.html"] = Page(
        _key(salt, "index", tag_list, weeks, len(listings), *[x.key for x in home]),
        html(
            "index.html",
            "index.html",
            lambda: {
                "week": this_week,
                "sections": home_sections,
                "tags": tag_list,
                "all_weeks": weeks,
                "total": len(listings),
                "count": len(home),
            },
        ),
        cards=ids(home),
    )
    for x in listings:
        pages[x.path] = ItemPage(x.key, x.id, item_page)  # items/<file>: root "../" like html() gives it
    for topic in topics:
        xs = by_tag.get(topic.slug, [])
        tkey = (topic.slug, topic.name, topic.description)
        pages[tag_path(topic.slug)] = Page(
            _key(salt, "tag", tkey, *[x.key for x in xs]),
            html(tag_path(topic.slug), "tag.html", lambda t=topic, xs=xs: {"topic": t, "findings": xs}),
            cards=ids(xs),
        )
        latest = xs[:TAG_FEED_ITEMS]
        pages[tag_feed_path(topic.slug)] = Page(
            _key(salt, "tagfeed", tkey, *[x.key for x in latest]),
            lambda t=topic, latest=latest: atom_feed(
                site,
                [fragment(x.id, "entry") for x in latest],
                tag_feed_path(t.slug),
                tag_path(t.slug),
                f"{site.title}: {t.name}",
            ),
            entries=ids(latest),
        )
    claim_parts = []
    for week in weeks:
        xs = by_week[week]
        wkey = _key(*[x.key for x in xs])
        pages[week_path(week)] = Page(
            _key(salt, "week", week, wkey),
            html(week_path(week), "week.html", lambda week=week, xs=xs: {"week": week, "findings": xs}),
            cards=ids(xs),
        )
        claim_parts.append(claims_week_path(week))
        pages[claim_parts[-1]] = Page(
            _key(salt, "claims", week, wkey), lambda xs=xs: claims_json(members(xs), base), ids(xs)
        )
    tags_rows = [(t.slug, t.name, tag_counts.get(t.slug, 0)) for t in topics]
    pages["tags/index.html"] = Page(
        _key(salt, "tags", tags_rows), html("tags/index.html", "tags_index.html", lambda: {"tags": tags_rows})
    )
    pages["search.html"] = Page(_key(salt, "search"), html("search.html", "search.html", dict))
    latest = listings[:FEED_ITEMS]
    latest_keys = [x.key for x in latest]
    pages["feed.atom"] = Page(
        _key(salt, "atom", *latest_keys),
        lambda: global_atom_feed(site, members(latest)),
        ids(latest),
    )
    pages["feed.json"] = Page(
        _key(salt, "json", *latest_keys), lambda: json_feed(site, members(latest), names), ids(latest)
    )
    html_paths = [p for p in pages if p.endswith(".html")]
    pages["sitemap.xml"] = Page(_key(salt, "sitemap", *html_paths), lambda: sitemap(base, html_paths))
    parts = tuple(claim_parts)
    pages["claims.json"] = Page(
        _key(salt, "claims", *(pages[p].key for p in parts)),
        lambda: join_json_arrays([pages[p].render() for p in parts]),
        parts=parts,
        join=join_json_arrays,
    )
    for name in STATIC:
        data = (TEMPLATES / name).read_bytes()
        pages[name] = Page(_key(salt, name), lambda data=data: data)
    return pages


def plan_site(views: list[ItemView], topics: list[Topic], site: SiteConfig) -> dict[str, Page]:
    """Every page of the site from views already loaded (tests, previews): the same plan a build makes."""
    by_id = {v.item.id: v for v in views}
    build = plan_build(signatures_of(views), topics, site, {}, lambda ids: [by_id[i] for i in (ids or by_id)])
    return build.pages


def site_pages(views: list[ItemView], topics: list[Topic], site: SiteConfig) -> dict[str, bytes]:
    """Every page of the site, rendered, computed before anything is written."""
    return {path: page.render() for path, page in plan_site(views, topics, site).items()}


def claims_week_path(week: str) -> str:
    return f"claims/{slugify(week)}.json"


def join_json_arrays(parts: list[bytes]) -> bytes:
    """Compact JSON arrays joined into one, byte for byte what dumping all their rows at once gives."""
    bodies = [p.strip()[1:-1] for p in parts]
    return b"[" + b",".join(b for b in bodies if b) + b"]"


def atom_feed(site: SiteConfig, entries: list[str], path: str, html_path: str, title: str) -> bytes:
    """Atom 1.0 from templates/atom.xml and entries made by atom_entry, newest first, links absolute from base_url
    (~10x cheaper than feedgen). Each entry starts with its updated time and a newline."""
    updated = max((datetime.fromisoformat(e.partition("\n")[0]) for e in entries), default=None)
    return (
        environment()
        .get_template("atom.xml")
        .render(
            base=site.base_url,
            path=path,
            html_path=html_path,
            title=_xml_text(title, 300),
            updated=(updated or datetime(2000, 1, 1, tzinfo=UTC)).isoformat(),
            entries=[Markup(e.partition("\n")[2]) for e in entries],
        )
        .encode("utf-8")
    )


def atom_entry(site: SiteConfig, f: Finding) -> str:
    """One finding's Atom entry after its updated time and a newline: the fragment topic feeds are joined from
    (a finding sits in several feeds; the cache keeps it between builds). Built here like finding_card, with
    the escaping Jinja's autoescape applies (a template call per entry cost ~5x more)."""
    e, x = f.atom_entry, _esc
    link = x(site.base_url) + x(f.path)
    out = [
        f'<entry>\n<id>{link}</id>\n<title>{x(e["title"])}</title>\n<link href="{link}"/>\n'
        f"<published>{x(e['published'])}</published>\n<updated>{x(e['updated'])}</updated>\n"
        f"<summary>{x(e['summary'])}</summary>\n"
    ]
    out += [f"<author><name>{x(a)}</name></author>\n" for a in e["authors"]]
    out += [f'<category term="{x(slug)}" label="{x(label)}"/>\n' for slug, label in e["categories"]]
    out.append("</entry>")
    return f"{e['updated']}\n{''.join(out)}"


def global_atom_feed(site: SiteConfig, findings: list[Finding]) -> bytes:
    """The site-wide Atom feed through feedgen, from the same entry fields as the per-topic feeds' template
    (500 topic feeds through feedgen would cost ~1.5 s of a full build; one feed costs ~30 ms)."""
    from feedgen.feed import FeedGenerator

    base = site.base_url
    fg = FeedGenerator()
    fg.id(base + "feed.atom")
    fg.title(_xml_text(site.title, 300))
    fg.link(href=base + "feed.atom", rel="self")
    fg.link(href=base + "index.html", rel="alternate")
    fg.updated(max((_when(f) for f in findings), default=datetime(2000, 1, 1, tzinfo=UTC)))
    fg.generator("Digest")
    for f in reversed(findings):  # feedgen prepends: add the oldest first so the newest is on top
        e, entry = fg.add_entry(), f.atom_entry
        e.id(base + f.path)
        e.title(entry["title"])
        e.link(href=base + f.path)
        e.published(f.item.published.replace(tzinfo=UTC))
        e.updated(_when(f))
        e.summary(entry["summary"])
        for name in entry["authors"]:
            e.author(name=name)
        for slug, label in entry["categories"]:
            e.category(term=slug, label=label)
    return fg.atom_str(pretty=True)


def _when(f: Finding) -> datetime:
    return (f.item.updated or f.item.published).replace(tzinfo=UTC)


def _xml_text(text: str, limit: int = 2000) -> str:
    """Feed text without the control characters XML 1.0 forbids."""
    return clean_text(text, limit)


def json_feed(site: SiteConfig, findings: list[Finding], names: dict[str, str]) -> bytes:
    """JSON Feed 1.1 of the latest findings."""
    base = site.base_url
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": site.title,
        "home_page_url": base + "index.html",
        "feed_url": base + "feed.json",
        "language": "en",
        "items": [
            {
                "id": base + f.path,
                "url": base + f.path,
                "external_url": external_url(f.item.url) or None,
                "title": f.item.title,
                "summary": f.one_line,
                "content_text": f.item.summary or f.item.title,
                "date_published": f.item.published.replace(tzinfo=UTC).isoformat(),
                "date_modified": _when(f).isoformat(),
                "authors": [{"name": a} for a in f.authors[:10]],
                "tags": [names.get(s, s) for s, _ in f.view.tags],
            }
            for f in findings
        ],
    }
    for entry in feed["items"]:
        if not entry["external_url"]:
            del entry["external_url"]
    return json.dumps(feed, ensure_ascii=False, indent=1).encode("utf-8")


_XML_SPECIAL = re.compile(r"[&<>]")


def sitemap(base: str, paths: list[str]) -> bytes:
    esc = xml_escape(base)
    locs = (xml_escape(p) if _XML_SPECIAL.search(p) else p for p in sorted(paths))  # slugs: nothing to escape
    rows = "".join(f"<url><loc>{esc}{p}</loc></url>\n" for p in locs)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + rows + "</urlset>\n"
    ).encode("utf-8")


def claims_json(findings: list[Finding], base: str) -> bytes:
    """Every claim with its finding, number, unit, kind, sentence and latest reproduction verdict."""
    rows = []
    for f in findings:
        item, verdicts = f.item, f.view.verdicts
        head = {"item_id": item.id, "item_title": item.title, "item_url": base + f.path, "arxiv_id": item.arxiv_id}
        for c in f.view.claims:
            rows.append(
                {
                    "claim_id": c.id,
                    **head,
                    "value": c.value,
                    "value_hi": c.value_hi,
                    "unit": c.unit,
                    "kind": c.kind,
                    "sentence": c.text,
                    "verdict": verdicts.get(c.id),
                }
            )
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- newsletter -------------------------------------------------------------------


def header_text(value: str, limit: int = 300) -> str:
    """Header-safe text: no CR, LF or other control characters can reach an email header."""
    return clean_text(value, limit)


def newsletter_message(
    week: str,
    views: list[ItemView],
    topics: list[Topic],
    config: Config,
    *,
    reproductions: Sequence[tuple[ItemView, object, str]] = (),
    suggestions: Sequence = (),
) -> EmailMessage:
    """multipart/alternative: plain text first, then HTML with absolute links; headers safe from feed data.

    `reproductions`: (finding, claim, verdict) of the claims whose latest run that week started in it;
    `suggestions`: the suggested topics (SuggestedTopic rows) first seen that week."""
    env = environment()
    names = {t.slug: t.name for t in topics}
    sections: dict[str, list[Finding]] = defaultdict(list)
    for view in views:
        slug = view.tags[0][0] if view.tags else "other"
        sections[slug].append(Finding(view, names))
    ordered = sorted(sections.items(), key=lambda kv: (kv[0] == "other", -len(kv[1]), kv[0]))
    top = [names[slug] for slug, _ in ordered if slug in names][:3]
    subject = f"Digest, week {week}: {len(views)} findings" + (f" in {', '.join(top)}" if top else "")
    if len([s for s, _ in ordered if s in names]) > 3:
        subject += ", ..."
    checked = [(Finding(v, names), c, verdict) for v, c, verdict in reproductions]
    ctx = {
        "week": week,
        "sections": [(slug, names.get(slug, "Other"), fs[:5]) for slug, fs in ordered],
        "reproduced": [row for row in checked if row[2] == "reproduced"],
        "failed": [row for row in checked if row[2] in ("diverged", "failed")],
        "base": config.site.base_url,
        "item_path": item_path,
        "tag_path": tag_path,
        "total": len(views),
        "suggestions": [_suggestion(s) for s in suggestions],
        "unsubscribe_url": "{{UNSUBSCRIBE_URL}}",
    }
    html = env.get_template("newsletter.html").render(**ctx)
    text = env.get_template("newsletter.txt").render(**ctx)
    html = _inline_css(html)
    msg = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
    msg["Subject"] = header_text(subject, 200)
    msg["From"] = header_text(config.newsletter.sender)
    msg["To"] = "subscribers@localhost"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=f"digest-{slugify(week)}", domain=_domain(config))
    _unsubscribe_headers(msg, config, "")
    msg.set_content(text.replace("{{UNSUBSCRIBE_URL}}", _unsubscribe_url(config, "")))
    msg.add_alternative(html.replace("{{UNSUBSCRIBE_URL}}", _unsubscribe_url(config, "")), subtype="html")
    msg._digest_parts = (text, html)  # type: ignore[attr-defined]  # the templates, for per-recipient copies
    return msg


def _suggestion(row) -> dict:
    """A suggested topic as the newsletter shows it: label, size, top terms and a few member titles."""
    return {
        "id": row.id,
        "label": clean_text(row.label, 200),
        "size": row.size,
        "terms": [clean_text(t, 60) for t in json.loads(row.terms or "[]")[:6]],
        "titles": [clean_text(t, 200) for t in json.loads(row.titles or "[]")[:3]],
    }


def _domain(config: Config) -> str:
    from urllib.parse import urlsplit

    return slugify(urlsplit(config.site.base_url).hostname or "digest.local", 60).replace("-", ".") or "digest.local"


def _unsubscribe_url(config: Config, token: str) -> str:
    base = config.newsletter.unsubscribe_url or config.site.base_url + "unsubscribe"
    if not token:
        return base
    return base + ("&" if "?" in base else "?") + "u=" + token


def _unsubscribe_headers(msg: EmailMessage, config: Config, token: str) -> None:
    mailto = config.newsletter.unsubscribe_mailto
    if token:
        mailto = mailto + ("%20" if "subject=" in mailto else "?subject=unsubscribe%20") + token
    for name in ("List-Unsubscribe", "List-Unsubscribe-Post"):
        del msg[name]
    msg["List-Unsubscribe"] = header_text(f"<{mailto}>, <{_unsubscribe_url(config, token)}>", 900)
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def for_recipient(issue: EmailMessage, config: Config, week: str, address: str, token: str) -> EmailMessage:
    """The issue addressed to one subscriber: own To, Message-ID and unsubscribe links."""
    text, html = issue._digest_parts  # type: ignore[attr-defined]
    url = _unsubscribe_url(config, token)
    msg = EmailMessage(policy=issue.policy)
    for name in ("Subject", "From", "Date"):
        msg[name] = issue[name]
    msg["To"] = header_text(address, 320)
    msg["Message-ID"] = make_msgid(idstring=f"digest-{slugify(week)}-{token[:12]}", domain=_domain(config))
    _unsubscribe_headers(msg, config, token)
    msg.set_content(text.replace("{{UNSUBSCRIBE_URL}}", url))
    msg.add_alternative(html.replace("{{UNSUBSCRIBE_URL}}", url), subtype="html")
    return msg


def _inline_css(html: str) -> str:
    import css_inline

    return css_inline.inline(html)
