"""The one orchestrator: joins fetch, parse, store, embed, topics, claims, render and write."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine

from digest import ingest as ingest_mod
from digest import store
from digest.config import Config
from digest.errors import DigestError
from digest.gcpause import paused_gc
from digest.ingest import SourceReport
from digest.models import Claim, Embedding, Topic

log = logging.getLogger("digest")
Progress = Callable[[str, int, int], None]  # (label, done, total)


# --- ingest wing (digest/ingest.py) ------------------------------------------------


def ingest(
    engine: Engine, config: Config, only: str | None = None, progress: Progress | None = None
) -> list[SourceReport]:
    """Fetch every source (arXiv first), store new entries, link blog coverage; one report per source."""
    return ingest_mod.ingest(engine, config, only=only, progress=progress)


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
    index = topic_index(engine, taxonomy, embedder)
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


def topic_index(engine: Engine, taxonomy: list, embedder):
    """The taxonomy's prototype vectors; only prototype texts not cached for this model are encoded."""
    import hashlib

    from digest import topics as topics_mod
    from digest.embed import from_bytes, to_bytes
    from digest.models import TopicVector

    def encode(texts: list[str]) -> np.ndarray:
        hashes = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        cached = store.topic_vectors(engine, embedder.name, hashes)
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in cached}
        if missing:
            vecs = embedder.encode(list(missing.values()))
            rows = [
                TopicVector(model=embedder.name, text_hash=h, vector=to_bytes(v))
                for h, v in zip(missing, vecs, strict=True)
            ]
            store.save_topic_vectors(engine, rows)
            cached.update({r.text_hash: r.vector for r in rows})
        return np.vstack([from_bytes(cached[h]) for h in hashes])

    return topics_mod.build_index(taxonomy, encode, embedder.name)


def _item_vectors(engine: Engine, embedder, items: list) -> np.ndarray:
    """Stored vectors of these items (embedding any that are missing or stale first)."""
    from digest.embed import from_bytes
    from digest.topics import item_text

    have = store.embeddings(engine, embedder.name)
    ok = [i for i in items if i.id in have and have[i.id].content_hash == i.content_hash]
    fresh = {i.id: from_bytes(have[i.id].vector) for i in ok}
    stale = [i for i in items if i.id not in fresh]
    if stale:
        vecs = embedder.encode([item_text(i.title, i.summary) for i in stale])
        fresh.update(zip([i.id for i in stale], vecs, strict=True))
    return np.vstack([fresh[i.id] for i in items])


def explain_item(engine: Engine, config: Config, embedder, ref: str) -> tuple:
    """(item, rows): per-topic similarity, keyword and tag hits, score and choice for one item."""
    from digest import topics as topics_mod

    item = store.find_item(engine, ref)
    if item is None:
        raise DigestError(f"item {ref!r} not found (give an item id, an arXiv id or an item key)")
    taxonomy = topics_mod.load_topics(config.topics_file)
    index = topic_index(engine, taxonomy, embedder)
    vec = _item_vectors(engine, embedder, [item])[0]
    text = topics_mod.item_text(item.title, item.summary)
    # The corpus's baselines and keyword specificity, as `digest tag` computed them.
    everything = store.items(engine)
    sims = topics_mod.topic_similarity(index, _item_vectors(engine, embedder, everything))
    context = topics_mod.corpus_context(index, sims, [topics_mod.item_text(i.title, i.summary) for i in everything])
    return item, topics_mod.explain(index, vec, text, json.loads(item.blog_tags or "[]"), context)


def suggest_topics(
    engine: Engine,
    config: Config,
    embedder,
    threshold: float | None = None,
    distance: float | None = None,
    min_size: int | None = None,
    progress: Progress | None = None,
) -> tuple[int, list]:
    """Cluster the items whose best topic score is under ``threshold``; store and return the suggestions.

    Returns (number of poorly fitting items, suggestions), largest suggestion first.
    """
    from digest import cluster
    from digest import topics as topics_mod
    from digest.models import SuggestedTopic

    taxonomy = topics_mod.load_topics(config.topics_file)
    embed_items(engine, embedder, progress)
    index = topic_index(engine, taxonomy, embedder)
    threshold = index.calib.min_score if threshold is None else threshold
    items = store.items(engine)
    vecs = _item_vectors(engine, embedder, items) if items else np.zeros((0, 1), np.float32)
    texts = [topics_mod.item_text(i.title, i.summary) for i in items]
    if items:
        scores = topics_mod.score_matrix(index, vecs, texts, [json.loads(i.blog_tags or "[]") for i in items])
        outliers = np.flatnonzero(scores.max(axis=1) < threshold)
    else:
        outliers = np.zeros(0, dtype=np.int64)
    found = cluster.suggest(
        vecs[outliers],
        [items[i].key for i in outliers],
        [texts[i] for i in outliers],
        background=texts,
        distance=cluster.DISTANCE if distance is None else distance,
        min_size=cluster.MIN_SIZE if min_size is None else min_size,
    )
    rows = [
        SuggestedTopic(
            id=s.id,
            label=s.label,
            terms=json.dumps(s.terms),
            size=len(s.members),
            members=json.dumps(s.members),
            titles=json.dumps(s.titles),
            model=embedder.name,
        )
        for s in found
    ]
    store.replace_suggested_topics(engine, rows)
    return len(outliers), rows


def accept_suggestion(
    engine: Engine, config: Config, cluster_id: str, slug: str, name: str | None = None
) -> tuple[Path, str]:
    """Append suggested topic ``cluster_id`` to the taxonomy file as [[topic]] ``slug``; returns (file, block)."""
    from digest import cluster
    from digest import topics as topics_mod
    from digest.write import write_bytes

    suggestion = store.suggested_topic(engine, cluster_id)
    if suggestion is None:
        raise DigestError(f"suggested topic {cluster_id!r} not found (run `digest topics suggest` to list them)")
    if not topics_mod.SLUG_RE.match(slug):
        raise DigestError(f"--slug {slug!r}: must be [a-z0-9] words joined by single hyphens")
    path = config.topics_file
    taxonomy = topics_mod.load_topics(path)
    if any(t.slug == slug for t in taxonomy):
        raise DigestError(f"--slug {slug!r}: {path} already has a topic with this slug")
    terms = json.loads(suggestion.terms)
    if not terms:
        raise DigestError(f"suggested topic {cluster_id!r} has no distinctive terms to use as keywords")
    name = name or " / ".join(t.capitalize() for t in terms[:2])
    block = cluster.topic_toml(
        slug,
        name,
        f"Emerging topic found by clustering items that fit no other topic: {', '.join(terms[:6])}.",
        terms[:8],
        json.loads(suggestion.titles)[:3],
    )
    original = path.read_bytes()
    write_bytes(path, cluster.append_topic(original.decode("utf-8"), block, cluster_id).encode("utf-8"))
    try:
        topics_mod.load_topics(path)
    except DigestError:
        write_bytes(path, original)
        raise
    return path, block


def extract_claims(engine: Engine) -> int:
    """Headline numbers from every item's title and summary; claim ids stay stable across reruns (hooks use them)."""
    from digest import claims as claims_mod

    found: dict[int, list[Claim]] = {}
    for item in store.items(engine):
        rows = []
        for field, text in (("title", item.title), ("summary", item.summary)):
            seen: dict[tuple[str, float], int] = {}
            for c in claims_mod.extract_claims(text):
                n = seen[(c.unit, c.value)] = seen.get((c.unit, c.value), 0) + 1
                key = claims_mod.claim_key(item.key, field, c.unit, c.value, n)
                rows.append(Claim(item_id=item.id, field=field, key=key, **asdict(c)))
        found[item.id] = rows
    store.replace_claims(engine, found)
    return sum(len(v) for v in found.values())


# --- publish wing ----------------------------------------------------------------


def build_site(engine: Engine, config: Config, out_dir: Path | None = None, search: bool = True) -> tuple[Path, int]:
    """Render only pages whose inputs changed, write those, then (search=True) refresh the Pagefind index."""
    from digest import render, write

    out = Path(out_dir) if out_dir else config.site.out_dir
    state = write.adopt_state(out, write.state_dir(out, config.workspace))
    manifest = write.read_manifest(state)
    with paused_gc():  # ~10^5 short-lived objects and no cycles worth collecting (see digest.gcpause)
        sigs = store.site_signatures(engine)
        with search_connection(engine) as conn:
            sigs.similar = similar_pages(conn, config)
            sigs.foryou = foryou_picks(conn, config)
        load = partial(store.site_views, engine)
        build = render.plan_build(
            sigs, sigs.topics, config.site, manifest.get("items", {}), load, manifest.get("groups")
        )
        extra = {"items": build.items, "groups": build.groups}
        _rendered, written = write.write_site(
            out,
            build.pages,
            load=build.load,
            manifest=manifest,
            extra=extra,
            fragments=build.fragments,
            warm=build.warm,
            prime=build.prime,
            state=state,
        )
    if search and (written or not (out / "pagefind" / "pagefind.js").exists()):
        build_search(out)
    return out, written


@contextmanager
def search_connection(engine: Engine):
    """A search connection to the engine's database (stdlib sqlite3 on SQLite): what the recommendation and
    similar-paper readers take."""
    from digest import search

    conn = search.connect(engine.url.render_as_string(hide_password=False))
    try:
        yield conn
    finally:
        conn.close()


def similar_pages(conn, config: Config) -> dict[int, list[tuple[str, str]]]:
    """Each finding's five nearest findings by stored embedding, for the "Similar papers" list of item pages."""
    from digest import foryou
    from digest.embed import configured_model_name

    return foryou.similar_pages(conn, configured_model_name(config), config.workspace / "cache")


FORYOU_PAGE = 20  # recommendations on the site's "For you" page
FORYOU_DAYS = 30  # ... among the findings of this many days before the newest one
FORYOU_MAIL = 5  # recommendations at the top of the newsletter, among the week's findings


def foryou_picks(conn, config: Config, limit: int = FORYOU_PAGE, since=None, until=None) -> list[tuple[int, str]]:
    """(finding id, why) recommended from the reader's library, best first; [] without a library. Without
    `since`, the window is the FORYOU_DAYS before the newest finding (not the clock: a snapshot works too)."""
    from datetime import timedelta

    from digest import foryou
    from digest.embed import configured_model_name

    if not foryou.has_library(conn):
        return []
    if since is None:
        newest = conn.rows("SELECT MAX(published) FROM item WHERE covers_item_id IS NULL")[0][0]
        if newest is None:
            return []
        since = store._datetime(newest) - timedelta(days=FORYOU_DAYS)
    try:
        picks = foryou.recommendations(
            conn, configured_model_name(config), config.workspace / "cache", limit, since, until
        )
    except DigestError:
        return []  # a library none of whose papers is embedded yet, or no vectors at all
    return [(p.item_id, foryou.because_text(p.because)) for p in picks]


def build_search(out: Path) -> float:
    """Pagefind index over the built site; returns seconds spent (reported apart from the build)."""
    from digest import searchindex

    return searchindex.build_index(Path(out))


def build_newsletter(engine: Engine, config: Config, week: str, out_dir: Path | None = None) -> Path:
    """One ISO week's issue as an .eml file (text part first, then HTML)."""
    from digest import render, write

    week = iso_week(parse_week(week)[0])
    views, topics, extra = newsletter_inputs(engine, week, config)
    message = render.newsletter_message(week, views, topics, config, **extra)
    out = Path(out_dir) if out_dir else config.newsletter.out_dir
    path = out / f"digest-{week}.eml"
    write.write_bytes(path, bytes(message))
    return path


def send_newsletter(engine: Engine, config: Config, week: str, dry_run_dir: Path | None = None):
    """Deliver one week's issue to every subscriber (or write one .eml each with dry_run_dir)."""
    from digest import deliver, render

    week = iso_week(parse_week(week)[0])
    views, topics, extra = newsletter_inputs(engine, week, config)
    if not views:
        raise DigestError(f"--week {week}: no findings that week, nothing to send")
    issue = render.newsletter_message(week, views, topics, config, **extra)

    def personalize(address: str, token: str):
        return render.for_recipient(issue, config, week, address, token)

    return deliver.send_issue(engine, config, week, personalize, dry_run_dir=dry_run_dir)


def newsletter_inputs(engine: Engine, week: str, config: Config | None = None) -> tuple[list, list, dict]:
    """(the week's findings, topics, {"reproductions": [(view, claim, verdict)], "suggestions": [...]}): the
    reproductions are the claims whose latest run that week started within it, whatever week their item is from."""
    from datetime import datetime, time, timedelta

    start, end = parse_week(week)
    since, until = datetime.combine(start, time()), datetime.combine(end + timedelta(days=1), time())
    week_ids = store.finding_ids_between(engine, since, until)
    views = store.site_views(engine, week_ids) if week_ids else []
    runs = store.runs_between(engine, since, until)
    ran = sorted({item_id for item_id, _, _ in runs})
    by_id = {v.item.id: v for v in store.site_views(engine, ran)} if ran else {}
    reproductions = []
    for item_id, claim_id, verdict in runs:
        view = by_id.get(item_id)
        claim = next((c for c in view.claims if c.id == claim_id), None) if view else None
        if claim is not None:
            reproductions.append((view, claim, verdict))
    extra = {"reproductions": reproductions, "suggestions": store.suggested_topics_between(engine, since, until)}
    if config is not None and views:  # the week's findings closest to the reader's library, first in the issue
        with search_connection(engine) as conn:
            extra["foryou"] = foryou_picks(conn, config, FORYOU_MAIL, since, until)
    return views, store.topics(engine), extra


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
