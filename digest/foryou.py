"""For you: the reader's recommendations and each finding's similar papers, read from the stored vectors through
a search connection (stdlib sqlite3 on SQLite, never torch). One place serves `digest recommend`, `digest similar`,
the site's "For you" page and similar-papers lists, and the newsletter's "For you" section (issue #16)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from digest import recommend as rec
from digest.errors import DigestError


@dataclass(frozen=True)
class Pick:
    item_id: int
    score: float
    because: list[str]  # titles of the library papers it resembles, nearest first


def because_text(titles: list[str]) -> str:
    """'close to 2 papers in your library: A; B'."""
    n = len(titles)
    return f"close to {n} paper{'s' if n != 1 else ''} in your library: " + "; ".join(t[:80] for t in titles)


def vectors(conn, model: str, cache_dir: Path | None):
    """(ids, unit-row matrix) of every finding's stored vector for `model`; an error when there are none."""
    from digest import search

    ids, mat = search.vector_matrix(conn, model, cache_dir)
    if len(ids) == 0:
        raise DigestError(f"no stored vectors for model {model!r}; run `digest tag` first")
    return ids, mat


def library_vectors(conn, model: str, ids, mat):
    """(library matrix, titles, rows of mat that are library papers) from stored findings and own-text entries."""
    rows = conn.rows(
        "SELECT l.title, COALESCE(l.item_id, i.id), l.vector, l.model, it.title FROM libraryentry l "
        "LEFT JOIN item i ON l.item_id IS NULL AND i.arxiv_id = l.arxiv_id AND i.covers_item_id IS NULL "
        "LEFT JOIN item it ON it.id = COALESCE(l.item_id, i.id) ORDER BY l.id"
    )
    position = {int(i): n for n, i in enumerate(ids)}
    vecs, titles, mat_rows = [], [], []
    for title, item_id, vector, vmodel, item_title in rows:
        if item_id is not None and int(item_id) in position:
            r = position[int(item_id)]
            mat_rows.append(r)
            vecs.append(np.asarray(mat[r]))
            titles.append(item_title or title)
        elif vector is not None and vmodel == model:
            vec = np.frombuffer(bytes(vector), dtype=np.float32)
            if vec.shape[0] == mat.shape[1]:
                vecs.append(vec)
                titles.append(title)
    library = rec.unit_rows(np.vstack(vecs)) if vecs else np.zeros((0, mat.shape[1]), dtype=np.float32)
    return library, titles, np.array(sorted(set(mat_rows)), dtype=np.int64)


def has_library(conn) -> bool:
    try:
        return bool(conn.rows("SELECT 1 FROM libraryentry LIMIT 1"))
    except DigestError:
        return False


def recommendations(
    conn, model: str, cache_dir: Path | None, limit: int, since: datetime | None = None, until: datetime | None = None
) -> list[Pick]:
    """The `limit` findings not in the library that match it best (published in [since, until) when given)."""
    ids, mat = vectors(conn, model, cache_dir)
    library, titles, rows = library_vectors(conn, model, ids, mat)
    if len(library) == 0:
        raise DigestError("the library is empty or none of it is embedded: `digest library import FILE` first")
    keep = np.ones(len(ids), dtype=bool)
    keep[rows] = False
    if since or until:
        sql, params = "SELECT id FROM item WHERE covers_item_id IS NULL", {}
        if since:
            sql, params["since"] = sql + " AND published >= :since", since
        if until:
            sql, params["until"] = sql + " AND published < :until", until
        window = np.array([r[0] for r in conn.rows(sql, params)], dtype=np.int64)
        keep &= np.isin(ids, window)
    picks = rec.recommend(mat, library, np.flatnonzero(keep), rows, limit, ids)
    return [Pick(p.item_id, p.score, [titles[j] for j in p.because]) for p in picks]


def neighbours(mat: np.ndarray, ids, k: int = 5, block: int = 1024) -> dict[int, list[tuple[int, float]]]:
    """Every finding's `k` nearest findings by cosine (itself excluded), in blocks of rows so memory stays
    O(block x n): one pass per build over the stored vectors."""
    out: dict[int, list[tuple[int, float]]] = {}
    n = len(mat)
    if n <= 1:
        return {int(i): [] for i in ids}
    k = min(k, n - 1)
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    for start in range(0, n, block):
        sims = mat[start : start + block] @ mat.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        for r in rows:
            out[int(ids[start + r])] = [(int(ids[j]), float(sims[r, j])) for j in top[r]]
    return out


def similar_pages(conn, model: str, cache_dir: Path | None, k: int = 5) -> dict[int, list[tuple[str, str]]]:
    """Every finding's `k` nearest findings as (page path, title), for item pages. The neighbour lists are
    cached beside the vector matrix under the same key (database, vector revision, model), so a build whose
    vectors did not change reads them instead of computing them (a 10,000-finding product takes seconds)."""
    from types import SimpleNamespace

    from digest.render import item_path
    from digest.search import vector_matrix, vectors_key

    try:
        ids, mat = vector_matrix(conn, model, cache_dir)
    except DigestError:
        return {}
    if len(ids) < 2:
        return {}
    path = cache_dir / f"neighbours-{vectors_key(conn, model)[:24]}-{k}.npy" if cache_dir is not None else None
    top = np.load(path) if path is not None and path.is_file() else None
    if top is None or top.shape != (len(ids), k):
        near = neighbours(mat, ids, k)
        top = np.array([[n for n, _ in near[int(i)]] + [-1] * (k - len(near[int(i)])) for i in ids], dtype=np.int64)
        if path is not None:
            for old in cache_dir.glob("neighbours-*.npy"):
                old.unlink(missing_ok=True)
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as fh:
                np.save(fh, top)
            tmp.replace(path)
    rows = conn.rows("SELECT id, title, arxiv_id FROM item WHERE covers_item_id IS NULL")
    page = {int(i): (item_path(SimpleNamespace(id=i, title=t, arxiv_id=a)), t) for i, t, a in rows}
    return {int(i): [page[int(n)] for n in row if n >= 0 and int(n) in page] for i, row in zip(ids, top, strict=True)}
