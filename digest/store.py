"""The only module that opens sessions: engine set-up, upserts with dedupe, and the queries stages need."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, event, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session, SQLModel, create_engine, select

from digest.errors import DigestError
from digest.models import (
    Claim,
    Embedding,
    FetchState,
    Item,
    ItemTopic,
    Source,
    SourceRun,
    Topic,
    utcnow,
)
from digest.parse import Entry


def open_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL; SQLite gets WAL, foreign keys and a parent folder."""
    try:
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
    except ArgumentError:
        raise DigestError(f"--db {url!r}: not a database URL (expected e.g. sqlite:///path.db)") from None
    except ModuleNotFoundError as exc:
        raise DigestError(f"--db {url!r}: database driver not installed ({exc.name})") from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    return engine


def init_db(engine: Engine) -> None:
    """Create missing tables, then apply pending numbered migrations (digest.migrations)."""
    from digest.migrations import migrate

    try:
        SQLModel.metadata.create_all(engine)
        migrate(engine)
    except OperationalError as exc:
        raise DigestError(f"cannot open database {engine.url!r}: {str(exc.orig).strip().splitlines()[0]}") from None


@contextmanager
def session(engine: Engine):
    with Session(engine, expire_on_commit=False) as s:
        yield s


# --- sources and fetch state -------------------------------------------------


def sync_sources(engine: Engine, sources: Iterable) -> None:
    """Mirror the config's sources into the Source table (new ones added, changed ones updated)."""
    with session(engine) as s:
        for cfg in sources:
            row = s.exec(select(Source).where(Source.name == cfg.name)).first()
            if row is None:
                row = Source(name=cfg.name, kind=cfg.kind, url=cfg.url, query=cfg.query)
            row.kind, row.query = cfg.kind, cfg.query
            if not row.url:
                row.url = cfg.url
            s.add(row)
        s.commit()


def get_fetch_state(engine: Engine, source: str) -> FetchState:
    with session(engine) as s:
        return s.get(FetchState, source) or FetchState(source=source)


@dataclass
class UpsertCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0


def save_entries(
    engine: Engine, source: str, entries: Sequence[Entry], state: FetchState | None = None
) -> UpsertCounts:
    """Upsert entries and, in the same transaction, the validators that came with them."""
    counts = UpsertCounts()
    with session(engine) as s:
        for entry in entries:
            outcome = _upsert(s, source, entry)
            setattr(counts, outcome, getattr(counts, outcome) + 1)
        if state is not None:
            s.merge(state)
        s.commit()
    return counts


def _upsert(s: Session, source: str, entry: Entry) -> str:
    row = s.exec(select(Item).where(Item.key == entry.key)).first()
    if row is None and entry.arxiv_id:
        row = s.exec(select(Item).where(Item.arxiv_id == entry.arxiv_id)).first()
    digest = entry.content_hash
    if row is not None and row.content_hash == digest and (row.arxiv_version or 0) >= (entry.arxiv_version or 0):
        return "unchanged"
    is_new = row is None
    if is_new:
        row = Item(key=entry.key, source=source, title=entry.title, published=entry.published)
    versions = json.loads(row.versions or "[]")
    if entry.arxiv_version and all(v["version"] != entry.arxiv_version for v in versions):
        versions.append({"version": entry.arxiv_version, "updated": _iso(entry.updated or entry.published)})
    row.kind = entry.kind
    row.title = entry.title
    row.url = entry.url
    row.pdf_url = entry.pdf_url
    row.summary = entry.summary
    row.summary_html = entry.summary_html
    row.authors = json.dumps(entry.authors)
    row.published = row.published if not is_new and entry.kind == "paper" else entry.published
    row.updated = entry.updated
    row.arxiv_id = entry.arxiv_id
    row.arxiv_version = entry.arxiv_version
    row.versions = json.dumps(sorted(versions, key=lambda v: v["version"]))
    row.blog_tags = json.dumps(entry.tags)
    row.code_urls = json.dumps(entry.code_urls)
    row.content_hash = digest
    s.add(row)
    return "new" if is_new else "updated"


def relink_coverage(engine: Engine) -> int:
    """Attach posts ingested before their paper arrived; returns how many were linked."""
    from digest.normalize import arxiv_ids_in

    linked = 0
    with session(engine) as s:
        papers = {i.arxiv_id: i.id for i in s.exec(select(Item).where(Item.kind == "paper"))}
        for post in s.exec(select(Item).where(Item.kind == "post", Item.covers_item_id.is_(None))):
            for arxiv_id in arxiv_ids_in(f"{post.summary_html} {post.url}"):
                if arxiv_id in papers:
                    post.covers_item_id = papers[arxiv_id]
                    s.add(post)
                    linked += 1
                    break
        s.commit()
    return linked


def save_fetch_state(engine: Engine, state: FetchState) -> None:
    with session(engine) as s:
        s.merge(state)
        s.commit()


def update_source_url(engine: Engine, name: str, url: str) -> None:
    with session(engine) as s:
        row = s.exec(select(Source).where(Source.name == name)).first()
        if row is not None:
            row.url = url
            s.add(row)
            s.commit()


def source_url(engine: Engine, name: str, default: str) -> str:
    with session(engine) as s:
        row = s.exec(select(Source).where(Source.name == name)).first()
        return row.url if row is not None and row.url else default


def record_run(engine: Engine, run: SourceRun) -> None:
    with session(engine) as s:
        s.add(run)
        s.commit()


def last_runs(engine: Engine) -> list[SourceRun]:
    with session(engine) as s:
        latest = select(SourceRun.source, func.max(SourceRun.id).label("mid")).group_by(SourceRun.source).subquery()
        stmt = select(SourceRun).join(latest, SourceRun.id == latest.c.mid)
        return list(s.exec(stmt))


# --- analysis ----------------------------------------------------------------


def items(engine: Engine, *, findings_only: bool = False) -> list[Item]:
    with session(engine) as s:
        stmt = select(Item).order_by(Item.published.desc(), Item.id)
        if findings_only:
            stmt = stmt.where(Item.covers_item_id.is_(None))
        return list(s.exec(stmt))


def embeddings(engine: Engine, model: str) -> dict[int, Embedding]:
    with session(engine) as s:
        return {e.item_id: e for e in s.exec(select(Embedding).where(Embedding.model == model))}


def save_embeddings(engine: Engine, rows: Sequence[Embedding]) -> None:
    with session(engine) as s:
        for row in rows:
            s.merge(row)
        s.commit()


def replace_topics(engine: Engine, topics: Sequence[Topic], tags: dict[int, list[tuple[str, float]]]) -> None:
    """The taxonomy and every item's tags, swapped in one transaction."""
    with session(engine) as s:
        s.exec(delete(ItemTopic))
        keep = {t.slug for t in topics}
        for old in s.exec(select(Topic)):
            if old.slug not in keep:
                s.delete(old)
        for topic in topics:
            s.merge(topic)
        s.flush()
        for item_id, pairs in tags.items():
            for slug, score in pairs:
                s.add(ItemTopic(item_id=item_id, topic_slug=slug, score=round(float(score), 4)))
        s.commit()


def replace_claims(engine: Engine, claims: dict[int, list[Claim]]) -> None:
    with session(engine) as s:
        s.exec(delete(Claim))
        for rows in claims.values():
            s.add_all(rows)
        s.commit()


# --- reading for publish and search -----------------------------------------


@dataclass
class ItemView:
    """An item with everything the site, newsletter, export and search show."""

    item: Item
    tags: list[tuple[str, float]]
    claims: list[Claim]
    coverage: list[Item]
    verdicts: dict[int, str] = field(default_factory=dict)  # claim id -> latest repro verdict

    @property
    def authors(self) -> list[str]:
        return json.loads(self.item.authors or "[]")

    @property
    def blog_tags(self) -> list[str]:
        return json.loads(self.item.blog_tags or "[]")

    @property
    def code_urls(self) -> list[str]:
        return json.loads(self.item.code_urls or "[]")


def item_views(engine: Engine, item_ids: Sequence[int] | None = None) -> list[ItemView]:
    """Findings (posts covering a paper are folded into it), newest first."""
    with session(engine) as s:
        stmt = select(Item).where(Item.covers_item_id.is_(None)).order_by(Item.published.desc(), Item.id)
        if item_ids is not None:
            stmt = stmt.where(Item.id.in_(list(item_ids)))
        rows = list(s.exec(stmt))
        ids = [r.id for r in rows]
        tags: dict[int, list[tuple[str, float]]] = {i: [] for i in ids}
        for it in s.exec(select(ItemTopic).order_by(ItemTopic.score.desc())):
            if it.item_id in tags:
                tags[it.item_id].append((it.topic_slug, it.score))
        claims: dict[int, list[Claim]] = {i: [] for i in ids}
        for c in s.exec(select(Claim).order_by(Claim.item_id, Claim.id)):
            if c.item_id in claims:
                claims[c.item_id].append(c)
        coverage: dict[int, list[Item]] = {i: [] for i in ids}
        for post in s.exec(select(Item).where(Item.covers_item_id.is_not(None))):
            if post.covers_item_id in coverage:
                coverage[post.covers_item_id].append(post)
        return [ItemView(r, tags[r.id], claims[r.id], coverage[r.id]) for r in rows]


def topics(engine: Engine) -> list[Topic]:
    with session(engine) as s:
        return list(s.exec(select(Topic).order_by(Topic.slug)))


def counts(engine: Engine) -> dict[str, int]:
    with session(engine) as s:
        return {
            "items": s.exec(select(func.count()).select_from(Item)).one(),
            "findings": s.exec(select(func.count()).select_from(Item).where(Item.covers_item_id.is_(None))).one(),
            "claims": s.exec(select(func.count()).select_from(Claim)).one(),
            "tags": s.exec(select(func.count()).select_from(ItemTopic)).one(),
        }


def _iso(value) -> str:
    return value.isoformat() if value else utcnow().isoformat()


def search_ids(engine: Engine, words: Sequence[str], tags: Sequence[str], limit: int) -> list[int]:
    """Findings matching every word (full text) and carrying every tag, best first (see digest.search)."""
    from digest import search

    conn = search.connect(engine.url.render_as_string(hide_password=False))
    try:
        return [i for i, _ in search.run(conn, search.Query(text=" ".join(words), tags=list(tags), limit=limit))]
    finally:
        conn.close()


# --- moving between databases -----------------------------------------------


def copy_database(src: Engine, dst: Engine, batch: int = 2000) -> dict[str, int]:
    """Copy every table of the schema from src into an empty dst (created and migrated first); rows per table."""
    from sqlalchemy import Integer, bindparam, text

    if src.url.render_as_string(hide_password=False) == dst.url.render_as_string(hide_password=False):
        raise DigestError("--to: the target is the database being copied")
    init_db(dst)
    tables = SQLModel.metadata.sorted_tables
    with dst.connect() as conn:
        busy = [t.name for t in tables if conn.execute(select(func.count()).select_from(t)).scalar()]
    if busy:
        target = dst.url.render_as_string(hide_password=True)
        raise DigestError(f"--to {target}: not empty (rows in {', '.join(busy)}); copy into a new database")
    copied: dict[str, int] = {}
    with src.connect() as reader, dst.begin() as writer:
        for table in tables:
            # A column that points into its own table (item.covers_item_id) is filled in after every row exists.
            self_refs = [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]
            later: list[dict] = []
            n = 0
            result = reader.execution_options(yield_per=batch).execute(select(table))
            for chunk in result.mappings().partitions(batch):
                rows = [dict(r) for r in chunk]
                for row in rows:
                    if any(row.get(c) is not None for c in self_refs):
                        later.append({"_pk": row["id"], **{f"_{c}": row[c] for c in self_refs}})
                        row.update({c: None for c in self_refs})
                writer.execute(table.insert(), rows)
                n += len(rows)
            if later:
                stmt = table.update().where(table.c.id == bindparam("_pk"))
                writer.execute(stmt.values({c: bindparam(f"_{c}") for c in self_refs}), later)
            copied[table.name] = n
        if dst.dialect.name == "postgresql":
            for table in tables:
                pk = list(table.primary_key.columns)
                if len(pk) == 1 and pk[0].autoincrement in (True, "auto") and isinstance(pk[0].type, Integer):
                    writer.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                            f"COALESCE(MAX({pk[0].name}), 0) + 1, false) FROM {table.name}"
                        )
                    )
    return copied
