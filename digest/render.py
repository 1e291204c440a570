"""Pure rendering: item views in, {relative path: bytes} and email messages out (Jinja, autoescaped)."""

from __future__ import annotations

import email.policy
from collections import Counter, defaultdict
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache

from jinja2 import Environment, FileSystemLoader, select_autoescape

from digest.config import REPO_ROOT, Config, SiteConfig
from digest.models import Topic
from digest.normalize import clean_text, slugify
from digest.store import ItemView
from digest.summarize import key_points, one_line

TEMPLATES = REPO_ROOT / "templates"
CSS = "style.css"


@cache
def environment(extra: str | None = None) -> Environment:
    """User templates first (extra), then the packaged ones: the pelican override chain."""
    paths = [p for p in (extra, str(TEMPLATES)) if p]
    env = Environment(loader=FileSystemLoader(paths), autoescape=select_autoescape(["html", "xml"]))
    env.filters["date"] = lambda d: d.strftime("%Y-%m-%d") if d else ""
    env.filters["claim"] = format_claim
    return env


def item_path(view_or_item) -> str:
    item = getattr(view_or_item, "item", view_or_item)
    stem = item.arxiv_id if item.arxiv_id else item.title
    return f"items/{item.id}-{slugify(stem, 60)}.html"


def tag_path(slug: str) -> str:
    return f"tags/{slugify(slug)}.html"


def week_path(week: str) -> str:
    return f"weeks/{slugify(week)}.html"


def week_of(view: ItemView) -> str:
    year, week, _ = view.item.published.date().isocalendar()
    return f"{year}-W{week:02d}"


def format_claim(claim) -> str:
    """'~6.17x', '3–10x', 'ρ = 0.55', '76% → 99%': the number as a reader scans it."""

    def num(v: float) -> str:
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:.3g}"

    unit = claim.unit or ""
    if unit == "rho":
        text = f"ρ = {num(claim.value)}"
    elif unit == "r2":
        text = f"R² = {num(claim.value)}"
    elif unit == "$":
        text = f"${num(claim.value)}"
    else:
        sep = "" if unit in ("x", "%") else " "
        value = num(claim.value)
        if claim.value_hi is not None:
            value = f"{value}–{num(claim.value_hi)}"
        text = f"{value}{sep}{unit}".strip()
        if claim.baseline is not None:
            text = f"{num(claim.baseline)}{sep}{unit} → {text}".strip()
    qualifier = f"{claim.qualifier} " if claim.qualifier else ""
    return f"{qualifier}{text}"


def finding(view: ItemView) -> dict:
    """The seed-001 shape: one line saying what it is, then key points taken from the text itself."""
    claim_sentences = [c.text for c in view.claims]
    return {
        "view": view,
        "item": view.item,
        "path": item_path(view),
        "one_line": one_line(view.item.summary),
        "points": key_points(view.item.summary, claim_sentences),
        "week": week_of(view),
        "headline": view.claims[0] if view.claims else None,
    }


def site_pages(views: list[ItemView], topics: list[Topic], site: SiteConfig) -> dict[str, bytes]:
    """Every page of the site, computed before anything is written."""
    env = environment()
    names = {t.slug: t.name for t in topics}
    findings = [finding(v) for v in views]
    by_tag: dict[str, list[dict]] = defaultdict(list)
    by_week: dict[str, list[dict]] = defaultdict(list)
    for f in findings:
        by_week[f["week"]].append(f)
        for slug, _score in f["view"].tags:
            by_tag[slug].append(f)
    tag_counts = Counter({slug: len(fs) for slug, fs in by_tag.items()})
    common = {"site": site, "topic_names": names, "tag_path": tag_path, "week_path": week_path, "css": CSS}
    pages: dict[str, bytes] = {}

    def put(path: str, template: str, **ctx) -> None:
        root = "../" * path.count("/")
        pages[path] = env.get_template(template).render(root=root, **common, **ctx).encode("utf-8")

    weeks = sorted(by_week, reverse=True)
    put(
        "index.html",
        "index.html",
        weeks=[(w, by_week[w]) for w in weeks[:4]],
        tags=[(t, names.get(t, t), n) for t, n in tag_counts.most_common()],
        all_weeks=weeks,
        total=len(findings),
    )
    for f in findings:
        put(f["path"], "item.html", f=f)
    for topic in topics:
        put(tag_path(topic.slug), "tag.html", topic=topic, findings=by_tag.get(topic.slug, []))
    for week in weeks:
        put(week_path(week), "week.html", week=week, findings=by_week[week])
    put("tags/index.html", "tags_index.html", tags=[(t.slug, t.name, tag_counts.get(t.slug, 0)) for t in topics])
    pages[CSS] = (TEMPLATES / CSS).read_bytes()
    return pages


def newsletter_message(week: str, views: list[ItemView], topics: list[Topic], config: Config) -> EmailMessage:
    """multipart/alternative: plain text first, then HTML with absolute links; headers safe from feed data."""
    env = environment()
    names = {t.slug: t.name for t in topics}
    sections: dict[str, list[dict]] = defaultdict(list)
    for view in views:
        slug = view.tags[0][0] if view.tags else "other"
        sections[slug].append(finding(view))
    ordered = sorted(sections.items(), key=lambda kv: (kv[0] == "other", -len(kv[1]), kv[0]))
    top = [names[slug] for slug, _ in ordered if slug in names][:3]
    subject = f"Digest, week {week}: {len(views)} findings" + (f" in {', '.join(top)}" if top else "")
    ctx = {
        "week": week,
        "sections": [(slug, names.get(slug, "Other"), fs[:5]) for slug, fs in ordered],
        "base": config.site.base_url,
        "item_path": item_path,
        "tag_path": tag_path,
        "total": len(views),
    }
    html = env.get_template("newsletter.html").render(**ctx)
    text = env.get_template("newsletter.txt").render(**ctx)
    html = _inline_css(html)
    msg = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
    msg["Subject"] = clean_text(subject, 200)
    msg["From"] = config.newsletter.sender
    msg["To"] = "subscribers@localhost"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=f"digest-{week}", domain="digest.local")
    unsubscribe = [f"<{config.newsletter.unsubscribe_mailto}>"]
    if config.newsletter.unsubscribe_url:
        unsubscribe.append(f"<{config.newsletter.unsubscribe_url}>")
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Unsubscribe"] = ", ".join(unsubscribe)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


def _inline_css(html: str) -> str:
    import css_inline

    return css_inline.inline(html)
