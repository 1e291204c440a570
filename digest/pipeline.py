"""The one orchestrator: joins fetch, parse, store, embed, topics, claims, render and write."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine

from digest import store
from digest.config import Config, SourceConfig
from digest.errors import DigestError, FetchError
from digest.fetch import Fetcher, Validators, arxiv_client, fetch_arxiv
from digest.models import Claim, Embedding, FetchState, SourceRun, Topic, utcnow
from digest.parse import from_arxiv_result, parse_feed, parse_html

log = logging.getLogger("digest")
Progress = Callable[[str, int, int], None]  # (label, done, total)


@dataclass
class SourceReport:
    source: str
    status: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str = ""
    duration_s: float = 0.0


# --- ingest wing --------------------------------------------------------------


def ingest(
    engine: Engine, config: Config, only: str | None = None, progress: Progress | None = None
) -> list[SourceReport]:
    """Fetch every source (arXiv first), store new entries, link blog coverage; one report per source."""
    sources = [config.source(only)] if only else sorted(config.sources, key=lambda s: s.kind != "arxiv")
    store.sync_sources(engine, config.sources)
    run_id = uuid.uuid4().hex[:12]
    reports: list[SourceReport] = []
    arxiv = None
    with Fetcher(config.fetch) as fetcher:
        for done, source in enumerate(sources):
            if progress:
                progress(f"ingest {source.name}", done, len(sources))
            started = time.monotonic()
            try:
                if source.kind == "arxiv":
                    arxiv = arxiv or arxiv_client(config.fetch)
                    report = _ingest_arxiv(engine, config, source, arxiv)
                else:
                    report = _ingest_feed(engine, config, source, fetcher)
            except FetchError as exc:
                report = SourceReport(source.name, "broken", error=str(exc))
                state = store.get_fetch_state(engine, source.name)
                state.last_error, state.last_fetch_at = str(exc), utcnow()
                store.save_fetch_state(engine, state)
            report.duration_s = round(time.monotonic() - started, 3)
            store.record_run(engine, SourceRun(run_id=run_id, source=source.name, **_run_fields(report)))
            log.info(
                "%s: %s new=%d updated=%d %s", source.name, report.status, report.new, report.updated, report.error
            )
            reports.append(report)
    if progress:
        progress("ingest", len(sources), len(sources))
    store.relink_coverage(engine)
    return reports


def _ingest_feed(engine: Engine, config: Config, source: SourceConfig, fetcher: Fetcher) -> SourceReport:
    state = store.get_fetch_state(engine, source.name)
    url = store.source_url(engine, source.name, source.url)
    response = fetcher.get(source, url, Validators(state.etag, state.last_modified))
    state.last_status, state.last_fetch_at, state.url = response.status, utcnow(), url
    if response.not_modified:
        state.last_error = ""
        store.save_fetch_state(engine, state)
        return SourceReport(source.name, "not-modified")
    if source.kind == "rss":
        result = parse_feed(response.body, response.headers, response.url, config.fetch.max_entries)
    else:
        result = parse_html(response.body, source.selectors, response.url, config.fetch.max_entries)
    state.etag, state.last_modified = response.validators.etag, response.validators.last_modified
    state.last_error = result.warning
    counts = store.save_entries(engine, source.name, result.entries, state)
    if response.permanent_url:
        store.update_source_url(engine, source.name, response.permanent_url)
    status = "warning" if result.warning else "ok"
    return SourceReport(source.name, status, counts.new, counts.updated, counts.unchanged, result.warning)


def _ingest_arxiv(engine: Engine, config: Config, source: SourceConfig, client) -> SourceReport:
    results = fetch_arxiv(client, source, config.fetch)
    entries = [from_arxiv_result(r) for r in results]
    state = FetchState(source=source.name, url=source.query, last_status=200, last_fetch_at=utcnow())
    counts = store.save_entries(engine, source.name, entries, state)
    return SourceReport(source.name, "ok", counts.new, counts.updated, counts.unchanged)


def _run_fields(report: SourceReport) -> dict:
    return {
        "status": report.status,
        "new": report.new,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "error": report.error[:1000],
        "duration_s": report.duration_s,
    }


# --- analyze wing ---------------------------------------------------------------


def embed_items(engine: Engine, embedder, progress: Progress | None = None) -> int:
    """Embed only items whose text changed since their stored vector; returns how many were encoded."""
    from digest.embed import encode_in_batches, to_bytes
    from digest.topics import item_text

    have = store.embeddings(engine, embedder.name)
    todo = [i for i in store.items(engine) if have.get(i.id) is None or have[i.id].content_hash != i.content_hash]
    if not todo:
        return 0
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress("embed", done, len(todo))

    vecs = encode_in_batches(embedder, [item_text(i.title, i.summary) for i in todo], progress=tick)
    rows = [
        Embedding(item_id=i.id, model=embedder.name, content_hash=i.content_hash, dim=vecs.shape[1], vector=to_bytes(v))
        for i, v in zip(todo, vecs, strict=True)
    ]
    store.save_embeddings(engine, rows)
    return len(rows)


def tag_items(engine: Engine, config: Config, embedder, progress: Progress | None = None) -> dict[str, int]:
    """Embed what changed, then give every item 0-3 topics from the taxonomy file."""
    from digest import topics as topics_mod
    from digest.embed import from_bytes

    taxonomy = topics_mod.load_topics(config.topics_file)
    embedded = embed_items(engine, embedder, progress)
    index = topics_mod.build_index(taxonomy, embedder.encode)
    all_items = store.items(engine)
    vectors = store.embeddings(engine, embedder.name)
    kept = [i for i in all_items if i.id in vectors]
    if kept:
        matrix = np.vstack([from_bytes(vectors[i.id].vector) for i in kept])
        texts = [topics_mod.item_text(i.title, i.summary) for i in kept]
        blog_tags = [json.loads(i.blog_tags or "[]") for i in kept]
        assigned = topics_mod.assign(index, matrix, texts, blog_tags)
    else:
        assigned = []
    tags = {item.id: pairs for item, pairs in zip(kept, assigned, strict=True)}
    rows = [
        Topic(slug=t.slug, name=t.name, description=t.description, keywords=json.dumps(list(t.keywords)))
        for t in taxonomy
    ]
    store.replace_topics(engine, rows, tags)
    return {"embedded": embedded, "items": len(kept), "tagged": sum(1 for p in tags.values() if p)}


def extract_claims(engine: Engine) -> int:
    """Headline numbers from every item's title and summary, replacing the previous extraction."""
    from digest import claims as claims_mod

    found: dict[int, list[Claim]] = {}
    for item in store.items(engine):
        rows = []
        for field, text in (("title", item.title), ("summary", item.summary)):
            for c in claims_mod.extract_claims(text):
                rows.append(
                    Claim(
                        item_id=item.id,
                        value=c.value,
                        value_hi=c.value_hi,
                        unit=c.unit,
                        kind=c.kind,
                        direction=c.direction,
                        qualifier=c.qualifier,
                        subject=c.subject,
                        context=c.context,
                        baseline=c.baseline,
                        text=c.text,
                        start=c.start,
                        end=c.end,
                        field=field,
                    )
                )
        found[item.id] = rows
    store.replace_claims(engine, found)
    return sum(len(v) for v in found.values())


# --- publish wing ----------------------------------------------------------------


def build_site(engine: Engine, config: Config, out_dir: Path | None = None, search: bool = True) -> tuple[Path, int]:
    """Render only pages whose inputs changed, write those, then (search=True) refresh the Pagefind index."""
    from digest import render, write

    out = Path(out_dir) if out_dir else config.site.out_dir
    pages = render.plan_site(store.item_views(engine), store.topics(engine), config.site)
    _rendered, written = write.write_site(out, pages)
    if search and (written or not (out / "pagefind" / "pagefind.js").exists()):
        build_search(out)
    return out, written


def build_search(out: Path) -> float:
    """Pagefind index over the built site; returns seconds spent (reported apart from the build)."""
    from digest import searchindex

    return searchindex.build_index(Path(out))


def build_newsletter(engine: Engine, config: Config, week: str, out_dir: Path | None = None) -> Path:
    """One ISO week's issue as an .eml file (text part first, then HTML)."""
    from digest import render, write

    start, end = parse_week(week)
    views = [v for v in store.item_views(engine) if start <= v.item.published.date() <= end]
    message = render.newsletter_message(week, views, store.topics(engine), config)
    out = Path(out_dir) if out_dir else config.newsletter.out_dir
    path = out / f"digest-{week}.eml"
    write.write_bytes(path, bytes(message))
    return path


def send_newsletter(engine: Engine, config: Config, week: str, dry_run_dir: Path | None = None):
    """Deliver one week's issue to every subscriber (or write one .eml each with dry_run_dir)."""
    from digest import deliver, render

    start, end = parse_week(week)
    week = iso_week(start)
    views = [v for v in store.item_views(engine) if start <= v.item.published.date() <= end]
    if not views:
        raise DigestError(f"--week {week}: no findings that week, nothing to send")
    issue = render.newsletter_message(week, views, store.topics(engine), config)

    def personalize(address: str, token: str):
        return render.for_recipient(issue, config, week, address, token)

    return deliver.send_issue(engine, config, week, personalize, dry_run_dir=dry_run_dir)


def parse_week(week: str) -> tuple[date, date]:
    """'2026-W48' -> (Monday, Sunday) of that ISO week."""
    try:
        year_s, w_s = week.upper().split("-W")
        monday = date.fromisocalendar(int(year_s), int(w_s), 1)
    except ValueError:
        raise DigestError(f"--week {week!r}: expected an ISO week like 2026-W48") from None
    return monday, date.fromisocalendar(monday.isocalendar().year, monday.isocalendar().week, 7)


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def latest_week(engine: Engine) -> str:
    rows = store.items(engine, findings_only=True)
    return iso_week(rows[0].published.date()) if rows else iso_week(date.today())
