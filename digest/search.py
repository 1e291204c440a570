"""Search: full text (SQLite FTS5 / PostgreSQL tsvector), semantic (cosine, numpy) and hybrid (RRF), with filters.

Lean on purpose: a text or tag search on SQLite uses only the stdlib sqlite3 module (no SQLAlchemy, no SQLModel,
no numpy, never torch), so a whole CLI call stays fast. Every value reaches SQL as a bound parameter; user text
is reduced to words and each word quoted before it becomes an FTS query.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from digest.errors import DigestError

RRF_K = 60
CANDIDATES = 200  # per ranking, before fusion
FTS_ALL = 1 << 62  # "no depth limit"
SCAN_STEPS = 50000  # SQLite VM steps a newest-first tag scan may take before the tags' items lead
WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Query:
    text: str = ""
    semantic: str = ""
    tags: list[str] = field(default_factory=list)
    any_tags: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    since: date | None = None
    until: date | None = None
    has_claims: bool = False
    reproduced: bool = False
    limit: int = 20


class OverBudget(Exception):
    """A bounded query ran past its budget: the caller switches plans."""


class Conn:
    """One read connection: stdlib sqlite3 for SQLite files, SQLAlchemy for everything else; `:name` params."""

    def __init__(self, raw, dialect: str, url: str, close):
        self.raw, self.dialect, self.url, self._close = raw, dialect, url, close

    def rows(self, sql: str, params: dict | None = None, budget: int = 0) -> list[tuple]:
        """All rows; on SQLite a budget (virtual machine steps) raises OverBudget when a query runs past it."""
        params = {k: _clean(v) for k, v in (params or {}).items()}
        if self.dialect == "sqlite":
            import sqlite3

            steps, every = [0], max(1, min(1000, budget))

            def tick() -> int:
                steps[0] += every
                return steps[0] > budget

            if budget:
                self.raw.set_progress_handler(tick, every)
            try:
                return self.raw.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if budget and steps[0] > budget:
                    raise OverBudget from None
                raise DigestError(f"search failed on {self.url}: {exc}") from None
            except sqlite3.Error as exc:
                raise DigestError(f"search failed on {self.url}: {exc}") from None
            finally:
                if budget:
                    self.raw.set_progress_handler(None, 0)
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        try:
            return [tuple(r) for r in self.raw.execute(text(sql), params)]
        except DBAPIError as exc:
            self.raw.rollback()
            raise DigestError(f"search failed: {str(exc.orig).splitlines()[0]}") from None

    def close(self) -> None:
        self._close()


def connect(url: str) -> Conn:
    """Open url for searching; a database without the latest migrations is upgraded first (slow path, once)."""
    from digest import migrations

    path = _sqlite_path(url)
    if path is not None and not path.exists():  # a typo in --db must not answer "No results." from a new file
        raise DigestError(f"database {path} does not exist (check --db / DIGEST_DB, or run `digest init` first)")
    if path is not None and path.is_file():
        import sqlite3

        conn = _sqlite(path)
        try:
            version = conn.execute(f"SELECT max(version) FROM {migrations.TABLE}").fetchone()[0] or 0
        except sqlite3.OperationalError:  # no migrations table yet
            version = 0
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise DigestError(f"cannot open database {url!r}: {exc}") from None
        if version >= migrations.LATEST:
            return Conn(conn, "sqlite", url, conn.close)
        conn.close()
    from digest import store

    engine = store.open_engine(url)
    store.init_db(engine)
    if path is not None:
        engine.dispose()
        conn = _sqlite(path)
        return Conn(conn, "sqlite", url, conn.close)
    sa = engine.connect()

    def close():
        sa.close()
        engine.dispose()

    return Conn(sa, engine.dialect.name, url, close)


def _sqlite(path: Path):
    import sqlite3

    conn = sqlite3.connect(str(path), timeout=10)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:" and "?" not in url:
        return Path(url.removeprefix("sqlite:///"))
    return None


def _clean(value):
    """PostgreSQL rejects NUL in text; nothing legitimate contains one."""
    return value.replace("\x00", "") if isinstance(value, str) else value


def words(text: str) -> list[str]:
    return WORD.findall(_clean(text))[:32]


def fts_query(text: str) -> str:
    """User text as an FTS5 query that cannot be a syntax error: every word a quoted string, all required."""
    return " ".join('"' + w.replace('"', '""') + '"' for w in words(text))


# --- filters -------------------------------------------------------------------


def _filters(q: Query, dialect: str, drive: list[str] | None = None) -> tuple[list[str], dict]:
    """WHERE clauses over `item i` and their bound parameters.

    Per-row checks are correlated EXISTS probes (cheap when rows are scanned newest first and stop at LIMIT);
    `drive` names tags whose common items should lead instead (an IN list), for rare tags and full id sets.
    """
    where, params = ["i.covers_item_id IS NULL"], {}
    for n, slug in enumerate(q.tags):
        where.append(f"EXISTS (SELECT 1 FROM itemtopic t WHERE t.item_id = i.id AND t.topic_slug = :tag{n})")
        params[f"tag{n}"] = slug
    if drive:
        # The items carrying every tag, intersected inside the (topic_slug, item_id) index.
        parts = [
            f"SELECT item_id FROM itemtopic WHERE topic_slug = {name}" for name in _bind(params, "d", drive).split(", ")
        ]
        where.append(f"i.id IN ({' INTERSECT '.join(parts)})")
    if q.any_tags:
        names = _bind(params, "anytag", q.any_tags)
        where.append(f"i.id IN (SELECT item_id FROM itemtopic WHERE topic_slug IN ({names}))")
    if q.sources:
        where.append(f"i.source IN ({_bind(params, 'source', q.sources)})")
    if q.since:
        where.append("i.published >= :since")
        params["since"] = _when(q.since, dialect)
    if q.until:
        where.append("i.published < :until")
        params["until"] = _when(q.until + timedelta(days=1), dialect)
    if q.has_claims:
        where.append("EXISTS (SELECT 1 FROM claim c WHERE c.item_id = i.id AND NOT c.vanished)")
    if q.reproduced:
        where.append(
            "EXISTS (SELECT 1 FROM claim c JOIN reprorun r ON r.claim_id = c.id WHERE c.item_id = i.id "
            "AND NOT c.vanished AND r.verdict = 'reproduced' AND r.id = (SELECT MAX(r2.id) FROM reprorun r2 "
            "WHERE r2.claim_id = c.id AND r2.verdict <> 'skipped'))"  # the latest measured run, as the site shows
        )
    return where, params


def _bind(params: dict, prefix: str, values) -> str:
    names = []
    for n, value in enumerate(dict.fromkeys(values)):
        params[f"{prefix}{n}"] = value
        names.append(f":{prefix}{n}")
    return ", ".join(names)


def _when(day: date, dialect: str):
    # SQLAlchemy stores naive datetimes in SQLite as 'YYYY-MM-DD HH:MM:SS.ffffff': a date string compares right.
    return day.isoformat() if dialect == "sqlite" else datetime(day.year, day.month, day.day)


def has_filters(q: Query) -> bool:
    return bool(q.tags or q.any_tags or q.sources or q.since or q.until or q.has_claims or q.reproduced)


# --- rankings ------------------------------------------------------------------


def text_ranking(conn: Conn, q: Query, limit: int) -> list[tuple[int, float]]:
    """(item id, score) best first: bm25 on SQLite (title weighs 10x), ts_rank_cd on PostgreSQL."""
    where, params = _filters(q, conn.dialect)
    params["limit"] = limit
    if conn.dialect == "sqlite":
        match = fts_query(q.text)
        if not match:
            return []
        params["match"] = match
        # bm25 inside FTS5 alone is cheap; joining every match to `item` is not. Take the best k matches,
        # filter those, and look deeper only when the filters left too few.
        depth = limit * (2 if len(where) == 1 else 10) + 20
        while True:
            params["depth"] = depth
            sql = (
                "SELECT i.id, f.score FROM (SELECT rowid, -bm25(item_fts, 10.0, 1.0) AS score FROM item_fts "
                "WHERE item_fts MATCH :match ORDER BY score DESC LIMIT :depth) f JOIN item i ON i.id = f.rowid "
                f"WHERE {' AND '.join(where)} ORDER BY f.score DESC, i.id LIMIT :limit"
            )
            rows = conn.rows(sql, params)
            if len(rows) >= limit or depth >= FTS_ALL:
                break
            total = conn.rows("SELECT COALESCE(MAX(id), 0) FROM item")[0][0]
            depth = FTS_ALL if depth >= total else depth * 8
    else:
        params["words"] = " ".join(words(q.text))
        if not params["words"]:
            return []
        sql = (
            "SELECT i.id, ts_rank_cd(i.search_tsv, plainto_tsquery('english', :words)) AS score FROM item i "
            f"WHERE i.search_tsv @@ plainto_tsquery('english', :words) AND {' AND '.join(where)} "
            "ORDER BY score DESC, i.id LIMIT :limit"
        )
        rows = conn.rows(sql, params)
    return [(int(i), float(s)) for i, s in rows]


def filter_ranking(conn: Conn, q: Query, limit: int) -> list[tuple[int, float]]:
    """No text: findings that pass the filters, newest first.

    On SQLite the newest-first index scan with per-row probes goes first under a step budget (common tags fill
    the page at once); past the budget, the items carrying every tag lead instead (an index intersection).
    """
    where, params = _filters(q, conn.dialect)
    params["limit"] = limit
    order = "ORDER BY i.published DESC, i.id DESC LIMIT :limit"
    if q.tags and conn.dialect == "sqlite":
        try:
            rows = conn.rows(f"SELECT i.id FROM item i WHERE {' AND '.join(where)} {order}", params, budget=SCAN_STEPS)
            return [(int(r[0]), 0.0) for r in rows]
        except OverBudget:
            where, params = _filters(q, conn.dialect, drive=q.tags)
            params["limit"] = limit
    rows = conn.rows(f"SELECT i.id FROM item i WHERE {' AND '.join(where)} {order}", params)
    return [(int(r[0]), 0.0) for r in rows]


def allowed_ids(conn: Conn, q: Query) -> list[int]:
    """Ids passing the filters (a superset is fine: the vector matrix holds findings only)."""
    if q.tags and not (q.any_tags or q.sources or q.since or q.until or q.has_claims or q.reproduced):
        params: dict = {}
        parts = [
            f"SELECT item_id FROM itemtopic WHERE topic_slug = :{name[1:]}"
            for name in _bind(params, "t", q.tags).split(", ")
        ]
        return [int(r[0]) for r in conn.rows(" INTERSECT ".join(parts), params)]
    where, params = _filters(q, conn.dialect, drive=q.tags)
    return [int(r[0]) for r in conn.rows(f"SELECT i.id FROM item i WHERE {' AND '.join(where)}", params)]


def vectors_key(conn: Conn, model: str) -> str:
    """What the stored vectors of `model` are, as a cache key: the database, its vector revision and the model."""
    state = dict(conn.rows("SELECT key, value FROM search_state"))
    return hashlib.sha256(f"{conn.url}|{state.get('db_id')}|{state.get('vectors_rev')}|{model}".encode()).hexdigest()


def vector_matrix(conn: Conn, model: str, cache_dir: Path | None = None):
    """(ids, unit-row float32 matrix) of every finding's stored vector; cached in a .npy keyed by a DB revision."""
    import numpy as np

    key = vectors_key(conn, model)
    if cache_dir is not None:
        ids_path, mat_path = cache_dir / f"vectors-{key[:24]}.ids.npy", cache_dir / f"vectors-{key[:24]}.npy"
        if ids_path.is_file() and mat_path.is_file():
            return np.load(ids_path), np.load(mat_path, mmap_mode="r")
    rows = conn.rows(
        "SELECT e.item_id, e.vector FROM embedding e JOIN item i ON i.id = e.item_id "
        "WHERE e.model = :model AND i.covers_item_id IS NULL ORDER BY e.item_id",
        {"model": model},
    )
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    if not rows:
        return ids, np.zeros((0, 0), dtype=np.float32)
    dims = {len(r[1]) for r in rows}
    if len(dims) > 1:
        raise DigestError(f"stored vectors for model {model!r} have mixed sizes; run `digest tag` again")
    mat = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=np.float32).reshape(len(rows), -1)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    mat = mat / np.where(norms == 0, 1, norms)
    if cache_dir is not None and len(rows):
        cache_dir.mkdir(parents=True, exist_ok=True)
        for old in cache_dir.glob("vectors-*.npy"):
            old.unlink(missing_ok=True)
        for path, array in ((mat_path, mat.astype(np.float32)), (ids_path, ids)):  # ids last: the "ready" mark
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as fh:
                np.save(fh, array)
            tmp.replace(path)  # atomic: a concurrent search never reads half a file
    return ids, mat


def semantic_ranking(conn: Conn, q: Query, qvec, ids, mat, limit: int) -> list[tuple[int, float]]:
    """Cosine similarity of the query vector against every (filtered) finding."""
    import numpy as np

    if len(ids) == 0:
        return []
    qvec = np.asarray(qvec, dtype=np.float32).reshape(-1)
    if qvec.shape[0] != mat.shape[1]:
        raise DigestError(
            f"query vector has {qvec.shape[0]} dims but stored vectors have {mat.shape[1]}; "
            "run `digest tag` with the configured model"
        )
    qvec = qvec / (np.linalg.norm(qvec) or 1.0)
    scores = mat @ qvec
    if has_filters(q):
        allowed = np.array(allowed_ids(conn, q), dtype=np.int64)
        pos = np.minimum(np.searchsorted(ids, allowed), len(ids) - 1)  # ids are sorted
        keep = np.zeros(len(ids), dtype=bool)
        keep[pos[ids[pos] == allowed]] = True
        scores = np.where(keep, scores, -np.inf)
    k = min(limit, len(ids))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(ids[t]), float(scores[t])) for t in top if np.isfinite(scores[t])]


def fuse(*rankings: list[tuple[int, float]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: sum of 1/(k + rank) over the rankings an item appears in."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, (item_id, _) in enumerate(ranking, start=1):
            scores[item_id] = scores.get(item_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda p: (-p[1], p[0]))


def run(conn: Conn, q: Query, embed=None, model: str = "", cache_dir: Path | None = None) -> list[tuple[int, float]]:
    """The ranked (item id, score) list for q; `embed(text) -> vector` is called only for semantic queries."""
    if q.semantic:
        if embed is None:
            raise DigestError("semantic search needs an embedder")
        ids, mat = vector_matrix(conn, model, cache_dir)
        if len(ids) == 0:
            raise DigestError(f"no stored vectors for model {model!r}; run `digest tag` first")
        depth = max(q.limit, CANDIDATES) if q.text else q.limit
        sem = semantic_ranking(conn, q, embed(q.semantic), ids, mat, depth)
        if not q.text:
            return sem
        return fuse(text_ranking(conn, q, depth), sem)[: q.limit]
    if q.text:
        if not words(q.text):
            raise DigestError(f"query {q.text!r} has no words to search for")
        return text_ranking(conn, q, q.limit)
    return filter_ranking(conn, q, q.limit)


# --- rows for output -------------------------------------------------------------


def fetch(conn: Conn, ranked: list[tuple[int, float]], *, for_bibtex: bool = False, repo_url: str = "") -> list[dict]:
    """Output rows (the export shape plus score and kind/summary), in ranking order; `for_bibtex`: with the
    arXiv categories and DOI too, which only BibTeX shows."""
    if not ranked:
        return []
    params: dict = {}
    names = _bind(params, "id", [i for i, _ in ranked])
    items = {
        r[0]: r
        for r in conn.rows(
            "SELECT id, title, url, arxiv_id, source, published, authors, kind, summary, blog_tags, doi FROM item "
            f"WHERE id IN ({names})",
            params,
        )
    }
    tags: dict[int, list] = {i: [] for i in items}
    for item_id, slug, score in conn.rows(
        f"SELECT item_id, topic_slug, score FROM itemtopic WHERE item_id IN ({names}) ORDER BY score DESC, topic_slug",
        params,
    ):
        tags[item_id].append({"slug": slug, "score": round(float(score), 4)})
    current = _current_claims(conn, names, params, items)  # claims still in the text, in the site's order
    claims = _claims_with_verdicts(conn, current, repo_url)
    coverage: dict[int, list] = {i: [] for i in items}
    for cid, url in conn.rows(
        f"SELECT covers_item_id, url FROM item WHERE covers_item_id IN ({names}) AND covers_item_id IS NOT NULL "
        "ORDER BY covers_item_id, published, id",  # oldest first, as the site lists coverage
        params,
    ):
        coverage[cid].append(url)
    out = []
    for item_id, score in ranked:
        if item_id not in items:
            continue
        _, title, url, arxiv_id, source, published, authors, kind, summary, categories, doi = items[item_id]
        out.append(
            {
                "id": item_id,
                "title": title,
                "url": url,
                "arxiv_id": arxiv_id,
                "source": source,
                "published": _iso(published),
                "authors": json.loads(authors or "[]"),
                "tags": tags[item_id],
                "claims": claims[item_id],
                "coverage": coverage[item_id],
                **summary_fields(current[item_id], summary, title),
                "kind": kind,
                "summary": summary,
                "score": round(score, 6),
            }
        )
        if for_bibtex:
            out[-1].update(categories=json.loads(categories or "[]"), doi=doi)
    return out


def _claims_with_verdicts(conn: Conn, current: dict[int, list], repo_url: str) -> dict[int, list[dict]]:
    """Each item's claims as JSON with the verdict the site shows (digest.verdicts: one read model)."""
    from digest.verdicts import SHOWN_RUNS_SQL, RunsView, claim_json, claim_verdict, shown_runs

    ids = [c.id for cs in current.values() for c in cs]
    runs = {}
    if ids:
        params: dict = {}
        names = _bind(params, "c", ids)
        sql = SHOWN_RUNS_SQL.replace("WHERE r.claim_id IS NOT NULL", f"WHERE r.claim_id IN ({names})")
        runs = shown_runs(conn.rows(sql, params))
    view = RunsView(runs)
    return {i: [claim_json(c, claim_verdict(view, c, repo_url)) for c in cs] for i, cs in current.items()}


def _current_claims(conn: Conn, names: str, params: dict, items: dict) -> dict[int, list]:
    """Each item's claims still in its text, in the site's order (title first, then by position): the headline's
    candidates, as the site sees them."""
    from digest.store import SITE_CLAIM_COLUMNS, SiteClaim

    cols = ", ".join(f'"{c}"' for c in SITE_CLAIM_COLUMNS)
    out: dict[int, list] = {i: [] for i in items}
    for row in conn.rows(
        f"SELECT {cols} FROM claim WHERE NOT vanished AND item_id IN ({names}) ORDER BY item_id, field DESC, start, id",
        params,
    ):
        c = SiteClaim(*row)
        out[c.item_id].append(c)
    return out


def summary_fields(claims: list, summary: str | None, title: str = "") -> dict:
    """`one_line` and `headline` of a finding, the choice the site shows (digest.summarize, digest.headline)."""
    import inspect

    from digest.headline import choose_headline
    from digest.summarize import one_line

    # one_line takes the title and the ledger's summary claims where it uses them (issue #14, branch oneliner),
    # as the site's Finding passes them
    accepts = inspect.signature(one_line).parameters
    extra: dict = {}
    if "title" in accepts:
        extra["title"] = title or ""
    if "claims" in accepts:
        extra["claims"] = [c for c in claims if getattr(c, "field", "summary") == "summary"]
    headline = choose_headline(claims, summary or "")
    return {"one_line": one_line(summary or "", **extra), "headline": headline.as_json() if headline else None}


def _iso(value) -> str:
    if isinstance(value, str):
        return datetime.fromisoformat(value).isoformat()
    return value.isoformat()


# --- BibTeX --------------------------------------------------------------------


def bibtex(rows: list[dict]) -> str:
    """@misc entries through digest.bibtex, the writer the site uses: for a paper, the entry on its page."""
    from digest import bibtex as bib

    return bib.entries(
        bib.Reference(
            title=row["title"],
            authors=row["authors"],
            year=int(row["published"][:4]),
            url=row["url"] or "",
            arxiv_id=row["arxiv_id"],
            categories=row.get("categories", ()) if row["arxiv_id"] else (),
            doi=row.get("doi"),
            source=row["source"],
        )
        for row in rows
    )


# --- tags --------------------------------------------------------------------------


def check_tags(conn: Conn, slugs: Sequence[str]) -> None:
    """An Error naming the first slug no topic has (checked before anything is ranked or a model loads)."""
    if slugs:
        known = {r[0] for r in conn.rows("SELECT slug FROM topic UNION SELECT DISTINCT topic_slug FROM itemtopic")}
        _check_known("tag", slugs, known, "`digest tags` lists them")


def check_sources(conn: Conn, names: Sequence[str]) -> None:
    """An Error naming the first source that is neither registered nor the source of any stored item."""
    if names:
        known = {r[0] for r in conn.rows("SELECT name FROM source UNION SELECT DISTINCT source FROM item")}
        _check_known("source", names, known, "`digest status` lists them")


def _check_known(what: str, given: Sequence[str], known: set[str], hint: str) -> None:
    for name in given:
        if name not in known:
            listed = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "") if known else "none yet"
            raise DigestError(f"unknown {what} {name!r} (known: {listed}; {hint})")


def latest_week_start(conn: Conn) -> date | None:
    """Monday of the ISO week of the newest tagged finding; None when nothing is tagged."""
    row = conn.rows(
        "SELECT MAX(i.published) FROM itemtopic t JOIN item i ON i.id = t.item_id WHERE i.covers_item_id IS NULL"
    )
    newest = row[0][0] if row else None
    if newest is None:
        return None
    day = (datetime.fromisoformat(newest) if isinstance(newest, str) else newest).date()
    return day - timedelta(days=day.weekday())


def tag_trends(conn: Conn, week_start: date) -> list[dict]:
    """Every tag's findings: total, in the week from week_start, and the average of the four weeks before."""
    params = {f"w{n}": _when(week_start - timedelta(weeks=4 - n), conn.dialect) for n in range(6)}
    sql = (
        "SELECT t.topic_slug, COUNT(*), "
        "SUM(CASE WHEN i.published >= :w4 AND i.published < :w5 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN i.published >= :w0 AND i.published < :w4 THEN 1 ELSE 0 END) "
        "FROM itemtopic t JOIN item i ON i.id = t.item_id WHERE i.covers_item_id IS NULL "
        "GROUP BY t.topic_slug ORDER BY COUNT(*) DESC, t.topic_slug"
    )
    out = []
    for slug, total, week, before in conn.rows(sql, params):
        avg = (before or 0) / 4
        out.append({"tag": slug, "count": int(total), "this_week": int(week or 0), "avg_4w": round(avg, 2)})
    return out
