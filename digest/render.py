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
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from jinja2.filters import do_truncate
from markupsafe import Markup

from digest.config import REPO_ROOT, Config, SiteConfig
from digest.headline import Headline, choose_headline, format_claim
from digest.models import Topic
from digest.normalize import clean_text, slugify
from digest.picks import PICKS_MAX, Candidate, top_picks
from digest.store import ItemView, SiteSignatures
from digest.summarize import ONE_LINE_HEAD, key_points, one_line, one_line_sentence, sentences
from digest.verdicts import (  # noqa: F401  (re-exported: templates, tests and callers use render's names)
    HTTP_URL,
    VERDICT_LABELS,
    Verdict,
    _num,
    _with_unit,
    claim_verdict,
    external_url,
    tolerance_text,
    verdict_label,
)

TEMPLATES = REPO_ROOT / "templates"
CSS = "style.css"
SEARCH_JS = "search.js"
STATIC = (CSS, SEARCH_JS)
FEED_ITEMS = 50
TAG_FEED_ITEMS = 20


@cache
def environment(extra: str | None = None, stamp: str = "") -> Environment:
    """The theme's templates first (extra), then the bundled ones: Pelican's THEME override chain. `stamp`: the
    theme's digest, so an edited theme gets a fresh environment (templates are not re-read otherwise)."""
    loaders = [FileSystemLoader(extra)] if extra else []
    env = Environment(
        loader=ChoiceLoader([*loaders, FileSystemLoader(str(TEMPLATES))]),
        autoescape=select_autoescape(["html", "xml"]),
        auto_reload=False,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["date"] = lambda d: d.strftime("%Y-%m-%d") if d else ""
    env.filters["claim"] = format_claim
    env.filters["href"] = external_url
    env.filters["verdict_label"] = verdict_label
    env.filters["authors"] = short_authors
    env.filters["confidence"] = topic_confidence
    return env


def site_environment(site: SiteConfig) -> Environment:
    """The environment of this site's theme (or the bundled templates alone)."""
    theme = str(site.theme) if site.theme else None
    return environment(theme, theme_digest(site.theme) if theme else "")


def _bytecode_cache():
    """Compiled templates kept between runs (Jinja's per-user temp folder): compiling costs ~0.1 s a build."""
    from jinja2 import FileSystemBytecodeCache

    try:
        return FileSystemBytecodeCache()
    except RuntimeError:  # no usable private temp folder: compile every run
        return None


def topic_confidence(score: float) -> str:
    """A chosen topic's stored score as a reader's word ("strong", "likely", "possible"): the tagger's own
    bands (digest.topics.confidence_label), imported on first use (numpy) so plain builds stay light."""
    from digest.topics import confidence_label

    return confidence_label(score)


def short_authors(authors: Sequence[str], first: int = 3) -> str:
    """'A, B, C et al.': the first three names, then 'et al.' when there are more."""
    names = [clean_text(str(a), 200) for a in authors]
    return ", ".join(names[:first]) + (" et al." if len(names) > first else "")


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
    """A finding's card on the home, topic and week pages: the `card` macro of templates/_card.html."""
    return Markup(f.env.get_template("_card.html").module.card(f, root))


def item_page_html(env: Environment, f: Finding, common: dict) -> str:
    """An item page: templates/item.html with the finding's view data."""
    return env.get_template("item.html").render(root="../", f=f, **common)


def _slashed(when: datetime, iso: str) -> str:
    """YYYY/MM/DD from the ISO date already made (strftime, 20x dearer, writes years before 1000 unpadded)."""
    return iso.replace("-", "/") if when.year >= 1000 else when.strftime("%Y/%m/%d")


def _folder_digest(folder: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@cache
def templates_digest() -> str:
    """Any change to a bundled template or static file invalidates every page built from it."""
    return _folder_digest(TEMPLATES)


def theme_digest(theme: Path | None) -> str:
    """The theme folder's files (read on each build: editing a theme re-renders what it shows)."""
    return _folder_digest(Path(theme)) if theme else ""


def static_file(site: SiteConfig, name: str) -> bytes:
    """A static file (style.css, search.js) from the theme when it has one, else the bundled one."""
    if site.theme and (Path(site.theme) / name).is_file():
        return (Path(site.theme) / name).read_bytes()
    return (TEMPLATES / name).read_bytes()


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
    """The finding's BibTeX entry (digest.bibtex: the same entry `digest search --bibtex` prints); `authors`:
    the view's, when already parsed."""
    from digest import bibtex as bib

    return bib.entry(reference(view, authors))


def reference(view: ItemView, authors: list[str] | None = None):
    """A finding as digest.bibtex cites it, from the stored fields search reads too."""
    from digest.bibtex import Reference

    item = view.item
    authors = view.authors if authors is None else authors  # view.authors: parsed from JSON on each access
    return Reference(
        title=item.title,
        authors=authors,
        year=item.published.year,
        url=item.url or "",
        arxiv_id=item.arxiv_id,
        categories=view.blog_tags if item.arxiv_id else (),
        doi=getattr(item, "doi", None),
        source=item.source,
    )


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


@dataclass(frozen=True)
class Sentence:
    """A sentence with its numbers highlighted: `parts` are (text, claim or None) in order; `claims` the claims
    it carries (with their verdicts) and `anchors` the claim ids whose #claim-ID anchor sits here."""

    parts: tuple[tuple[str, object], ...]
    claims: tuple[tuple[object, Verdict | None], ...]
    anchors: frozenset = frozenset()
    unplaced: tuple = ()  # claims whose number span does not fit the sentence: shown after it

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.parts)


def spans_in(text: str, claims: Sequence) -> list[tuple[int, int, object]]:
    """(start, end, claim) of each claim's number inside `text`: its own span when `text` is its sentence,
    else where the same characters occur in `text` (a trimmed one-liner), in order; claims not found are left
    out."""
    out, at = [], 0
    for c in sorted(claims, key=lambda c: c.start):
        if text == c.text:
            out.append((c.start, c.end, c))
            continue
        number = c.text[c.start : c.end] if 0 <= c.start < c.end <= len(c.text) else ""
        where = text.find(number, at) if number else -1
        if where >= 0:
            out.append((where, where + len(number), c))
            at = where + len(number)
    return out


def highlight(sentence: str, claims: Sequence) -> tuple[tuple[str, object], ...]:
    """The sentence cut around each claim's number (see spans_in); a claim whose span does not fit the
    sentence (or overlaps another) is left out of the cut."""
    parts: list[tuple[str, object]] = []
    at = 0
    for start, end, c in sorted(spans_in(sentence, claims), key=lambda s: s[0]):
        if not (at <= start < end <= len(sentence)):
            continue
        if start > at:
            parts.append((sentence[at:start], None))
        parts.append((sentence[start:end], c))
        at = end
    if at < len(sentence):
        parts.append((sentence[at:], None))
    return tuple(parts)


class Finding:
    """One finding as pages show it: the view data templates read. The summary work is done only for pages
    actually rendered."""

    def __init__(
        self, view: ItemView, names: dict[str, str], site: SiteConfig | None = None, env: Environment | None = None
    ):
        if env is not None:
            self.env = env  # the site's template environment (else made on first use)
        self.view = view
        self.item = view.item
        self.path = item_path(view)
        self.week = week_of(view)
        self.names = names
        self.site = site or SiteConfig()
        self.similar: list[tuple[str, str]] = []  # (path, title) of the nearest findings by embedding

    @_once
    def env(self) -> Environment:
        return site_environment(self.site)

    @_once
    def _sentences(self) -> list[str] | None:
        """The summary split once for both one_line and key_points (when one_line would split the same text)."""
        summary = self.item.summary or ""
        return sentences(summary) if len(summary) <= ONE_LINE_HEAD else None

    @_once
    def _summary_claims(self) -> list:
        """The ledger's claims on the summary, for one_line and key_points (the ledger, not a re-extraction: a
        build never imports digest.claims)."""
        return [c for c in self.view.claims if c.field == "summary"]

    @_once
    def one_line(self) -> str:
        return one_line(self.item.summary, parts=self._sentences, title=self.item.title, claims=self._summary_claims)

    @_once
    def headline(self) -> Headline | None:
        """The main result (digest.headline's choice, shared with the newsletter, export and search)."""
        return choose_headline(self.view.claims, self.item.summary or "")

    @_once
    def headline_claim(self):
        return self.headline.claim if self.headline else None

    @_once
    def headline_verdict(self) -> Verdict | None:
        return self.verdict(self.headline_claim) if self.headline_claim is not None else None

    def verdict(self, claim) -> Verdict | None:
        return claim_verdict(self.view, claim, self.site.repo_url)

    @_once
    def _by_sentence(self) -> dict[str, list]:
        groups: dict[str, list] = {}
        for c in self.view.claims:
            groups.setdefault(c.text, []).append(c)
        return groups

    @_once
    def title_parts(self) -> Sentence | None:
        """The title with its numbers highlighted, when claims were read from it (shown in the page heading)."""
        claims = self._by_sentence.get(self.item.title)
        return self._sentence(self.item.title, claims) if claims else None

    @_once
    def one_line_source(self) -> str | None:
        """The claim sentence the one-liner says (itself, or trimmed: one contains the other), if any."""
        exact = one_line_sentence(
            self.item.summary, parts=self._sentences, title=self.item.title, claims=self._summary_claims
        )
        if exact in self._by_sentence:  # the untrimmed sentence ("Experiments show that ..."), as Claim.text has it
            return exact
        line = self.one_line
        if line in self._by_sentence:
            return line
        core = line.strip().rstrip("….;: ")
        if len(core) < 20:
            return None
        for text in self._by_sentence:
            other = text.strip().rstrip("….;: ")
            if text != self.item.title and len(other) >= 20 and (core in text or other in line):
                return text
        return None

    @_once
    def one_line_parts(self) -> Sentence | None:
        """The one-liner with its numbers highlighted, when it says one of the claim sentences (said once, there)."""
        source = self.one_line_source
        return self._sentence(self.one_line, self._by_sentence[source]) if source is not None else None

    def _sentence(self, text: str, claims: list) -> Sentence:
        head = self.headline_claim
        anchors = frozenset(c.id for c in claims if c is not head)
        parts = highlight(text, claims)
        placed = {id(c) for _, c in parts if c is not None}
        unplaced = tuple(c for c in claims if id(c) not in placed and c is not head)
        shown = tuple((c, self.verdict(c)) for c in claims if c is not head)
        return Sentence(parts, shown, anchors, unplaced)

    @_once
    def claim_sentences(self) -> list[Sentence]:
        """The sentences carrying the claims other than the headline, each once, in reading order, the one-liner's
        left out (it is shown above)."""
        head = self.headline_claim
        out = []
        for text, claims in self._by_sentence.items():
            if text in (self.one_line_source, self.item.title) or all(c is head for c in claims):
                continue
            out.append(self._sentence(text, claims))
        return out

    @_once
    def points(self) -> list[Sentence]:
        """Key points not already shown as the one-liner or a claim sentence; the headline's own sentence (when
        it is one) with the headline number highlighted."""
        shown = {self.one_line.strip(), (self.one_line_source or "").strip()}
        shown |= {s.text.strip() for s in self.claim_sentences}
        found = key_points(
            self.item.summary,
            [c.text for c in self.view.claims],
            parts=self._sentences,
            title=self.item.title,
            claims=self._summary_claims,
        )
        head = self.headline_claim
        out = []
        for p in found:
            if p.strip() in shown:
                continue
            if head is not None and p == head.text:
                out.append(Sentence(highlight(p, [head]), ()))
            else:
                out.append(Sentence(((p, None),), ()))
        return out

    @_once
    def title_300(self) -> str:
        return do_truncate(environment(), self.item.title, 300, True)

    @_once
    def date(self) -> str:
        return self.item.published.date().isoformat()  # YYYY-MM-DD, 20x cheaper than strftime

    @_once
    def date_slashed(self) -> str:
        return _slashed(self.item.published, self.date)

    @_once
    def links(self) -> tuple[str, str]:
        """The abstract (or post) and PDF links, each '' unless http(s)."""
        return external_url(self.item.url), external_url(self.item.pdf_url)

    @_once
    def source_name(self) -> str:
        """The source's display name: `[[source]] display_name`, else its name."""
        return dict(self.site.source_titles).get(self.item.source) or self.item.source

    @_once
    def is_post(self) -> bool:
        return not self.item.arxiv_id

    @_once
    def tag_links(self) -> list[tuple[str, str, float]]:
        """(page path, topic name, score) per tag, best first."""
        return [(tag_path(slug), self.names.get(slug, slug), score) for slug, score in self.view.tags]

    @_once
    def coverage(self) -> list[tuple[str, str, str, str]]:
        """(http(s) link or '', title, source display name, YYYY-MM-DD) of each blog post covering this finding."""
        titles = dict(self.site.source_titles)
        return [
            (
                external_url(p.url),
                p.title,
                titles.get(p.source) or p.source,
                p.published.strftime("%Y-%m-%d") if p.published else "",
            )
            for p in self.view.coverage
        ]

    @_once
    def summary_line(self) -> str:
        """The one-liner, the headline phrase and its verdict in one line: feeds' summaries."""
        out = self.one_line or self.item.title
        if self.headline:
            out += f" Headline: {self.headline.text}"
            if self.headline_verdict:
                out += f" ({self.headline_verdict.text})"
            out += "."
        return out

    @_once
    def atom_entry(self) -> dict:
        """This finding as an Atom entry (templates/_entry.xml); one finding sits in several feeds."""
        return {
            "f": self,
            "link": self.site.base_url + self.path,
            "title": _xml_text(self.item.title, 500),
            "published": self.item.published.replace(tzinfo=UTC).isoformat(),
            "updated": _when(self).isoformat(),
            "summary": _xml_text(self.summary_line, 1500) or _xml_text(self.item.title, 500),
            "authors": [_xml_text(a, 200) for a in self.authors[:10]],
            "categories": [(slug, _xml_text(self.names.get(slug, slug), 200)) for slug, _ in self.view.tags],
        }

    @_once
    def bibtex(self) -> str:
        return bibtex(self.view, self.authors) if self.item.arxiv_id else ""

    @_once
    def authors(self) -> list[str]:
        return self.view.authors

    @_once
    def code_urls(self) -> list[str]:
        shown = [] if self.item.code_urls in ("[]", "", None) else self.view.code_urls  # most have none
        return [u for u in shown if external_url(u)]

    @_once
    def blog_tags(self) -> list[str]:
        return self.view.blog_tags


def finding(view: ItemView, names: dict[str, str] | None = None, site: SiteConfig | None = None) -> Finding:
    return Finding(view, names or {}, site)


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
    warm: Callable[[list[int]], None] | None = None  # render the wanted cards and entries of these findings
    prime: Callable[[dict], None] | None = None  # take fragments rendered elsewhere ({(id, kind): (key, body)})


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
    parts = (
        site.title,
        site.base_url,
        site.timezone,
        site.author,
        site.description,
        site.repo_url,
        site.source_titles,
        theme_digest(site.theme),
    )
    return _key(code_digest(), *parts, [(t.slug, t.name) for t in topics])


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
                f = found[view.item.id] = Finding(view, names, site, env)
                f.similar = similar_of(view.item.id, none)

    salt = site_salt(site, topics) + ("|foryou" if sigs.foryou else "")  # the nav links the page on every page
    env = site_environment(site)
    none: list = []
    runs, coverage = sigs.runs, sigs.coverage
    tags_of, claims_of, coverage_of, hit_of = sigs.tags.get, sigs.claims.get, coverage.get, cached.get
    similar_of = sigs.similar.get
    rows, groups = [], defaultdict(list)
    for row in sigs.items:  # this loop runs over every finding on every build: nothing in it but lookups
        iid = row[0]
        claims = claims_of(iid, none)
        verdicts = [runs[c[1]] for c in claims if c[1] in runs] if runs else none
        parts = (row, tags_of(iid, none), claims, verdicts, coverage_of(iid, none) if coverage else none)
        if sigs.similar:
            parts = (*parts, similar_of(iid, none))
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
    pending: set[tuple[int, str]] = set()  # fragments the pages to render need and no cache holds
    fresh: dict[tuple[int, str], tuple[str, str]] = {}  # the ones rendered here: (id, kind) -> (key, body)
    makers = {"card": lambda f: str(finding_card(f, CARD_ROOT)), "entry": lambda f: atom_entry(site, f, f.env)}

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
        missing = [k for k in wanted if k not in frags]
        pending.update(missing)
        want.update(i for i, _kind in missing)
        fetch(want)
        if want:  # item pages name their topics' confidence: import its module once, before workers fork
            import digest.topics  # noqa: F401

    def warm(ids: list[int]) -> None:
        """Render the pending cards and entries of these findings (in the worker that renders their pages)."""
        for iid in ids:
            for kind in ("card", "entry"):
                if (iid, kind) in pending and iid in found:
                    fragment(iid, kind)

    def prime(made: dict[tuple[int, str], tuple[str, str]]) -> None:
        for k, (_key, body) in made.items():
            frags[k] = body

    def drain() -> dict[tuple[int, str], tuple[str, str]]:
        taken = dict(fresh)
        fresh.clear()
        return taken

    pages = plan(listings, topics, site, found, salt, fragment, sigs.foryou)
    return Build(pages, load_pages, items, drain, digests, warm, prime)


@cache
def code_digest() -> str:
    """The renderer's own code and templates: a change to either re-renders every page (sources read, not
    imported: importing digest.claims costs ~50 ms that a build never needs; digest.sentences splits summaries)."""
    here = Path(__file__).parent
    h = hashlib.blake2b(templates_digest().encode(), digest_size=16)
    for name in ("claims.py", "headline.py", "modelnames.py", "sentences.py", "summarize.py", "topics.py"):
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
    foryou: list[tuple[int, str]] | None = None,
) -> dict[str, Page]:
    """Every page of the site keyed by its inputs (listing keys carry `salt`); renderers read `found` and
    `fragment(id, "card" | "entry")` when run. `foryou`: (finding id, why) recommended from the reader's library,
    shown on foryou.html (no library: no page, no link)."""
    env = site_environment(site)
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
        "foryou": bool(foryou),
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

    item_common = {**common, "base": base}

    def item_page(iid: int) -> bytes:
        return item_page_html(env, found[iid], item_common).encode("utf-8")

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
                env,
                site,
                [fragment(x.id, "entry") for x in latest],
                tag_feed_path(t.slug),
                tag_path(t.slug),
                f"{site.title}: {t.name}",
            ),
            entries=ids(latest),
        )
    claim_parts = []
    for n, week in enumerate(weeks):  # newest first: the next week is the one before in the list
        xs = by_week[week]
        wkey = _key(*[x.key for x in xs])
        around = {"previous": weeks[n + 1] if n + 1 < len(weeks) else "", "next": weeks[n - 1] if n else ""}
        pages[week_path(week)] = Page(
            _key(salt, "week", week, wkey, around),
            html(week_path(week), "week.html", lambda week=week, xs=xs, a=around: {"week": week, "findings": xs, **a}),
            cards=ids(xs),
        )
        claim_parts.append(claims_week_path(week))
        pages[claim_parts[-1]] = Page(_key(salt, "claims", week, wkey), lambda xs=xs: claims_json(members(xs)), ids(xs))
    if foryou:
        by_id = {x.id: x for x in listings}
        picks = [(by_id[i], why) for i, why in foryou if i in by_id]
        pages["foryou.html"] = Page(
            _key(salt, "foryou", [(x.key, why) for x, why in picks]),
            html("foryou.html", "foryou.html", lambda: {"picks": picks}),
            cards=tuple(x.id for x, _ in picks),
        )
    week_rows = [(w, len(by_week[w])) for w in weeks]
    pages["weeks/index.html"] = Page(
        _key(salt, "weeks", week_rows), html("weeks/index.html", "weeks_index.html", lambda: {"weeks": week_rows})
    )
    by_name = sorted(topics, key=lambda t: (t.name.casefold(), t.slug))
    tags_rows = [(t.slug, t.name, tag_counts.get(t.slug, 0)) for t in by_name]
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
    pages["feed.json"] = Page(_key(salt, "json", *latest_keys), lambda: json_feed(site, members(latest)), ids(latest))
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
        data = static_file(site, name)
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


def atom_feed(env: Environment, site: SiteConfig, entries: list[str], path: str, html_path: str, title: str) -> bytes:
    """Atom 1.0 from templates/atom.xml and entries made by atom_entry, newest first, links absolute from base_url
    (~10x cheaper than feedgen). Each entry starts with its updated time and a newline."""
    updated = max((datetime.fromisoformat(e.partition("\n")[0]) for e in entries), default=None)
    return (
        env.get_template("atom.xml")
        .render(
            base=site.base_url,
            path=path,
            html_path=html_path,
            title=_xml_text(title, 300),
            updated=(updated or datetime(2000, 1, 1, tzinfo=UTC)).isoformat(),
            author=_xml_text(site.feed_author, 200),
            entries=[Markup(e.partition("\n")[2]) for e in entries],
        )
        .encode("utf-8")
    )


def atom_entry(site: SiteConfig, f: Finding, env: Environment | None = None) -> str:
    """One finding's Atom entry (templates/_entry.xml) after its updated time and a newline: the fragment topic
    feeds are joined from (a finding sits in several feeds; the cache keeps it between builds)."""
    env = env or f.env
    return f"{f.atom_entry['updated']}\n{env.get_template('_entry.xml').module.entry(f.atom_entry)}"


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
    fg.author(name=_xml_text(site.feed_author, 200))  # RFC 4287 4.1.1: entries without an author inherit it
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


def json_feed(site: SiteConfig, findings: list[Finding]) -> bytes:
    """JSON Feed 1.1 of the latest findings; `_digest` carries the headline and its verdict with evidence."""
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
                "summary": f.summary_line,
                "content_text": f.item.summary or f.item.title,
                "date_published": f.item.published.replace(tzinfo=UTC).isoformat(),
                "date_modified": _when(f).isoformat(),
                "authors": [{"name": a} for a in f.authors[:10]],
                "tags": [name for _, name, _ in f.tag_links],
                "_digest": {
                    "one_line": f.one_line,
                    "headline": f.headline.as_json() if f.headline else None,
                    "verdict": f.headline_verdict.as_json() if f.headline_verdict else None,
                },
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


def claims_json(findings: list[Finding]) -> bytes:
    """Every claim with its finding, number, unit, kind, sentence and shown reproduction verdict (the latest
    measured one) with its evidence (`reproduction`: measured, claimed, tolerance, date, hook, script)."""
    rows = []
    for f in findings:
        item, verdicts = f.item, f.view.verdicts
        url = f.site.base_url + f.path
        head = {"item_id": item.id, "item_title": item.title, "item_url": url, "arxiv_id": item.arxiv_id}
        for c in f.view.claims:
            shown = f.verdict(c)
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
                    "reproduction": shown.as_json() if shown else None,
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
    foryou: Sequence[tuple[int, str]] = (),
) -> EmailMessage:
    """multipart/alternative: plain text first, then HTML with absolute links; headers safe from feed data.

    `reproductions`: (finding, claim, verdict) of the claims whose latest run that week started in it;
    `suggestions`: the suggested topics (SuggestedTopic rows) first seen that week."""
    env = site_environment(config.site)
    names = {t.slug: t.name for t in topics}
    sections: dict[str, list[Finding]] = defaultdict(list)
    findings = [Finding(view, names, config.site, env) for view in views]
    for f in findings:
        sections[f.view.tags[0][0] if f.view.tags else "other"].append(f)
    ordered = sorted(sections.items(), key=lambda kv: (kv[0] == "other", -len(kv[1]), kv[0]))
    top = [names[slug] for slug, _ in ordered if slug in names][:3]
    subject = f"Digest, week {week}: {len(views)} findings" + (f" in {', '.join(top)}" if top else "")
    if len([s for s, _ in ordered if s in names]) > 3:
        subject += ", ..."
    shown_for_you = {i for i, _ in foryou}
    picks = newsletter_picks([f for f in findings if f.item.id not in shown_for_you])
    picked = {id(f) for f in picks} | {id(f) for f in findings if f.item.id in shown_for_you}  # each shown once

    def unpicked(fs: list[Finding]) -> list[Finding]:
        return [f for f in fs if id(f) not in picked]  # a top pick is shown once, in Top picks

    checked = []
    for v, c, verdict in reproductions:
        f = Finding(v, names, config.site, env)
        shown = f.verdict(c)
        checked.append((f, c, verdict, shown if shown and shown.verdict == verdict else None))
    by_id = {f.item.id: f for f in findings}
    ctx = {
        "week": week,
        "foryou": [(by_id[i], why) for i, why in foryou if i in by_id],
        "picks": picks,
        "sections": [(slug, names.get(slug, "Other"), rest[:5]) for slug, fs in ordered if (rest := unpicked(fs))],
        "reproduced": [row for row in checked if row[2] == "reproduced"],
        "failed": [row for row in checked if row[2] in ("diverged", "failed")],
        "base": config.site.base_url,
        "item_path": item_path,
        "tag_path": tag_path,
        "total": len(views),
        "suggestions": [_suggestion(s) for s in suggestions],
        "unsubscribe_url": "{{UNSUBSCRIBE_URL}}",
        "subject": header_text(subject, 200),
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
    msg["List-Id"] = list_id(config)
    _unsubscribe_headers(msg, config, "")
    msg.set_content(text.replace("{{UNSUBSCRIBE_URL}}", _unsubscribe_url(config, "")))
    msg.add_alternative(html.replace("{{UNSUBSCRIBE_URL}}", _unsubscribe_url(config, "")), subtype="html")
    msg._digest_parts = (text, html)  # type: ignore[attr-defined]  # the templates, for per-recipient copies
    return msg


def newsletter_picks(findings: Sequence[Finding], limit: int = PICKS_MAX) -> list[Finding]:
    """The week's top picks (digest.picks): headline strength, reproduction verdict, blog coverage, code."""
    candidates = [
        Candidate(
            f,
            f.headline,
            f.headline_verdict.verdict if f.headline_verdict else None,
            len(f.view.coverage),
            bool(f.code_urls),
            n,
        )
        for n, f in enumerate(findings)
    ]
    return top_picks(candidates, limit)


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


def list_id(config: Config) -> str:
    """RFC 2919 List-Id: the site's title as the phrase, 'newsletter.' + the site's host as the id; the same for
    every issue, so mail clients and filters can tell the list by it. The phrase is a quoted string in ASCII
    (an encoded word may not stand inside quotes, RFC 2047 5): accents and other characters are dropped."""
    import unicodedata

    ascii_title = unicodedata.normalize("NFKD", header_text(config.site.title, 100)).encode("ascii", "ignore").decode()
    title = " ".join(re.sub(r'["\\]', "", ascii_title).split())
    return f'"{title}" <newsletter.{_domain(config)}>' if title else f"<newsletter.{_domain(config)}>"


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
    for name in ("Subject", "From", "Date", "List-Id"):
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
